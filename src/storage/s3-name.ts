/** `s3://bucket/prefix`: how a destination is named in logs, metrics and status (no secret in it). */
export function s3StorageName(bucket: string, prefix: string): string {
  const p = normalizePrefix(prefix).replace(/\/$/, '');
  return `s3://${bucket}${p ? `/${p}` : ''}`;
}

/** '' or a prefix ending with '/', without a leading one. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}
