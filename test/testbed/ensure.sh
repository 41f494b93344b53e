#!/usr/bin/env bash
# Part of `npm test`: installs the test bed's packages when this machine can (root), otherwise
# says which tests will be skipped. In CI (CI=true) a missing test bed is an error, not a skip.
set -euo pipefail
here="$(dirname "$0")"
if [ "$(id -u)" -eq 0 ]; then
  exec bash "$here/install.sh"
fi
if [ "${CI:-}" = "true" ]; then
  echo "test bed: CI must run as root to install sshd and podman" >&2
  exit 1
fi
echo "test bed: not root, so the SSH/container tests (test/testbed/) will be skipped; run bash test/testbed/install.sh as root to include them" >&2
