/**
 * `node infra/local/install-image-tools.ts`: makes sure the pinned uv and hadolint are installed
 * (tests, CI) and prints their paths. Outside CI a failed install only warns: the image tests then
 * skip, saying why. In CI (CI=true) it fails, as those tests would.
 */
import { ensureHadolint, ensureUv } from './image-tools.ts';

const log = (line: string): void => console.error(line);
for (const ensure of [ensureUv, ensureHadolint]) {
  try {
    console.log(await ensure(log));
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    log(`warning: ${(error as Error).message} (the image tests that need it will skip)`);
  }
}
