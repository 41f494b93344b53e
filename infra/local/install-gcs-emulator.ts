/** `node infra/local/install-gcs-emulator.ts`: makes sure the pinned fake-gcs-server is built (tests, CI) and prints its path. */
import { ensureFakeGcsServer } from './fake-gcs-server.ts';

console.log(await ensureFakeGcsServer((line) => console.error(line)));
