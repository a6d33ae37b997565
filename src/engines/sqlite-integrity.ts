import { execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { IntegrityReply } from './sqlite-integrity-check.js';

const CHECK_SCRIPT = fileURLToPath(new URL('./sqlite-integrity-check.js', import.meta.url));

/**
 * SQLite's answers that mean the file's pages are damaged. A lock or a missing file is no
 * verdict on its pages, nor is a bad header: every probe reads the header itself, and a
 * verdict would outlive a header that is whole again.
 */
const DAMAGE_CODES = new Set(['SQLITE_CORRUPT']);
/** A file found damaged is checked again this soon at most (a repaired file is up again without waiting out the interval). */
const RECHECK_DAMAGED_S = 60;

interface Verdict {
  /** dev:ino of the file the check read: a replaced file is checked anew. */
  fileKey: string;
  problem: string | undefined;
}

/**
 * `PRAGMA quick_check` of each SQLite file every `intervalSeconds`, one file at a
 * time, each in a child process (killed past `timeoutMs` or at close), so damage
 * in pages no probe reads is found without blocking the event loop or a probe.
 * Checks are asked for by probes (`problem`), and only once `start()` was called:
 * a one-shot CLI command never starts one.
 */
export class SqliteIntegrityChecks {
  private readonly verdicts = new Map<string, Verdict>();
  /** Epoch ms when each file's latest check started (or was queued). */
  private readonly lastStart = new Map<string, { at: number; fileKey: string }>();
  private readonly queue: Array<{ file: string; fileKey: string }> = [];
  private running: ChildProcess | undefined;
  private started = false;
  private closed = false;

  constructor(
    private readonly intervalSeconds: number,
    private readonly log: Logger,
    private readonly timeoutMs = Math.max(60_000, intervalSeconds * 1000),
  ) {}

  start(): void {
    this.started = this.intervalSeconds > 0;
  }

  /** What the latest check of `file` (as `fileKey`) found wrong, if anything; queues a check when one is due. */
  problem(file: string, fileKey: string): string | undefined {
    if (this.started && !this.closed && this.due(file, fileKey)) {
      this.lastStart.set(file, { at: Date.now(), fileKey });
      this.queue.push({ file, fileKey });
      this.next();
    }
    return this.latest(file, fileKey);
  }

  /** What the latest check of `file` (as `fileKey`) found wrong, without asking for a check. */
  latest(file: string, fileKey: string): string | undefined {
    const verdict = this.verdicts.get(file);
    return verdict && verdict.fileKey === fileKey ? verdict.problem : undefined;
  }

  /** A check is running or queued. */
  busy(): boolean {
    return this.running !== undefined || this.queue.length > 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    this.running?.kill('SIGKILL');
  }

  private due(file: string, fileKey: string): boolean {
    const last = this.lastStart.get(file);
    if (!last || last.fileKey !== fileKey) return true;
    const damaged = this.verdicts.get(file)?.problem !== undefined;
    const interval = damaged ? Math.min(this.intervalSeconds, RECHECK_DAMAGED_S) : this.intervalSeconds;
    return Date.now() - last.at >= interval * 1000;
  }

  private next(): void {
    if (this.running || this.closed) return;
    const job = this.queue.shift();
    if (!job) return;
    const started = performance.now();
    this.running = execFile(
      process.execPath,
      [CHECK_SCRIPT, job.file],
      { timeout: this.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, env: process.env },
      (error, stdout) => {
        this.running = undefined;
        this.settle(job, error, stdout, (performance.now() - started) / 1000);
        this.next();
      },
    );
  }

  private settle(job: { file: string; fileKey: string }, error: Error | null, stdout: string, seconds: number): void {
    if (this.closed) return;
    let reply: IntegrityReply;
    try {
      if (error) throw error;
      reply = JSON.parse(stdout) as IntegrityReply;
    } catch (failure) {
      // Killed at the timeout, or no answer: no verdict on the file; tried again next interval.
      this.log.warn({ file: job.file, err: failure }, `disaster-recovery integrity: quick_check of ${job.file} gave no answer after ${seconds.toFixed(1)} s`);
      return;
    }
    let problem: string | undefined;
    if (!reply.ok && 'problems' in reply) problem = `quick_check of ${job.file} failed: ${oneLine(reply.problems)}`;
    else if (!reply.ok && DAMAGE_CODES.has(reply.code ?? '')) problem = `quick_check of ${job.file} failed: ${reply.error}`;
    else if (!reply.ok) this.log.warn({ file: job.file }, `disaster-recovery integrity: quick_check of ${job.file} could not run: ${reply.error}`);
    const before = this.verdicts.get(job.file);
    if (problem && before?.problem === undefined) this.log.error({ file: job.file, seconds }, `disaster-recovery integrity: ${problem}`);
    if (!problem && before?.problem !== undefined) this.log.warn({ file: job.file }, `disaster-recovery integrity: quick_check of ${job.file} passes again`);
    this.log.debug({ file: job.file, seconds, ok: reply.ok }, `disaster-recovery integrity: quick_check of ${job.file} took ${seconds.toFixed(2)} s`);
    if (reply.ok || problem) this.verdicts.set(job.file, { fileKey: job.fileKey, problem });
  }
}

/** quick_check's rows as one line (they hold newlines and a "*** in database main ***" banner): reasons go into log lines and history. */
function oneLine(problems: string[]): string {
  return problems
    .flatMap((p) => p.split('\n'))
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^\*\*\* in database \S+ \*\*\*$/.test(l))
    .join('; ');
}
