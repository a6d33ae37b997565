import express from 'express';
import { readStatusPage, type StatusPageSource } from '../status-page/read.js';
import { statusPageRenderer } from '../status-page/render.js';

/**
 * `GET /`: the status page, and `GET /status.json`: exactly its data, which the
 * page fetches to refresh itself. No token (as /metrics): the data holds
 * nothing /api/status keeps behind one (see status-page/data.ts).
 */
export function statusPageRoutes(source: StatusPageSource): express.Router {
  const renderer = statusPageRenderer();
  const router = express.Router();
  router.get('/', async (_req, res) => {
    const html = renderer.html(await readStatusPage(source));
    res.set({
      'Content-Security-Policy': renderer.contentSecurityPolicy,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.type('html').send(html);
  });
  router.get('/status.json', async (_req, res) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.json(await readStatusPage(source));
  });
  return router;
}
