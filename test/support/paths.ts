import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_MODELS = resolve(REPO_ROOT, '..', 'shared', 'models');
export const EXAMPLES = resolve(REPO_ROOT, 'examples', 'models');
