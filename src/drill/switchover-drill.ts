/**
 * The switchover drill: a lossless switchover to the best secondary under
 * whatever writes are happening, then back to the original primary, with the
 * drill's probe writer measuring the write outage each way. Both switches are
 * the failover procedure's own (trigger `drill`), so the drill proves exactly
 * what an operator's switchover would do. A switch back that fails leaves the
 * cluster on a primary that takes writes, never half-switched, and says so loudly.
 */
import type { TableCounts } from '../backup/engine-backup.js';
import type { FailoverRequest } from '../failover/procedure.js';
import type { Logger } from '../log.js';
import type { FailoverRecord } from '../state/store.js';
import { rowsShort, type SwitchoverFigures } from './drill-record.js';
import { switchOutage, WriteProbe, type SessionRunner } from './write-probe.js';

export interface SwitchoverDrillDeps {
  log: Logger;
  /** The recorded primary, read afresh from the cluster state. */
  currentPrimary(): Promise<string | undefined>;
  /** One run of the failover procedure under the drill's leadership; throws FailoverFailed with its record. */
  switchover(request: FailoverRequest): Promise<FailoverRecord>;
  /** Rows per table of a database as it is now. */
  countRows(database: string): Promise<TableCounts>;
  /** Whether a database answers and takes writes now. */
  writable(database: string): Promise<boolean>;
  /** A writer through the library (withSession), opened for the drill. */
  openWriter(): Promise<{ withSession: SessionRunner; close(): Promise<void> }>;
  /** How long the probe may take to commit on a new primary before the drill gives up on it. */
  resumeTimeoutMs: number;
}

export interface SwitchoverDrillOutcome {
  ok: boolean;
  detail: string;
  figures: SwitchoverFigures;
  /** The switch back failed: the cluster stays on another primary (loud: log, notification, metric). */
  strandedOn?: string | undefined;
}

/** Probe commits wanted on a primary before a switch is judged (the writer really writes there). */
const COMMITS_TO_SEE = 5;

export async function runSwitchoverDrill(deps: SwitchoverDrillDeps): Promise<SwitchoverDrillOutcome> {
  const original = await deps.currentPrimary();
  const figures: SwitchoverFigures = {
    original: original ?? '-',
    target: null,
    endedOn: original ?? null,
    outageThereSeconds: null,
    outageBackSeconds: null,
    probeCommits: 0,
    probeFailures: 0,
    rowsBefore: null,
    rowsAfter: null,
    rowsShort: {},
    switchIds: [],
  };
  const fail = (detail: string, extra: Partial<SwitchoverDrillOutcome> = {}): SwitchoverDrillOutcome => ({ ok: false, detail, figures, ...extra });
  if (!original) return fail('there is no current primary');
  try {
    figures.rowsBefore = await deps.countRows(original);
  } catch (error) {
    return fail(`the rows of ${original} could not be counted before the drill: ${(error as Error).message}`);
  }
  const writer = await deps.openWriter();
  const probe = new WriteProbe(writer.withSession).start();
  try {
    return await drill(deps, original, figures, probe, fail);
  } finally {
    await probe.stop();
    figures.probeCommits = probe.commits.length;
    figures.probeFailures = probe.failures;
    // A commit that hangs (a synchronous standby gone) must not hold the drill: the writer gets a bounded close.
    await within(writer.close(), 10_000).catch((error: Error) => deps.log.warn({ err: error }, `disaster-recovery drill: the probe writer did not close cleanly: ${error.message}`));
  }
}

async function drill(
  deps: SwitchoverDrillDeps,
  original: string,
  figures: SwitchoverFigures,
  probe: WriteProbe,
  fail: (detail: string, extra?: Partial<SwitchoverDrillOutcome>) => SwitchoverDrillOutcome,
): Promise<SwitchoverDrillOutcome> {
  if (!(await commitsSeen(probe, original, 0, deps.resumeTimeoutMs))) {
    return fail(`the probe writer could not commit on ${original} before the drill (${probe.failures} failed attempts); nothing was switched`);
  }
  const thereAt = performance.now();
  const there = await tryStep(deps, { trigger: 'drill', reason: 'drill: switchover to the best secondary', expectedFrom: original, ifPrimaryAnswers: 'switch over' });
  if (there.record?.id !== undefined) figures.switchIds.push(there.record.id);
  if (!there.ok) {
    figures.endedOn = (await deps.currentPrimary()) ?? null;
    return fail(`the switchover away from ${original} did not happen: ${there.why}`);
  }
  const target = there.record.to!;
  figures.target = target;
  figures.endedOn = target;
  if (!(await commitsSeen(probe, target, thereAt, deps.resumeTimeoutMs))) {
    // Writes do not resume on the new primary: better back on the original than on a primary nobody can write to.
    deps.log.error(`disaster-recovery drill: writes did not resume on ${target} within ${deps.resumeTimeoutMs / 1000} s after the switchover; switching back`);
  } else figures.outageThereSeconds = round(switchOutage(probe.commits, original, target, thereAt));

  const backAt = performance.now();
  const back = await tryStep(deps, { trigger: 'drill', reason: 'drill: switch back to the original primary', target: original, expectedFrom: target, ifPrimaryAnswers: 'switch over' });
  if (back.record?.id !== undefined) figures.switchIds.push(back.record.id);
  if (!back.ok) return strandedOutcome(deps, original, target, back.why, figures, fail);
  figures.endedOn = original;
  if (!(await commitsSeen(probe, original, backAt, deps.resumeTimeoutMs))) {
    return fail(`switched back to ${original}, but the probe writer could not commit there within ${deps.resumeTimeoutMs / 1000} s`);
  }
  figures.outageBackSeconds = round(switchOutage(probe.commits, target, original, backAt));
  if (figures.outageThereSeconds === null) return fail(`writes did not resume on ${target} after the switchover (the cluster is back on ${original})`);
  // What the switch back left of the target (a PostgreSQL standby is demoted: nothing re-attaches it yet).
  const left = back.record.formerPrimary?.demoted ? `; ${back.record.formerPrimary.note}` : '';
  return judgeRows(deps, original, figures, fail, left);
}

async function judgeRows(
  deps: SwitchoverDrillDeps,
  original: string,
  figures: SwitchoverFigures,
  fail: (detail: string) => SwitchoverDrillOutcome,
  left: string,
): Promise<SwitchoverDrillOutcome> {
  try {
    figures.rowsAfter = await deps.countRows(original);
  } catch (error) {
    return fail(`back on ${original}, but its rows could not be counted: ${(error as Error).message}`);
  }
  figures.rowsShort = rowsShort(figures.rowsBefore ?? {}, figures.rowsAfter);
  const short = Object.entries(figures.rowsShort);
  if (short.length > 0) {
    return fail(`rows missing after the drill (${short.map(([t, n]) => `${t}: ${n} fewer`).join('; ')}): data was lost, unless the application deleted rows meanwhile`);
  }
  return { ok: true, detail: `${original} -> ${figures.target} -> ${original}, both switches lossless, no table lost rows${left}`, figures };
}

/**
 * The switch back failed. The procedure changed nothing it could not undo (a
 * fence lifted, a stray promotion fenced again), so the recorded primary is
 * the drill's target: it must take writes; if it does not, the best candidate is made primary.
 */
async function strandedOutcome(
  deps: SwitchoverDrillDeps,
  original: string,
  target: string,
  why: string,
  figures: SwitchoverFigures,
  fail: (detail: string, extra?: Partial<SwitchoverDrillOutcome>) => SwitchoverDrillOutcome,
): Promise<SwitchoverDrillOutcome> {
  let on = (await deps.currentPrimary()) ?? target;
  let health = (await deps.writable(on).catch(() => false)) ? `${on} takes writes` : `${on} does NOT take writes`;
  if (!health.includes('NOT')) {
    figures.endedOn = on;
  } else {
    const rescue = await tryStep(deps, { trigger: 'drill', reason: `drill: the switch back to ${original} failed and ${on} does not take writes`, expectedFrom: on, ifPrimaryAnswers: 'switch over' });
    if (rescue.record?.id !== undefined) figures.switchIds.push(rescue.record.id);
    on = (await deps.currentPrimary()) ?? on;
    figures.endedOn = on;
    health = rescue.ok ? `${on} was made the primary and takes writes` : `and no other primary could be made (${rescue.why}): act now`;
  }
  return fail(`the switch back to ${original} failed (${why}); the cluster stays on ${on}: ${health}`, { strandedOn: on });
}

type Step = { ok: true; record: FailoverRecord; why?: undefined } | { ok: false; record: FailoverRecord | undefined; why: string };

async function tryStep(deps: SwitchoverDrillDeps, request: FailoverRequest): Promise<Step> {
  try {
    const record = await deps.switchover(request);
    if (record.result === 'success') return { ok: true, record };
    return { ok: false, record, why: `${record.result}: ${record.error ?? ''}` };
  } catch (error) {
    const record = (error as { record?: FailoverRecord }).record;
    return { ok: false, record, why: (error as Error).message };
  }
}

async function commitsSeen(probe: WriteProbe, database: string, since: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (probe.commitsOn(database, since) >= COMMITS_TO_SEE) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function within(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${ms / 1000} s`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const round = (seconds: number | undefined): number | null => (seconds === undefined ? null : Math.round(seconds * 1000) / 1000);
