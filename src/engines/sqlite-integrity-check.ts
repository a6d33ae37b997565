// Runs as a child process: `node sqlite-integrity-check.js FILE` prints one JSON line.
// PRAGMA quick_check reads every page of a file (seconds for a large one) in one
// uninterruptible better-sqlite3 call; a worker thread inside such a call cannot be
// stopped without aborting the whole process, a child process can be killed.
import Database from 'better-sqlite3';

export type IntegrityReply = { ok: true } | { ok: false; problems: string[] } | { ok: false; error: string; code?: string };

/** Lines of quick_check output kept: the first ones say where the damage is. */
const MAX_PROBLEMS = 5;

function check(file: string): IntegrityReply {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
    const rows = db.pragma(`quick_check(${MAX_PROBLEMS})`, { simple: false }) as Array<{ quick_check: string }>;
    const problems = rows.map((r) => r.quick_check);
    return problems.length === 1 && problems[0] === 'ok' ? { ok: true } : { ok: false, problems };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { ok: false, error: e.message ?? String(error), ...(e.code ? { code: e.code } : {}) };
  } finally {
    db?.close();
  }
}

const file = process.argv[2];
if (file) process.stdout.write(`${JSON.stringify(check(file))}\n`);
