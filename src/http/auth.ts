import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * `Authorization: Bearer <token>` (or Basic with the token as password, where
 * allowed), compared in constant time (both sides hashed
 * first, so the length does not leak either). No configured token: refused, not open.
 */
export function requireBearer(token: string | undefined, options: { basic?: boolean } = {}): RequestHandler {
  const expected = token ? digest(token) : undefined;
  return (req, res, next) => {
    if (!expected) {
      res.status(403).json({ error: 'this route is disabled: set server.auth_token in the config to enable it' });
      return;
    }
    const given = credential(req.get('authorization') ?? '', options.basic === true);
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      res.set('WWW-Authenticate', 'Bearer realm="dr-sidecar"');
      res.status(401).json({ error: given === undefined ? 'missing Authorization: Bearer <token>' : 'invalid credentials' });
      return;
    }
    next();
  };
}

/** The token from `Bearer <token>`, or (where allowed, for Alertmanager's basic_auth) the password of `Basic`. */
function credential(header: string, basic: boolean): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer) return bearer[1]!.trim();
  const basicMatch = basic ? /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header) : null;
  if (!basicMatch) return undefined;
  const decoded = Buffer.from(basicMatch[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}
