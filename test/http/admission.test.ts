import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import express from 'express';
import { admission } from '../../src/http/admission.js';

/** A real HTTP server whose route is gated; each admitted request waits until the test releases it. */
async function gatedServer(concurrency: number, maxWaiting: number) {
  const gate = admission({ concurrency, maxWaiting, retryAfterSeconds: 1 });
  const started: string[] = [];
  const releases: Array<() => void> = [];
  const app = express();
  app.post('/deliver/:id', gate, (req, res) => {
    started.push(String(req.params.id));
    releases.push(() => res.json({ id: req.params.id }));
  });
  app.get('/metrics', (_req, res) => {
    res.send('up 1\n');
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { gate, started, releases, base, close: () => new Promise((r) => server.close(r)) };
}

const until = async (what: string, check: () => boolean) => {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('admission: at most `concurrency` deliveries are worked on, the others wait in order, other routes are answered meanwhile', async (t) => {
  const s = await gatedServer(2, 10);
  t.after(() => s.close());
  const answers = ['a', 'b', 'c', 'd', 'e'].map((id) => fetch(`${s.base}/deliver/${id}`, { method: 'POST' }).then(async (r) => [r.status, ((await r.json()) as { id: string }).id]));
  await until('two deliveries under way and three waiting', () => s.started.length === 2 && s.gate.waiting === 3);
  assert.deepEqual(s.started, ['a', 'b']);

  const metrics = await fetch(`${s.base}/metrics`);
  assert.equal(metrics.status, 200, 'a scrape does not wait behind the deliveries');

  s.releases.shift()!();
  await until('the next waiting delivery admitted', () => s.started.length === 3);
  assert.equal(s.gate.inFlight, 2);
  while (s.started.length < 5 || s.releases.length > 0) {
    await until('a delivery to release', () => s.releases.length > 0);
    s.releases.shift()!();
  }
  assert.deepEqual(await Promise.all(answers), ['a', 'b', 'c', 'd', 'e'].map((id) => [200, id]));
  assert.deepEqual(s.started, ['a', 'b', 'c', 'd', 'e'], 'admitted in arrival order');
  await until('every slot free', () => s.gate.inFlight === 0 && s.gate.waiting === 0);
});

test('admission: beyond maxWaiting a delivery is refused with 503 and Retry-After, and nothing of it runs', async (t) => {
  const s = await gatedServer(1, 1);
  t.after(() => s.close());
  const first = fetch(`${s.base}/deliver/1`, { method: 'POST' });
  await until('one under way', () => s.started.length === 1);
  const second = fetch(`${s.base}/deliver/2`, { method: 'POST' });
  await until('one waiting', () => s.gate.waiting === 1);
  const third = await fetch(`${s.base}/deliver/3`, { method: 'POST' });
  assert.equal(third.status, 503);
  assert.equal(third.headers.get('retry-after'), '1');
  assert.match(((await third.json()) as { error: string }).error, /too many deliveries at once \(1 under way, 1 waiting\)/);
  s.releases.shift()!();
  await until('the waiting one admitted', () => s.releases.length === 1);
  s.releases.shift()!();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  assert.deepEqual(s.started, ['1', '2'], 'the refused delivery never reached the handler');
});

test('admission: a sender that hangs up frees its slot, and one that gave up while waiting is skipped', async (t) => {
  const s = await gatedServer(1, 10);
  t.after(() => s.close());
  const hangUp = new AbortController();
  const gaveUp = new AbortController();
  const first = fetch(`${s.base}/deliver/1`, { method: 'POST', signal: hangUp.signal }).catch(() => 'aborted');
  await until('one under way', () => s.started.length === 1);
  const second = fetch(`${s.base}/deliver/2`, { method: 'POST', signal: gaveUp.signal }).catch(() => 'aborted');
  const third = fetch(`${s.base}/deliver/3`, { method: 'POST' });
  await until('two waiting', () => s.gate.waiting === 2);
  gaveUp.abort();
  await new Promise((r) => setTimeout(r, 50));
  hangUp.abort();
  assert.equal(await first, 'aborted');
  assert.equal(await second, 'aborted');
  await until('the third admitted', () => s.started.length === 2);
  assert.deepEqual(s.started, ['1', '3']);
  s.releases.at(-1)!();
  assert.equal((await third).status, 200);
});
