import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: tests run compiled from dist/test/…, and read fixtures from the source tree. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const fromRoot = (...parts: string[]) => path.join(repoRoot, ...parts);
