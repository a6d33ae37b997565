import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * `Authorization: Bearer <token>`, compared in constant time (both sides hashed
 * first, so the length does not leak either). No configured token: refused, not open.
 */
export function requireBearer(token: string | undefined): RequestHandler {
  const expected = token ? digest(token) : undefined;
  return (req, res, next) => {
    if (!expected) {
      res.status(403).json({ error: 'this route is disabled: set server.auth_token in the config to enable it' });
      return;
    }
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
      res.set('WWW-Authenticate', 'Bearer realm="dr-sidecar"');
      res.status(401).json({ error: match ? 'invalid bearer token' : 'missing Authorization: Bearer <token>' });
      return;
    }
    next();
  };
}
