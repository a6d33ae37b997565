/**
 * A real headless browser for page tests: Debian's chromium driven by
 * playwright-core (no browser download; `DR_CHROMIUM` points elsewhere).
 * A missing chromium fails the test with its name and how to install it.
 */
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.DR_CHROMIUM ?? '/usr/bin/chromium';

/** A phone's viewport (a common small one: 360 CSS pixels wide). */
export const PHONE = { width: 360, height: 740 } as const;

export async function launchBrowser(t: { after(fn: () => Promise<void>): void }): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`this test needs chromium at ${CHROMIUM}, which is not installed: apt-get install -y chromium (or set DR_CHROMIUM to a Chromium binary)`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-gpu', '--disable-dev-shm-usage'] });
  t.after(() => browser.close());
  return browser;
}

export interface Answer {
  url: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A page and everything it did: every request it made, every answer it got (with its body), every console error. */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  requests: string[];
  consoleErrors: string[];
  /** The answers so far, bodies read (waits for those still being read). */
  answers(): Promise<Answer[]>;
}

export async function openPage(browser: Browser, options: { viewport?: { width: number; height: number }; isMobile?: boolean } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, isMobile: options.isMobile ?? false, hasTouch: options.isMobile ?? false });
  const page = await context.newPage();
  const requests: string[] = [];
  const consoleErrors: string[] = [];
  const reading: Array<Promise<Answer>> = [];
  page.on('request', (r) => void requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => void consoleErrors.push(String(e)));
  page.on('response', (r) => {
    reading.push(
      r.text().then(
        (body) => ({ url: r.url(), status: r.status(), headers: r.headers(), body }),
        () => ({ url: r.url(), status: r.status(), headers: r.headers(), body: '' }),
      ),
    );
  });
  return { page, context, requests, consoleErrors, answers: () => Promise.all(reading) };
}

/**
 * Evaluates a JavaScript expression in the page. A string rather than a function: the
 * project compiles without the DOM's types, and a string cannot reach this process's scope by mistake.
 */
export function inPage<T = unknown>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}
