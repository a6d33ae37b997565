/**
 * The status page (`GET /`) in a real headless chromium, served by a real
 * sidecar over real SQLite files (and a PostgreSQL database with a password in
 * its URL, down): it shows each database and its state, follows a switchover
 * made by the CLI without a reload, shows every value as text, leaks no
 * password or token in anything it loads, fits a phone, loads nothing from
 * anywhere but the sidecar, and is gone with `server.status_page: false`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { StatusPageData } from '../../src/status-page/data.js';
import { inPage, launchBrowser, openPage, PHONE, type WatchedPage } from '../support/browser.js';
import { freePort } from '../support/cli.js';
import { waitFor } from '../support/failover.js';
import { sqliteCluster, startSidecar, type Sidecar, type SqliteCluster } from '../support/sqlite-cluster.js';

const PASSWORD = 'Pg-pass-7b1e93d0';
const TOKEN = 'page-token-5f2c8a91e4d7';
/** A reason an operator typed: markup that would run if the page put it in as HTML. */
const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

async function cellTexts(page: Page, section: string): Promise<string[][]> {
  return inPage(page, `Array.from(document.querySelectorAll(${JSON.stringify(`#section-${section} tbody tr`)}), (r) => Array.from(r.querySelectorAll('td'), (td) => td.textContent))`);
}

async function factText(page: Page, id: string): Promise<string> {
  return (await page.textContent(`#fact-${id}`)) ?? '';
}

describe('status page in a headless browser', () => {
  let cluster: SqliteCluster;
  let sidecar: Sidecar;
  let browser: Browser;
  // Cleanups of the shared fixtures, newest first, once every test of the suite has run.
  const cleanups: Array<() => Promise<void>> = [];
  const suite = { after: (fn: () => Promise<void>) => void cleanups.unshift(fn) };
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  before(async () => {
    cluster = sqliteCluster(suite, { secondaries: ['secondary1'] });
    // A PostgreSQL database nothing listens for: its URL (with the password) is in the config and in /api/status, masked.
    const pgPort = await freePort();
    cluster.doc.server.auth_token = TOKEN;
    cluster.doc.disaster_recovery.databases.reports = { name: 'reports', type: 'secondary', priority: 5, url: `postgresql://crawler:${PASSWORD}@127.0.0.1:${pgPort}/reports` };
    cluster.sandbox.writeConfig(cluster.doc);
    sidecar = await startSidecar(cluster.load());
    cluster.defer(() => sidecar.stop());
    const backup = await cluster.cli('backup', '--json');
    assert.equal(backup.code, 0, backup.stderr);
    browser = await launchBrowser(suite);
  });

  async function open(options: Parameters<typeof openPage>[1] = {}): Promise<WatchedPage> {
    const watched = await openPage(browser, options);
    const answer = await watched.page.goto(`${sidecar.http.url}/`);
    assert.equal(answer?.status(), 200);
    return watched;
  }

  test('shows each database with its role and state, the primary, auto-failover, the backup and the leader', async () => {
    // Every database probed at least once, so the page shows states, not "unknown".
    await waitFor('every database probed', 20_000, () => sidecar.service.status().databases.every((d) => d.checked_at !== null));
    const { page, consoleErrors } = await open();
    const rows = await cellTexts(page, 'databases');
    const byName = new Map(rows.map((r) => [r[0], r]));
    assert.deepEqual([...byName.keys()].sort(), ['primary', 'reports', 'secondary1']);
    assert.equal(byName.get('primary')![1], 'primary');
    assert.equal(byName.get('primary')![2], 'up');
    assert.equal(byName.get('secondary1')![1], 'secondary');
    assert.equal(byName.get('secondary1')![2], 'up');
    assert.match(byName.get('reports')![2]!, /^down/);
    assert.match(byName.get('reports')![9]!, /connection refused|ECONNREFUSED/i);
    assert.equal(await factText(page, 'primary'), 'primary');
    assert.match(await factText(page, 'auto-failover'), /^on/);
    assert.match(await factText(page, 'leader'), /this sidecar/);
    const backups = await cellTexts(page, 'backups');
    assert.equal(backups.length, 1, JSON.stringify(backups));
    assert.equal(backups[0]![0], 'primary');
    assert.match(backups[0]![3]!, /\d+(\.\d)? (B|KiB|MiB)/);
    assert.deepEqual(consoleErrors, [], 'no script error and no Content-Security-Policy violation');
    await page.context().close();
  });

  test('follows a switchover made by the CLI without a reload, and shows a hostile reason as text', async () => {
    const { page, consoleErrors } = await open();
    assert.equal(await factText(page, 'primary'), 'primary');
    let loads = 0;
    page.on('load', () => loads++);
    await inPage(page, 'window.__sameDocument = true');

    const switched = await cluster.cli('failover', 'secondary1', '--reason', HOSTILE, '--json');
    assert.equal(switched.code, 0, switched.stderr);
    // A locator waits without evaluating strings in the page (which its Content-Security-Policy forbids).
    await page.locator('#fact-primary', { hasText: /^secondary1$/ }).waitFor({ timeout: 30_000 });

    assert.equal(loads, 0, 'the page was not reloaded');
    assert.equal(await inPage(page, 'window.__sameDocument'), true, 'same document');
    const rows = new Map((await cellTexts(page, 'databases')).map((r) => [r[0], r]));
    assert.equal(rows.get('secondary1')![1], 'primary');
    const failovers = await cellTexts(page, 'failovers');
    assert.equal(failovers[0]![2], 'primary → secondary1');
    assert.equal(failovers[0]![3], 'success');
    assert.ok(failovers[0]![6]!.includes(HOSTILE), `the reason shows verbatim as text: ${failovers[0]![6]}`);
    assert.equal(await page.locator('#section-failovers img, #section-failovers script').count(), 0, 'no element made of the reason');
    assert.equal(await inPage(page, 'window.__pwned'), undefined, 'nothing of the reason ran');
    // A fresh load renders the same reason as text too (the server-side template escapes it).
    await page.reload();
    assert.ok((await cellTexts(page, 'failovers'))[0]![6]!.includes(HOSTILE));
    assert.equal(await inPage(page, 'window.__pwned'), undefined);
    assert.deepEqual(consoleErrors, []);
    await page.context().close();
  });

  test('no password and no token in the HTML or in any answer the page loads; nothing loaded from elsewhere', async () => {
    // The secret is really there to leak: /api/status (with the token) shows that URL, masked.
    const api = await fetch(`${sidecar.http.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.match(await api.text(), /crawler:\*\*\*@127\.0\.0\.1/);
    assert.equal((await fetch(`${sidecar.http.url}/api/status`)).status, 401, '/api/status still needs the token');

    const watched = await open();
    // Wait for at least one refresh through /status.json, so its answers are among those searched.
    const refreshed = await watched.page.waitForResponse((r) => r.url().endsWith('/status.json'), { timeout: 30_000 });
    await refreshed.finished();
    const answers = await watched.answers();
    assert.ok(answers.some((a) => a.url.endsWith('/status.json') && a.status === 200), 'the page fetched its data');
    const html = await watched.page.content();
    for (const [what, text] of [['the rendered page', html], ...answers.map((a) => [a.url, a.body] as const)] as const) {
      assert.ok(!text.includes(PASSWORD), `${what} holds the database password`);
      assert.ok(!text.includes(TOKEN), `${what} holds the auth token`);
      assert.ok(!text.includes(cluster.sandbox.dir), `${what} holds a file path of the host`);
    }
    const data = JSON.parse(answers.find((a) => a.url.endsWith('/status.json'))!.body) as StatusPageData;
    assert.ok(data.databases.some((d) => d.name === 'reports'));
    for (const url of watched.requests) assert.ok(url.startsWith(`${sidecar.http.url}/`), `the page loaded ${url}, not from the sidecar`);
    const csp = answers.find((a) => a.url === `${sidecar.http.url}/`)!.headers['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[^']+'(;|$)/);
    assert.match(csp, /connect-src 'self'/);
    await watched.context.close();
  });

  test('reads on a phone: no horizontal scrolling of the page, wide tables scroll in their own box', async () => {
    const { page, context } = await open({ viewport: PHONE, isMobile: true });
    assert.equal(await page.getAttribute('meta[name=viewport]', 'content'), 'width=device-width, initial-scale=1');
    const widths = await inPage<{ page: number; viewport: number }>(page, '({ page: document.documentElement.scrollWidth, viewport: window.innerWidth })');
    assert.ok(widths.page <= widths.viewport, `the page is ${widths.page} px wide in a ${widths.viewport} px viewport`);
    const table = await inPage<{ client: number; overflow: string }>(
      page,
      "(() => { const box = document.querySelector('#section-databases .scroll'); return { client: box.clientWidth, overflow: getComputedStyle(box).overflowX }; })()",
    );
    assert.equal(table.overflow, 'auto');
    assert.ok(table.client <= widths.viewport);
    await context.close();
  });
});

describe('server.status_page: false', () => {
  test('GET / and GET /status.json answer 404; the rest of the sidecar serves as before', async (t) => {
    const cluster = sqliteCluster(t);
    (cluster.doc.server as Record<string, unknown>).status_page = false;
    cluster.sandbox.writeConfig(cluster.doc);
    const sidecar = await startSidecar(cluster.load());
    cluster.defer(() => sidecar.stop());
    assert.equal((await fetch(`${sidecar.http.url}/`)).status, 404);
    assert.equal((await fetch(`${sidecar.http.url}/status.json`)).status, 404);
    assert.equal((await fetch(`${sidecar.http.url}/healthz`)).status, 200);
  });

  test('on by default: GET /status.json answers without a token', async (t) => {
    const cluster = sqliteCluster(t);
    const sidecar = await startSidecar(cluster.load());
    cluster.defer(() => sidecar.stop());
    const answer = await fetch(`${sidecar.http.url}/status.json`);
    assert.equal(answer.status, 200);
    assert.equal(((await answer.json()) as StatusPageData).primary, 'primary');
  });
});
