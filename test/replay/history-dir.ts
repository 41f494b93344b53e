/** Where the recorded histories (replay fixtures) live. */
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

export const HISTORY_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'histories');
