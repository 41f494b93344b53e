/** `node infra/local/install-registry.ts`: makes sure the pinned image registry of the tests is built and prints its path. */
import { ensureRegistry } from './registry.ts';

console.log(await ensureRegistry((line) => console.error(line)));
