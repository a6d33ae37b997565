/**
 * `npm run screenshot`: the pictures of the status page in the README
 * (docs/status-page.png, docs/status-page-phone.png). A real sidecar over three
 * SQLite files in a temporary folder, with a history worth showing (a backup, a
 * switchover and back, an alert delivered by "Alertmanager"), photographed by
 * headless chromium once the page has refreshed itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, openPage, PHONE } from '../test/support/browser.js';
import { REPO_ROOT } from '../test/support/cli.js';
import { sqliteCluster, startSidecar } from '../test/support/sqlite-cluster.js';

const OUT = path.join(REPO_ROOT, 'docs');

async function main(): Promise<void> {
  const cleanups: Array<() => Promise<void>> = [];
  const owner = { after: (fn: () => Promise<void>) => void cleanups.unshift(fn) };
  try {
    const cluster = sqliteCluster(owner, { secondaries: ['secondary1', 'secondary2'], rows: 500 });
    const sidecar = await startSidecar(cluster.load());
    cluster.defer(() => sidecar.stop());
    await must(cluster.cli('backup', '--name', 'nightly'));
    await must(cluster.cli('failover', 'secondary1', '--reason', 'kernel upgrade on the primary host'));
    await must(cluster.cli('failover', 'primary', '--reason', 'maintenance done'));
    await postAlert(sidecar.http.url, cluster.doc.server.auth_token!);

    const browser = await launchBrowser(owner);
    fs.mkdirSync(OUT, { recursive: true });
    for (const [file, options] of [
      ['status-page.png', { viewport: { width: 1180, height: 900 } }],
      ['status-page-phone.png', { viewport: PHONE, isMobile: true }],
    ] as const) {
      const { page, context } = await openPage(browser, options);
      await page.goto(`${sidecar.http.url}/`);
      // One refresh through /status.json, so the picture is of the page as it keeps itself.
      await page.waitForResponse((r) => r.url().endsWith('/status.json'), { timeout: 30_000 });
      await page.screenshot({ path: path.join(OUT, file), fullPage: true });
      await context.close();
      console.log(`wrote docs/${file}`);
    }
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

async function must(run: Promise<{ code: number | null; stderr: string }>): Promise<void> {
  const r = await run;
  if (r.code !== 0) throw new Error(`a CLI command failed: ${r.stderr}`);
}

/** One firing alert, as Alertmanager would deliver it to the sidecar's webhook. */
async function postAlert(url: string, token: string): Promise<void> {
  const alert = {
    status: 'firing',
    labels: { alertname: 'replication_lag_high', severity: 'warning', database: 'secondary2' },
    annotations: { summary: 'secondary2 lags behind the primary' },
    startsAt: new Date(Date.now() - 120_000).toISOString(),
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://127.0.0.1:9090/graph',
    fingerprint: '3f2a9c41d0b7e615',
  };
  const body = { version: '4', groupKey: '{}:{}', truncatedAlerts: 0, status: 'firing', receiver: 'dr-sidecar', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://127.0.0.1:9093', alerts: [alert] };
  const res = await fetch(`${url}/alertmanager/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`the webhook answered ${res.status}: ${await res.text()}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
