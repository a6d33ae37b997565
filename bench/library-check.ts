/**
 * The cost of the library's per-commit check (is the session's database still
 * the primary of its epoch?), before and after writers followed the watch:
 *
 * - before: a read of the state store per check (`service.refreshState()`, as
 *   withSession did: 2 per SQLite session, 3 per PostgreSQL session);
 * - after: the watched state (`ConfirmedState.current()`): a memory read for
 *   etcd, a poll of PRAGMA data_version for the SQLite store (it keeps the
 *   re-read under the write lock, local and cheap); SQLite databases under an
 *   etcd store still read per commit (`fresh()`), since their fence (the write
 *   lock) ends with the switch's record.
 *
 * SQLite store in a temp folder; etcd: a real 3-member cluster on loopback.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../src/log.js';
import { primaryOf } from '../src/failover/primary.js';
import { DisasterRecoveryService } from '../src/service.js';
import { ConfirmedState } from '../src/state/confirmed-state.js';
import type { ClusterState } from '../src/state/store.js';
import { startEtcdCluster } from '../test/support/etcd.js';
import { writeFailoverConfig } from '../test/support/failover.js';
import { seedImages } from '../test/support/sqlite-cluster.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';

/** µs per check the watched state must stay under (a memory read, or a local poll). */
const AFTER_TARGET_US = 20;

/** Mean µs per call of `check` over `n` calls (after a warm-up of n / 10). */
async function perCall(n: number, check: () => unknown): Promise<number> {
  for (let i = 0; i < n / 10; i++) await check();
  const started = performance.now();
  for (let i = 0; i < n; i++) await check();
  return ((performance.now() - started) * 1000) / n;
}

async function measure(report: Report, label: string, service: DisasterRecoveryService, ttlMs: number, readCalls: number): Promise<void> {
  const config = service.config;
  const view = new ConfirmedState(service.store, { ttlMs, where: label, ttlSource: 'bench' });
  try {
    await view.ready();
    const name = primaryOf(view.current(), config);
    const { epoch } = view.current();
    const holds = (s: ClusterState) => s.epoch === epoch && primaryOf(s, config) === name;
    const before = await perCall(readCalls, async () => holds(await service.refreshState()));
    const after = await perCall(100_000, () => holds(view.current()));
    report.info(`${label}: before, a store read per check`, before, 'µs', 1);
    report.check(`${label}: after, the watched state per check`, after, 'µs', '<', AFTER_TARGET_US, 2);
    report.info(`${label}: speed-up (before / after)`, before / after, 'x', 0);
  } finally {
    view.stop();
  }
}

function configIn(dir: string, state?: string) {
  for (const name of ['a', 'b']) seedImages(path.join(dir, `${name}.db`), 1);
  return writeFailoverConfig({
    dir,
    databases: [
      { name: 'a', type: 'primary', priority: 0, url: `sqlite:///${path.join(dir, 'a.db')}` },
      { name: 'b', type: 'secondary', priority: 1, url: `sqlite:///${path.join(dir, 'b.db')}` },
    ],
    ...(state ? { state } : {}),
  }).config;
}

export const libraryCheckSection: Section = {
  title: 'library per-commit check',
  budgetMs: 90_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const sqliteDir = path.join(ctx.tmp, 'library-check-sqlite');
    const sqlite = await DisasterRecoveryService.open(configIn(sqliteDir), silentLogger());
    try {
      await measure(report, 'SQLite store', sqlite, 10_000, 20_000);
    } finally {
      await sqlite.stop();
    }

    const etcd = await startEtcdCluster({ members: 3 });
    ctx.cleanup.add('etcd cluster of the library check', () => etcd.destroy());
    const ttl = 10;
    const etcdDir = path.join(ctx.tmp, 'library-check-etcd');
    const state = `{ backend: etcd, etcd: { endpoints: [${etcd.endpoints.join(', ')}], prefix: "/bench-library/", ttl: ${ttl} } }`;
    const onEtcd = await DisasterRecoveryService.open(configIn(etcdDir, state), silentLogger());
    try {
      await measure(report, 'etcd store (3 members)', onEtcd, ttl * 1000, 1_000);
    } finally {
      await onEtcd.stop();
      await etcd.destroy();
    }
    report.note('library per-commit check: a PostgreSQL session checked 3 times (session start, before BEGIN, before COMMIT), a SQLite one twice; SQLite databases under an etcd store keep one read per commit (their fence, the write lock, ends with the record of a switch).');
  },
};
