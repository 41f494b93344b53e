/**
 * The fence on a worker host that keeps a superseded launch from creating anything. Temporal may
 * retry a launch while an earlier try still runs (a heartbeat or start-to-close timeout), and a
 * try that lost its lease may still be connecting to a slow host. Each try holds a token
 * (stage attempt, activity try); the host keeps the highest token it has seen per container name
 * in a file, and `docker run` happens in the same locked shell command that checks the file still
 * names this try. stopStage leaves a tombstone (the attempt with the highest try), so no try of a
 * stopped attempt can start anything afterwards; a later stage attempt fences the earlier out.
 *
 * The file lives in $RECOGDRIVE_FENCE_DIR, default ~/.recogdrive/fences of the SSH user; it is
 * written with a temporary file and a rename under flock(1), and tombstones older than 30 days
 * are pruned. A constant script: every value reaches it as a positional argument.
 */

/** A try's identity: the stage attempt and Temporal's attempt number of the launch activity. */
export interface FenceToken {
  attempt: number;
  try: number;
}

/** The try number of a tombstone: above any real try of its attempt. */
export const TOMBSTONE_TRY = 1_000_000_000;

/** Exit codes of the fence script beyond the command's own. */
export const FENCE_EXIT = { superseded: 90, lockTimeout: 91 } as const;

// $1 op (claim | run | tombstone), $2 container name, $3 attempt, $4 try, then the command for `run`.
const SCRIPT = `
set -u
op=$1; name=$2; attempt=$3; try=$4; shift 4
dir=\${RECOGDRIVE_FENCE_DIR:-$HOME/.recogdrive/fences}
mkdir -p "$dir" || exit 1
file=$dir/$name
if command -v flock >/dev/null 2>&1; then
  exec 9>"$file.lock"
  flock -w 60 9 || exit ${FENCE_EXIT.lockTimeout}
fi
find "$dir" -maxdepth 1 -type f -mtime +30 -delete 2>/dev/null
cur_attempt=0; cur_try=0
if [ -f "$file" ]; then read -r cur_attempt cur_try < "$file" || true; fi
newer() { [ "$1" -gt "$3" ] || { [ "$1" -eq "$3" ] && [ "$2" -gt "$4" ]; }; }
write() { printf '%s %s\\n' "$1" "$2" > "$file.tmp.$$" && mv -f "$file.tmp.$$" "$file"; }
case $op in
  claim)
    if newer "$cur_attempt" "$cur_try" "$attempt" "$try"; then echo "$cur_attempt $cur_try"; exit ${FENCE_EXIT.superseded}; fi
    write "$attempt" "$try" ;;
  run)
    if [ "$cur_attempt" != "$attempt" ] || [ "$cur_try" != "$try" ]; then echo "$cur_attempt $cur_try"; exit ${FENCE_EXIT.superseded}; fi
    # Not inheriting the lock: docker/podman leave processes (conmon) that would hold it for the container's life.
    "$@" 9>&- ;;
  tombstone)
    if newer "$attempt" "$try" "$cur_attempt" "$cur_try"; then write "$attempt" "$try"; fi ;;
  *) exit 2 ;;
esac
`;

/** argv that records `token` as the container's fence unless a newer one is there (exit FENCE_EXIT.superseded). */
export function claimFence(name: string, token: FenceToken): string[] {
  return ['sh', '-c', SCRIPT, 'rd-fence', 'claim', name, String(token.attempt), String(token.try)];
}

/** argv that runs `command` only while the fence still names `token`, holding the fence's lock meanwhile. */
export function fencedCommand(name: string, token: FenceToken, command: readonly string[]): string[] {
  return ['sh', '-c', SCRIPT, 'rd-fence', 'run', name, String(token.attempt), String(token.try), ...command];
}

/** argv that closes the fence for every try of `attempt` (and earlier attempts) for good. */
export function tombstoneFence(name: string, attempt: number): string[] {
  return ['sh', '-c', SCRIPT, 'rd-fence', 'tombstone', name, String(attempt), String(TOMBSTONE_TRY)];
}
