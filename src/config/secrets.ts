/**
 * Secrets are masked where they are put into text: a database URL through
 * maskDatabaseUrl, a webhook URL through maskWebhookUrl, the token never
 * formatted at all. What is left here is the last safety net for text the
 * sidecar did not write itself (a driver's or a tool's message), and it only
 * knows secrets long enough that a match is the secret and not a word: with a
 * password "e" or "password", replacing every occurrence garbled messages
 * ("databas*** ... do***s not ***xist", "*** authentication failed") and showed
 * the secret by the holes it left.
 */

/** `server.auth_token` shorter than this is refused at load: a guessable token guards failover. */
export const MIN_AUTH_TOKEN_LENGTH = 16;

/**
 * A secret this long is in the safety net. Shorter ones are not: a match of a
 * few characters (or of "password", the guide's example) is usually a word.
 */
export const SAFETY_NET_MIN_LENGTH = 12;

const MASK = '***';

/** The problem with a token, or undefined when it is acceptable. */
export function authTokenProblem(token: string | undefined): string | undefined {
  if (token === undefined || token.length >= MIN_AUTH_TOKEN_LENGTH) return undefined;
  return (
    `server.auth_token: is ${token.length} character${token.length === 1 ? '' : 's'} long; ` +
    `use at least ${MIN_AUTH_TOKEN_LENGTH} (e.g. the output of \`openssl rand -hex 24\`), or leave it empty to refuse every /api/* and POST route`
  );
}

/**
 * The forms of the secrets the safety net replaces: as written, URL-encoded
 * and JSON-escaped (a log line is JSON), each only when long enough.
 */
export function safetyNetSecrets(candidates: Iterable<string | undefined>): string[] {
  const forms = new Set<string>();
  for (const secret of candidates) {
    if (secret === undefined || secret.length < SAFETY_NET_MIN_LENGTH) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first: a secret that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of the (long) secrets by `***`. The last net, not the way to mask. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(MASK);
  return out;
}

/** A webhook URL split into what fetch gets and the credentials it cannot carry in the URL. */
export interface WebhookTarget {
  /** The URL without user and password (fetch refuses URLs with credentials). */
  href: string;
  /** `Basic …` from the URL's user and password, if it had any. */
  authorization: string | undefined;
  /** The URL as it may be shown: password and every query value replaced by `***`. */
  shown: string;
  /** The secrets of this URL (password, query values), for the safety net. */
  secrets: string[];
}

/**
 * Reads a webhook URL: credentials in it are sent as HTTP Basic authorization,
 * as curl and Alertmanager do, and the URL is shown with its password and its
 * query values masked (a `?token=…` is a credential too).
 */
export function webhookTarget(url: string): WebhookTarget {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  const authorization = user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` : undefined;
  const queryValues = [...parsed.searchParams.values()].filter((v) => v !== '');
  parsed.username = '';
  parsed.password = '';
  const href = parsed.toString();
  return { href, authorization, shown: maskWebhookUrl(url), secrets: [password, ...queryValues].filter((s) => s !== '') };
}

/** `http://user:***@host/path?token=***`: what logs and errors say about a webhook. */
export function maskWebhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(an invalid URL)';
  }
  if (parsed.password) parsed.password = MASK;
  // Masked after serialising: URLSearchParams would percent-encode the asterisks.
  const keys = [...parsed.searchParams.keys()];
  parsed.search = '';
  const query = keys.length > 0 ? `?${keys.map((k) => `${encodeURIComponent(k)}=${MASK}`).join('&')}` : '';
  parsed.hash = '';
  return `${parsed.toString()}${query}`;
}

/** Replaces every way `url` can appear in `text` (as given, as fetch prints it) by its masked form. */
export function maskUrlIn(text: string, url: string): string {
  const shown = maskWebhookUrl(url);
  let out = text;
  for (const form of new Set([url, safeHref(url)])) if (form) out = out.split(form).join(shown);
  return out;
}

function safeHref(url: string): string | undefined {
  try {
    return new URL(url).href;
  } catch {
    return undefined;
  }
}
