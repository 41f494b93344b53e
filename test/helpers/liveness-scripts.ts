/**
 * Stage commands (sh) that play the metric cache compressed in time, for the liveness tests
 * (test/unit/liveness.test.ts through the local executor, test/testbed/liveness-ssh.test.ts over
 * SSH): nuplan's Ray bar printed as tqdm starts it, then files written while nothing is printed.
 */

/**
 * The hang timeout the scripts are timed against: ~6 s of silence is more than twice as long. Not
 * shorter: on a loaded 2-core machine the wrapper's start alone has taken over 1.5 s.
 */
export const LIVENESS_HANG_TIMEOUT_MS = 2_500;

/** Files the writing script leaves (one metric_cache.pkl per token). */
export const LIVENESS_FILES = 60;

const RAY_START = "printf '\\rRay objects:   0%%|          | 0/4 [00:00<?, ?it/s]' >&2";

/** ~6 s without a line of output, one metric_cache.pkl every ~100 ms, then the bar finishes. */
export const WRITES_SILENTLY = `${RAY_START}
i=0
while [ $i -lt ${LIVENESS_FILES} ]; do
  i=$((i+1))
  mkdir -p "$RECOGDRIVE_OUTPUT_DIR/log-1/unknown/token-$i"
  printf 'pickle %s' $i > "$RECOGDRIVE_OUTPUT_DIR/log-1/unknown/token-$i/metric_cache.pkl"
  sleep 0.1
done
printf '\\rRay objects: 100%%|##########| 4/4 [00:06<00:00,  1.50s/it]\\n' >&2
echo 'Done storing metadata csv file.'`;

/** The same start, then neither a line nor a file. */
export const STUCK = `${RAY_START}
sleep 120`;
