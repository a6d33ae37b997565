import http from 'node:http';

/** One GET on a fresh connection, bounded by `timeoutMs`; resolves with status and body. */
export function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Lines `dr_database_up{...} 1` in a /metrics body. */
export function countUp(body: string): number {
  return body.split('\n').filter((l) => l.startsWith('dr_database_up{') && l.endsWith(' 1')).length;
}

/** SQLite databases with a `dr_replication_lag_seconds` series: those a secondary copy has reached. */
export function countSqliteCopies(body: string): number {
  return body.split('\n').filter((l) => /^dr_replication_lag_seconds\{database="sqlite/.test(l)).length;
}
