/** `node infra/local/install-temporal.ts`: makes sure a Temporal CLI is available (tests, CI) and prints its path. */
import { ensureTemporalCli } from './temporal-cli.ts';

console.log(await ensureTemporalCli((line) => console.error(line)));
