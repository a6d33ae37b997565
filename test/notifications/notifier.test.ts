import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebhookNotifier } from '../../src/notifications/notifier.js';
import { memoryLogger } from '../support/sqlite-cluster.js';

test('a webhook URL with user and password: delivered with Basic authorization (fetch refuses such a URL), logged masked', async (t) => {
  const received: Array<{ url: string; authorization: string | undefined }> = [];
  const server = http.createServer((req, res) => {
    received.push({ url: req.url!, authorization: req.headers.authorization });
    req.resume().on('end', () => res.writeHead(200).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const { log, lines } = memoryLogger();

  const notifier = new WebhookNotifier({ urls: [`http://hook%40user:s3cret@127.0.0.1:${port}/hook?token=tok3n-q`], timeoutMs: 5000, attempts: 1, backoffMs: 1 }, log);
  notifier.notify({ event: 'failover', summary: 'test' });
  await notifier.drain(10_000);

  assert.deepEqual(received, [{ url: '/hook?token=tok3n-q', authorization: `Basic ${Buffer.from('hook@user:s3cret').toString('base64')}` }]);
  const delivered = lines.find((l) => /delivered/.test(l.msg));
  assert.equal(delivered?.webhook, `http://hook%40user:***@127.0.0.1:${port}/hook?token=***`);
  const text = JSON.stringify(lines);
  assert.ok(!text.includes('s3cret') && !text.includes('tok3n-q'), text);
});
