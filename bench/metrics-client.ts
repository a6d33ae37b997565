/**
 * Child process of the /metrics latency section: sends `count` sequential
 * GET requests over one keep-alive connection and reports each one's time
 * (request written until the body's last byte) to the parent over IPC.
 * Usage (forked): metrics-client.js <url> <warmup> <count>
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface MetricsClientResult {
  durationsMs: number[];
  /** Requests that went over an already open connection. */
  reused: number;
  bodyBytes: number;
  /** Count of `dr_database_up{...} 1` lines in the last body. */
  databasesUp: number;
  error?: string;
}

const REQUEST_TIMEOUT_MS = 2_000;

function get(agent: http.Agent, url: string): Promise<{ body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        else resolve({ body: Buffer.concat(chunks).toString('utf8'), reused: req.reusedSocket });
      });
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`GET ${url}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

async function main(url: string, warmup: number, count: number): Promise<MetricsClientResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const result: MetricsClientResult = { durationsMs: [], reused: 0, bodyBytes: 0, databasesUp: 0 };
  try {
    for (let i = 0; i < warmup; i++) await get(agent, url);
    let body = '';
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const answer = await get(agent, url);
      result.durationsMs.push(performance.now() - started);
      if (answer.reused) result.reused++;
      body = answer.body;
    }
    result.bodyBytes = Buffer.byteLength(body);
    result.databasesUp = body.split('\n').filter((l) => l.startsWith('dr_database_up{') && l.endsWith(' 1')).length;
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    agent.destroy();
  }
  return result;
}

const [url, warmup, count] = process.argv.slice(2);
if (url && process.send) {
  const result = await main(url, Number(warmup), Number(count));
  process.send(result, () => process.disconnect());
}
