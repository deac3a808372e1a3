// Where the shared corpus of real Envoy configs lives: `shared/` beside the repository (as on the
// developers' machines and in CI), or LEGATE_CORPUS_DIR.

import { fileURLToPath } from 'node:url';

export const CORPUS_DIR: string = process.env.LEGATE_CORPUS_DIR ?? fileURLToPath(new URL('../../../shared/corpus/envoy', import.meta.url));
