/**
 * Writers follow the cluster state in etcd (issue 12, "Writers follow"): a real
 * 3-member etcd cluster, one real PostgreSQL server with two databases of the
 * application (`app` the primary, `app2` the secondary; a switch fences the
 * old one and copies it into the new one with pg_dump | pg_restore), the
 * switches made by the real CLI in another process, and an application
 * writing through withSession in this one.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { ClusterStateUnconfirmed } from '../../src/index.js';
import { silentLogger } from '../../src/log.js';
import { DisasterRecoveryManager } from '../../src/manager.js';
import type { EtcdStateStore } from '../../src/state/etcd-store.js';
import { runCli, type CliResult } from '../support/cli.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { APP_DB, NumberedWriter, report, tempFolder, waitFor, writeFailoverConfig } from '../support/failover.js';
import { startPostgres, type PgServer } from '../support/postgres.js';

const SECOND_DB = 'app2';
/** state.etcd.ttl of these tests: short, so a cut-off writer stops soon; 3 s leaves a loaded machine room for the checks every second. */
const TTL_S = 3;
const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

async function ids(server: PgServer, database: string): Promise<Set<number>> {
  const rows = await server.query<{ id: number }>('SELECT id FROM items', [], database);
  return new Set(rows.map((r) => r.id));
}

const missing = (wanted: Iterable<number>, present: Set<number>) => [...wanted].filter((id) => !present.has(id));

/** Counts the etcd requests (calls and watch streams) the manager's store makes from now on. */
function countRequests(manager: DisasterRecoveryManager): { count(): number } {
  const client = (manager.service.store as EtcdStateStore).client;
  let n = 0;
  const call = client.call.bind(client);
  client.call = ((method: string, body: object) => {
    n++;
    return call(method, body);
  }) as typeof client.call;
  return { count: () => n };
}

describe('writers follow the cluster state in etcd', { timeout: 240_000 }, () => {
  const tmp = tempFolder('dr-follow-etcd-');
  let etcd: EtcdCluster;
  let pg: PgServer;
  let configFile: string;
  let prefix: string;

  before(async () => {
    [etcd, pg] = await Promise.all([startEtcdCluster({ members: 3 }), startPostgres()]);
    for (const db of [APP_DB, SECOND_DB]) {
      await pg.createDatabase(db);
      await pg.query('CREATE TABLE items (id integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())', [], db);
    }
  });

  after(async () => {
    await pg?.destroy();
    await etcd?.destroy();
    tmp.cleanup();
  });

  /** A config on a prefix of its own (a fresh cluster state), the first database the primary, both writable and empty. */
  async function configure(): Promise<ReturnType<typeof writeFailoverConfig>> {
    for (const db of [APP_DB, SECOND_DB]) {
      await pg.query(`ALTER DATABASE ${db} RESET default_transaction_read_only`);
      await pg.query('TRUNCATE items', [], db);
    }
    prefix = `/dr-follow/${randomUUID()}/`;
    const written = writeFailoverConfig({
      dir: tmp.dir,
      databases: [
        { name: 'first', type: 'primary', priority: 0, url: pg.url({ database: APP_DB }) },
        { name: 'second', type: 'secondary', priority: 1, url: pg.url({ database: SECOND_DB }) },
      ],
      probeTimeout: 5,
      state: `{ backend: etcd, etcd: { endpoints: [${etcd.endpoints.join(', ')}], prefix: "${prefix}", ttl: ${TTL_S} } }`,
    });
    configFile = written.file;
    return written;
  }

  const cli = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: tmp.dir, timeoutMs: 60_000 });

  test('a writer follows switches recorded by another process; no acknowledged row lands on a demoted primary; no etcd request per commit', async (t) => {
    const { config } = await configure();
    const manager = await DisasterRecoveryManager.open({ config, logger: silentLogger(), failoverWaitMs: 30_000 });
    t.after(() => manager.stop());
    const requests = countRequests(manager);
    const writer = new NumberedWriter(manager, { paceMs: 2, attempts: 5 }).start();
    t.after(() => writer.stop().catch(() => undefined));
    await writer.waitForAcks(50, 30_000, 'first');

    const databaseOf: Record<string, string> = { first: APP_DB, second: SECOND_DB };
    const path = [
      ['first', 'second'],
      ['second', 'first'],
      ['first', 'second'],
      ['second', 'first'],
    ] as const;
    for (const [i, [from, to]] of path.entries()) {
      await writer.waitForAcks(20, 30_000, from);
      const run = await cli('failover', to, '--reason', `switch ${i + 1}`, '--json');
      assert.equal(run.code, 0, show(run));
      const record = JSON.parse(run.stdout) as { epoch: number; result: string; from: string; to: string };
      assert.deepEqual([record.result, record.from, record.to, record.epoch], ['success', from, to, i + 1]);
      // The watch delivers the switch: the next sessions go to the new primary, with its epoch.
      await writer.waitForAcks(30, 30_000, to);
      // Taken before the databases are read: rows acknowledged afterwards may not be in what was read.
      const acked = writer.ids();
      const onNew = await ids(pg, databaseOf[to]!);
      const onOld = await ids(pg, databaseOf[from]!);
      // What reached the old primary reached the new one (it was copied under the fence): nothing landed there after the switch was recorded.
      assert.deepEqual(missing(onOld, onNew), [], `rows on the demoted ${from} that ${to} lacks after switch ${i + 1}`);
      const lost = missing(acked, onNew);
      assert.deepEqual(lost, [], `acknowledged rows missing on ${to} after switch ${i + 1}`);
      // first is the primary of the even epochs, second of the odd ones: no commit on a database of another epoch.
      const misplaced = writer.acks.filter((a) => a.database !== (a.epoch % 2 === 0 ? 'first' : 'second'));
      assert.deepEqual(misplaced, [], 'acknowledged on a database that was not the primary of its epoch');
      for (const a of writer.on(to).slice(-30)) assert.equal(a.epoch, i + 1, `row ${a.id} on ${to}`);
    }
    await writer.stop();
    const sessions = writer.acks.length + writer.failures.length;
    const made = requests.count();
    report('writers follow etcd', { acknowledged: writer.acks.length, failed_sessions: writer.failures.length, etcd_requests: made });
    // Two store reads per session before: now a watch's checks (3 per TTL) and a read per change.
    assert.ok(made * 10 < sessions, `${made} etcd requests for ${sessions} sessions: the per-commit check must not ask etcd`);
  });

  test('one etcd member killed changes nothing; a writer cut off from etcd (2 of 3 members killed, then all frozen) stops committing with ClusterStateUnconfirmed, and resumes with quorum', async (t) => {
    const { config } = await configure();
    const manager = await DisasterRecoveryManager.open({ config, logger: silentLogger(), failoverWaitMs: 10_000 });
    t.after(() => manager.stop());
    t.after(async () => {
      for (const m of etcd.members) {
        if (m.paused) etcd.resume(m);
        if (m.pid === undefined) await etcd.start(m);
      }
    });
    let next = 1_000_000;
    const insert = () =>
      manager.withSession(async (session) => {
        if (session.engine !== 'postgresql') throw new Error('PostgreSQL expected');
        const id = next++;
        await session.client.query('INSERT INTO items (id) VALUES ($1)', [id]);
        return id;
      });
    const typed = (error: unknown) => error instanceof ClusterStateUnconfirmed;

    /** Waits until a session is refused with the typed error; returns how long after `since` that was. */
    async function refusedWithin(since: number, what: string): Promise<number> {
      const error = await waitFor(`a session refused (${what})`, TTL_S * 1000 + 15_000, async () => {
        try {
          await insert();
          return false;
        } catch (e) {
          if (!typed(e)) throw e;
          return e as ClusterStateUnconfirmed;
        }
      }, 100);
      assert.match(error.message, /cannot confirm the cluster state: the state store etcd \(http:\/\/127\.0\.0\.1:\d+/);
      assert.match(error.message, /state\.etcd\.ttl/);
      assert.match(error.message, /resume by themselves/);
      const ms = performance.now() - since;
      // Refused from then on, nothing committed: a few sessions in a row, and the row count stays.
      const count = (await ids(pg, APP_DB)).size;
      for (let i = 0; i < 5; i++) await assert.rejects(insert(), typed);
      assert.equal((await ids(pg, APP_DB)).size, count, 'no commit while cut off');
      return ms;
    }

    const resumes = (what: string) => waitFor(`sessions to commit again (${what})`, 60_000, () => insert().then(() => true), 100);

    await insert();
    const [a, b] = etcd.members as [EtcdCluster['members'][number], EtcdCluster['members'][number]];
    // One member of three killed (the first endpoint: the one the watch streams from): nothing changes,
    // every session commits through two TTLs, long enough for a refusal to show.
    await etcd.kill(a);
    const until = performance.now() + 2 * TTL_S * 1000;
    let commits = 0;
    while (performance.now() < until) {
      await insert();
      commits++;
    }
    assert.ok(commits > 0);
    await etcd.start(a);

    const killedAt = performance.now();
    await Promise.all([etcd.kill(a), etcd.kill(b)]);
    const noQuorumMs = await refusedWithin(killedAt, '2 of 3 members killed');
    await Promise.all([etcd.start(a), etcd.start(b)]);
    await resumes('quorum back');

    const frozenAt = performance.now();
    for (const m of etcd.members) etcd.pause(m);
    const frozenMs = await refusedWithin(frozenAt, 'every member frozen');
    for (const m of etcd.members) etcd.resume(m);
    await resumes('members continued');
    report('writer cut off from etcd', { ttl_s: TTL_S, refused_after_2_of_3_killed_ms: Math.round(noQuorumMs), refused_after_all_frozen_ms: Math.round(frozenMs) });
  });
});
