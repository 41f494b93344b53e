#!/usr/bin/env bash
# Installs what the SSH/container test bed (test/testbed/) needs on a Debian machine, as root.
# Idempotent: when everything is there it only checks (well under a second).
#
# - openssh-server: one sshd per test-bed worker (started by the test bed with its own config;
#   this script starts no service: a policy-rc.d that denies starts is in place during the install)
# - podman, runc: each worker's container host (runc: crun fails here, see MACHINE-NOTES)
# - busybox-static, tini: the stage image's userland and init (copied into the image's rootfs)
# - psmisc: fuser, for the TPU hygiene command the orchestrator runs before a launch
#
# Nothing under /etc is configured: the test bed passes its own sshd_config, containers.conf and
# storage.conf per worker (sshd -f, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF).
set -euo pipefail

packages=(openssh-server openssh-client podman runc conmon busybox-static tini psmisc tar)

if [ "$(id -u)" -ne 0 ]; then
  echo "test/testbed/install.sh: must run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "test bed: installing ${missing[*]}"
  # Package maintainer scripts must not start sshd (or anything else) on this machine.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Temporary (test/testbed/install.sh): no service starts during the install.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# What the test bed runs; fail here, with a clear message, rather than in a test.
for binary in /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/podman /usr/bin/runc /usr/bin/conmon /bin/busybox /usr/bin/tini-static /usr/bin/fuser /bin/bash /usr/bin/ldd; do
  if [ ! -x "$binary" ]; then
    echo "test bed: $binary is missing after the install" >&2
    exit 1
  fi
done
echo "test bed: $(podman --version), $(runc --version | head -1), $(ssh -V 2>&1), $(busybox | head -1 | cut -d' ' -f1-2)"
