import { spawnSync } from 'node:child_process';

/**
 * The path of an outside tool a test needs. A missing tool fails the test with
 * its name and how to install it: it never turns into a silent skip.
 */
export function requireTool(name: string, install: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) throw new Error(`this test needs \`${name}\`, which is not installed: ${install}`);
  return path;
}
