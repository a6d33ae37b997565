/**
 * `npm run dashboards`: writes every dashboard of dashboards/index.ts to
 * grafana/dashboards/*.json (run from the repository root). With `--check`
 * writes nothing and exits 1 when a committed file differs from the code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { dashboards, DASHBOARDS_DIR, renderDashboard } from './index.js';

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const dir = path.resolve(DASHBOARDS_DIR);
  fs.mkdirSync(dir, { recursive: true });
  let stale = 0;
  for (const { file, build } of dashboards) {
    const target = path.join(dir, file);
    const text = renderDashboard(build());
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
    if (current === text) {
      process.stdout.write(`${path.join(DASHBOARDS_DIR, file)}: up to date\n`);
    } else if (check) {
      stale++;
      process.stderr.write(`${path.join(DASHBOARDS_DIR, file)}: differs from the code in dashboards/; run \`npm run dashboards\`\n`);
    } else {
      fs.writeFileSync(target, text);
      process.stdout.write(`${path.join(DASHBOARDS_DIR, file)}: written\n`);
    }
  }
  return stale > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
