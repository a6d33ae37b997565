/**
 * Server-side HTML of the status page: eta renders templates/status-page.eta
 * (escaping every `<%= %>` value), with the stylesheet and the browser script
 * inlined so the page needs nothing from anywhere else. Both are the same for
 * every answer, so the Content-Security-Policy names them by hash: no other
 * script or style runs, even one a value somehow smuggled in.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { DrError } from '../errors.js';
import type { StatusPageData } from './data.js';
import { CLIENT_FUNCTIONS, pageView } from './view.js';

/** Seconds between two refreshes of the page's data in the browser. */
export const REFRESH_SECONDS = 5;

/** The package's templates/ folder, found from this module's own place (dist/src/status-page/), not the working directory. */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../../templates/', import.meta.url));

export interface StatusPageRenderer {
  html(data: StatusPageData): string;
  /** The Content-Security-Policy header value for the HTML. */
  readonly contentSecurityPolicy: string;
}

export function statusPageRenderer(dir = TEMPLATES_DIR): StatusPageRenderer {
  const style = readTemplate(dir, 'status-page.css');
  const script = `${CLIENT_FUNCTIONS.map(String).join('\n')}\n${readTemplate(dir, 'status-page.js')}`;
  readTemplate(dir, 'status-page.eta');
  const eta = new Eta({ views: dir, cache: true });
  const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${hash(script)}`,
    `style-src ${hash(style)}`,
    "connect-src 'self'",
    // The icon is a data: URL in the page: the browser asks the sidecar for no /favicon.ico.
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    contentSecurityPolicy,
    html: (data) => eta.render('status-page', { view: pageView(data), style, script, refreshSeconds: REFRESH_SECONDS }),
  };
}

function readTemplate(dir: string, name: string): string {
  try {
    return fs.readFileSync(`${dir}/${name}`, 'utf8');
  } catch (error) {
    throw new DrError(
      `the status page's template ${dir}/${name} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'the package is incomplete (templates/ ships with it); reinstall it, or set server.status_page: false',
    );
  }
}
