/** `node infra/local/install-gcsfuse.ts`: makes sure the pinned gcsfuse is built (test bed, CI) and prints its path. */
import { ensureGcsfuse } from './gcsfuse.ts';

console.log(await ensureGcsfuse((line) => console.error(line)));
