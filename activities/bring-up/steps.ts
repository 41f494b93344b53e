/**
 * The bring-up of a bare VM as shell steps, in order: what each runs on the VM (as root, over SSH).
 * Every step is idempotent (it checks what a finished run of it left: the image, a mount, a
 * marker with the source's key) so a retried bring-up — after a worker restart, or a transient
 * failure — redoes only what is missing. A step that fails ends with one line
 * `recogdrive-bring-up: permanent|transient: <why>`: permanent when no retry on any VM can help
 * (no such image, no service account, a missing gs:// input, a full disk). Pure.
 */
import { createHash } from 'node:crypto';
import { quote } from 'shlex';
import { VM_STATE_DIR, type BringUpSpec, type CodeSpec, type DataSpec } from '../../pipeline/bring-up.ts';
import { ARTIFACT_MOUNT_ROOT } from '../../pipeline/launch.ts';

export type BringUpStepName = 'runtime' | 'tools' | 'login' | 'image' | 'code' | 'data' | 'bucket';

export interface BringUpStep {
  name: BringUpStepName;
  /** One line for the log and the status ("pull ...@sha256:..."). */
  label: string;
  /** Bash, run with `bash -c` as root. */
  script: string;
}

/** The line a failing step ends with; the runner reads the class and the reason from it. */
export const FAILURE_PREFIX = 'recogdrive-bring-up:';

const PRELUDE = `set -euo pipefail
fail() { echo "${FAILURE_PREFIX} $1: $2"; exit 3; }
state=${quote(VM_STATE_DIR)}
mkdir -p "$state"
# A VM uses its service account; the test bed's VMs reach the Cloud Storage emulator instead.
gcsfuse_flags=(--implicit-dirs --rename-dir-limit=100000 --log-severity=warning)
if [ -n "\${RECOGDRIVE_GCS_ENDPOINT:-}" ]; then gcsfuse_flags+=(--custom-endpoint="$RECOGDRIVE_GCS_ENDPOINT" --anonymous-access --enable-hns=false); fi
# Classifies a failed command's output: a full disk or a refusal never heals by retrying.
why() { tail -n 3 "$1" | tr '\\n' ' ' | cut -c1-400; }
full_disk() { grep -qiE 'no space left on device' "$1"; }
denied() { grep -qiE 'unauthorized|denied|forbidden|invalid username/password|incorrect username or password|403|401' "$1"; }
`;

/** A stable key of what a step fetches: a changed source re-fetches, an unchanged one is kept. */
function keyOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}

function splitGs(uri: string): { bucket: string; path: string } {
  const rest = uri.slice('gs://'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? { bucket: rest, path: '' } : { bucket: rest.slice(0, slash), path: rest.slice(slash + 1) };
}

/** Mounts `uri` (a prefix) read-only at "$work/src" for a copy; the EXIT trap unmounts it. */
function mountReadOnly(uri: string, label: string): string {
  const { bucket, path } = splitGs(uri);
  return `work=$(mktemp -d "$state/work.XXXXXX")
trap 'umount -l "$work/src" 2>/dev/null || true; rm -rf --one-file-system "$work"' EXIT
mkdir "$work/src"
if ! gcsfuse "\${gcsfuse_flags[@]}" -o ro${path === '' ? '' : ` --only-dir ${quote(path)}`} ${quote(bucket)} "$work/src" >"$work/mount.log" 2>&1; then
  if denied "$work/mount.log"; then fail permanent "the VM's service account may not read gs://${bucket} (${label}): $(why "$work/mount.log")"; fi
  fail transient "mounting gs://${bucket} for ${label} failed: $(why "$work/mount.log")"
fi`;
}

/** Replaces a folder atomically (a killed copy leaves only <dir>.partial), never descending into mounts. */
function replaceDir(dir: string): string {
  return `for m in $(findmnt -rn -o TARGET | grep -F ${quote(`${dir}/`)} | sort -r); do umount -l "$m" || true; done
rm -rf --one-file-system ${quote(dir)}
mv ${quote(`${dir}.partial`)} ${quote(dir)}`;
}

function copyFailure(label: string): string {
  return `if full_disk "$work/copy.log"; then fail permanent "the VM's disk is full while copying ${label}: give the VM a larger boot disk or mount the data (mode \\"mount\\")"; fi
  fail transient "copying ${label} failed: $(why "$work/copy.log")"`;
}

function codeStep(repoDir: string, code: CodeSpec | undefined): BringUpStep {
  if (code === undefined) {
    return {
      name: 'code',
      label: `check the checkout at ${repoDir}`,
      script: `[ -d ${quote(repoDir)} ] || fail permanent ${quote(`${repoDir} does not exist on the VM and the input declares no sources.code: give sources.code (a gs:// archive or a git URL at a commit) or use a machine image that has it`)}
echo "checkout present at ${repoDir}"`,
    };
  }
  const key = keyOf(code);
  const marker = `${repoDir}/.recogdrive-source`;
  const done = `if [ -f ${quote(marker)} ] && [ "$(cat ${quote(marker)})" = ${key} ]; then echo "code already at ${repoDir}"; exit 0; fi
rm -rf --one-file-system ${quote(`${repoDir}.partial`)}
mkdir -p "$(dirname ${quote(repoDir)})"`;
  if (code.kind === 'git') {
    return {
      name: 'code',
      label: `clone ${code.url} at ${code.commit.slice(0, 12)} into ${repoDir}`,
      script: `${done}
out=$(mktemp)
if ! git clone --quiet --no-checkout ${quote(code.url)} ${quote(`${repoDir}.partial`)} >"$out" 2>&1; then
  if denied "$out" || grep -qiE 'not found|does not exist|could not read' "$out"; then fail permanent "cloning ${code.url}: $(why "$out")"; fi
  fail transient "cloning ${code.url}: $(why "$out")"
fi
if ! git -C ${quote(`${repoDir}.partial`)} checkout --quiet --detach ${code.commit} >"$out" 2>&1; then
  if full_disk "$out"; then fail permanent "the VM's disk is full while checking out ${code.url}"; fi
  fail permanent "commit ${code.commit} is not in ${code.url}: $(why "$out")"
fi
echo ${key} > ${quote(`${repoDir}.partial/.recogdrive-source`)}
${replaceDir(repoDir)}
echo "checked out ${code.commit} at ${repoDir}"`,
    };
  }
  const { path } = splitGs(code.uri);
  const name = path.split('/').at(-1)!;
  const parent = code.uri.slice(0, code.uri.length - name.length - 1);
  return {
    name: 'code',
    label: `unpack ${code.uri} into ${repoDir}`,
    script: `${done}
${mountReadOnly(parent, code.uri)}
[ -f "$work/src/"${quote(name)} ] || fail permanent ${quote(`${code.uri} does not exist`)}
cp "$work/src/"${quote(name)} "$work/archive" >"$work/copy.log" 2>&1 || { ${copyFailure(code.uri)}; }
umount "$work/src"
${
  code.md5 === undefined
    ? ''
    : `got=$(python3 -c 'import base64,hashlib,sys
h=hashlib.md5()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(base64.b64encode(h.digest()).decode())' "$work/archive")
[ "$got" = ${quote(code.md5)} ] || fail permanent ${quote(`${code.uri} changed since the run was planned (md5 ${code.md5}): start a new run to use the new archive`)}`
}
mkdir ${quote(`${repoDir}.partial`)}
tar -xf "$work/archive" -C ${quote(`${repoDir}.partial`)} >"$work/copy.log" 2>&1 || { ${copyFailure(code.uri)}; }
# An archive made with a top folder (git archive --prefix=recogdrive/) holds the checkout inside it.
top=$(ls -A ${quote(`${repoDir}.partial`)})
if [ "$(printf '%s\\n' "$top" | wc -l)" = 1 ] && [ -d ${quote(`${repoDir}.partial`)}/"$top" ]; then
  mv ${quote(`${repoDir}.partial`)}/"$top" "$work/top" && rmdir ${quote(`${repoDir}.partial`)} && mv "$work/top" ${quote(`${repoDir}.partial`)}
fi
echo ${key} > ${quote(`${repoDir}.partial/.recogdrive-source`)}
${replaceDir(repoDir)}
echo "unpacked ${code.uri} ($(du -sh ${quote(repoDir)} | cut -f1)) at ${repoDir}"`,
  };
}

function dataStep(data: DataSpec): BringUpStep {
  const { bucket, path } = splitGs(data.uri);
  const empty = `fail permanent ${quote(`${data.uri} has no objects: upload it, or fix sources.data`)}`;
  if (data.mode === 'mount') {
    return {
      name: 'data',
      label: `mount ${data.uri} read-only at ${data.dir}`,
      script: `if mountpoint -q ${quote(data.dir)}; then echo "${data.uri} already mounted at ${data.dir}"; exit 0; fi
mkdir -p ${quote(data.dir)}
out=$(mktemp)
if ! gcsfuse "\${gcsfuse_flags[@]}" -o ro --only-dir ${quote(path)} ${quote(bucket)} ${quote(data.dir)} >"$out" 2>&1; then
  if denied "$out"; then fail permanent "the VM's service account may not read gs://${bucket}: $(why "$out")"; fi
  fail transient "mounting ${data.uri} failed: $(why "$out")"
fi
if [ -z "$(ls -A ${quote(data.dir)})" ]; then umount ${quote(data.dir)}; ${empty}; fi
echo "mounted ${data.uri} at ${data.dir}"`,
    };
  }
  const key = keyOf(data);
  const marker = `${data.dir}/.recogdrive-source`;
  return {
    name: 'data',
    label: `copy ${data.uri} to ${data.dir}`,
    script: `if [ -f ${quote(marker)} ] && [ "$(cat ${quote(marker)})" = ${key} ]; then echo "${data.uri} already at ${data.dir}"; exit 0; fi
${mountReadOnly(data.uri, data.uri)}
[ -n "$(ls -A "$work/src")" ] || ${empty}
rm -rf --one-file-system ${quote(`${data.dir}.partial`)}
mkdir -p ${quote(`${data.dir}.partial`)}
cp -a "$work/src/." ${quote(`${data.dir}.partial/`)} >"$work/copy.log" 2>&1 || { ${copyFailure(data.uri)}; }
umount "$work/src"
echo ${key} > ${quote(`${data.dir}.partial/.recogdrive-source`)}
mkdir -p "$(dirname ${quote(data.dir)})"
${replaceDir(data.dir)}
echo "copied ${data.uri} ($(du -sh ${quote(data.dir)} | cut -f1)) to ${data.dir}"`,
  };
}

function bucketStep(bucket: string, at: string): BringUpStep {
  return {
    name: 'bucket',
    label: `mount gs://${bucket} at ${at}`,
    script: `if mountpoint -q ${quote(at)}; then echo "gs://${bucket} already mounted at ${at}"; exit 0; fi
mkdir -p ${quote(at)}
out=$(mktemp)
if ! gcsfuse "\${gcsfuse_flags[@]}" -o allow_other ${quote(bucket)} ${quote(at)} >"$out" 2>&1; then
  if denied "$out"; then fail permanent "the VM's service account may not use gs://${bucket} (it needs roles/storage.objectUser on it): $(why "$out")"; fi
  fail transient "mounting gs://${bucket} failed: $(why "$out")"
fi
# gcsfuse mounts without checking access: a listing is the first request that can be refused.
if ! ls ${quote(at)} >"$out" 2>&1; then
  umount ${quote(at)} || true
  if denied "$out" || grep -qi 'permission denied' "$out"; then fail permanent "the VM's service account may not use gs://${bucket} (it needs roles/storage.objectUser on it): $(why "$out")"; fi
  fail transient "gs://${bucket} is mounted at ${at} but cannot be listed: $(why "$out")"
fi
echo "mounted gs://${bucket} at ${at}"`,
  };
}

/** The steps of a bring-up, in the order they must run (code before the data inside it); buckets are mounted where the launch expects them. */
export function bringUpSteps(spec: BringUpSpec, mountPointOf: (bucket: string) => string = (bucket) => `${ARTIFACT_MOUNT_ROOT}/${bucket}`): BringUpStep[] {
  const needsGcsfuse = spec.buckets.length > 0 || spec.data.length > 0 || spec.code?.kind === 'archive';
  const steps: BringUpStep[] = [
    {
      name: 'runtime',
      label: 'check the container runtime',
      script: `command -v docker >/dev/null || fail permanent "the VM has no docker: use a VM image with Docker (TPU VM base images, Deep Learning VM images, Container-Optimized OS)"
out=$(mktemp)
docker info >"$out" 2>&1 || fail transient "docker does not answer: $(why "$out")"
echo "docker is up"`,
    },
  ];
  if (needsGcsfuse) {
    steps.push({
      name: 'tools',
      label: 'install gcsfuse',
      script: `if command -v gcsfuse >/dev/null; then echo "gcsfuse at $(command -v gcsfuse)"; exit 0; fi
command -v apt-get >/dev/null || fail permanent "the VM has no gcsfuse and no apt-get to install it (Container-Optimized OS, the default image of CPU VMs, has neither): give the stage a bootImage with Docker and gcsfuse, or a Debian/Ubuntu one"
out=$(mktemp)
{
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg -o /usr/share/keyrings/cloud.google.asc &&
  echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-$(. /etc/os-release && echo "$VERSION_CODENAME") main" > /etc/apt/sources.list.d/gcsfuse.list &&
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcsfuse
} >"$out" 2>&1 || { if full_disk "$out"; then fail permanent "the VM's disk is full"; fi; fail transient "installing gcsfuse failed: $(why "$out")"; }
echo "installed gcsfuse"`,
    });
  }
  if (spec.registry !== undefined) {
    const registry = spec.registry;
    steps.push({
      name: 'login',
      label: `log in to ${registry} with the VM's service account`,
      // The token is read into a variable and piped to docker: it is never printed or put on a command line.
      script: `err=$(mktemp)
url="http://\${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/service-accounts/default/token"
if ! body=$(curl -sSf --max-time 20 -H 'Metadata-Flavor: Google' "$url" 2>"$err"); then
  if grep -q ' 404' "$err"; then fail permanent "the VM has no service account: create VMs with one that may read ${registry} (roles/artifactregistry.reader); see RECOGDRIVE_VM_SERVICE_ACCOUNT"; fi
  fail transient "the VM's metadata server gave no token: $(why "$err")"
fi
token=$(printf '%s' "$body" | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\\([^"]*\\)".*/\\1/p')
[ -n "$token" ] || fail transient "the VM's metadata server answered without an access token"
if ! printf '%s' "$token" | docker login --username oauth2accesstoken --password-stdin ${quote(registry)} >"$err" 2>&1; then
  if denied "$err"; then fail permanent "${registry} refused the VM's service account: grant it roles/artifactregistry.reader ($(why "$err"))"; fi
  fail transient "cannot log in to ${registry}: $(why "$err")"
fi
echo "logged in to ${registry}"`,
    });
  }
  steps.push({
    name: 'image',
    label: `pull ${spec.image}`,
    script: `if docker image inspect ${quote(spec.image)} >/dev/null 2>&1; then echo "${spec.image} already on the VM"; exit 0; fi
out=$(mktemp)
for try in 1 2 3 4 5; do
  if docker pull ${quote(spec.image)} >"$out" 2>&1; then echo "pulled ${spec.image}"; exit 0; fi
  if full_disk "$out"; then fail permanent "the VM's disk is full while pulling ${spec.image}: give the VM a larger boot disk"; fi
  if grep -qiE 'manifest unknown|not found|name unknown' "$out"; then fail permanent "${spec.image} is not in its registry: $(why "$out")"; fi
  if denied "$out"; then fail permanent "the registry refused to give ${spec.image} to the VM: $(why "$out")"; fi
  echo "pull failed (try $try of 5): $(why "$out")"
  sleep $((try * try))
done
fail transient "pulling ${spec.image} failed 5 times: $(why "$out")"`,
  });
  steps.push(codeStep(spec.repoDir, spec.code));
  for (const data of spec.data) steps.push(dataStep(data));
  for (const bucket of spec.buckets) steps.push(bucketStep(bucket, mountPointOf(bucket)));
  return steps.map((step) => ({ ...step, script: `${PRELUDE}${step.script}\n` }));
}
