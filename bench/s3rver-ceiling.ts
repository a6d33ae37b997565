/**
 * What s3rver itself can take on this machine, measured with plain HTTP and
 * nothing of ours: no SDK, no signing, no hashing, no buffering (each request
 * body is a read stream of the file, or of a slice of it). s3rver accepts
 * unauthenticated requests, so a bare PUT is a valid upload. The figures are
 * the ceiling an uploader can reach against this server: one PUT of the whole
 * file, and a multipart upload of the shape the uploader uses, whose
 * CompleteMultipartUpload makes s3rver read every part back and write the
 * object again (a real S3 service only links the parts).
 */
import fs from 'node:fs';
import http from 'node:http';

interface Answer {
  status: number;
  body: string;
  etag: string | undefined;
}

function request(agent: http.Agent, url: URL, method: string, body: fs.ReadStream | string | undefined, length: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { 'content-length': length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const answer = { status: res.statusCode ?? 0, body: text, etag: res.headers.etag };
        if (answer.status !== 200) reject(new Error(`${method} ${url.pathname}${url.search}: HTTP ${answer.status} ${text.slice(0, 300)}`));
        else resolve(answer);
      });
    });
    req.on('error', reject);
    if (body instanceof fs.ReadStream) body.pipe(req);
    else req.end(body);
  });
}

/** One PUT of the whole file; resolves with its seconds. */
export async function rawPut(objectUrl: string, file: string): Promise<{ seconds: number }> {
  const agent = new http.Agent({ keepAlive: true });
  const started = performance.now();
  await request(agent, new URL(objectUrl), 'PUT', fs.createReadStream(file, { highWaterMark: 1 << 20 }), fs.statSync(file).size);
  agent.destroy();
  return { seconds: (performance.now() - started) / 1000 };
}

/** A multipart upload of `partBytes` parts, `inFlight` at a time; seconds in all and of the completion alone. */
export async function rawMultipart(objectUrl: string, file: string, partBytes: number, inFlight: number): Promise<{ seconds: number; completeSeconds: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight + 1 });
  const size = fs.statSync(file).size;
  const at = (query: string) => new URL(`${objectUrl}?${query}`);
  const started = performance.now();
  const initiated = await request(agent, at('uploads'), 'POST', undefined, 0);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(initiated.body)?.[1];
  if (!uploadId) throw new Error(`no UploadId in ${initiated.body.slice(0, 300)}`);
  const count = Math.ceil(size / partBytes);
  const etags: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const start = i * partBytes;
      const end = Math.min(size, start + partBytes) - 1;
      const part = fs.createReadStream(file, { start, end, highWaterMark: 1 << 20 });
      etags[i] = (await request(agent, at(`partNumber=${i + 1}&uploadId=${uploadId}`), 'PUT', part, end - start + 1)).etag ?? '';
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const completing = performance.now();
  const parts = etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join('');
  const xml = `<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`;
  await request(agent, at(`uploadId=${uploadId}`), 'POST', xml, Buffer.byteLength(xml));
  const ended = performance.now();
  agent.destroy();
  return { seconds: (ended - started) / 1000, completeSeconds: (ended - completing) / 1000 };
}
