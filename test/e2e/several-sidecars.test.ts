/**
 * Several sidecars, one leader, on a real etcd cluster (issue 12, "Done when"):
 * three `start-monitoring` processes sharing a 3-member etcd cluster, a
 * PostgreSQL primary with a synchronous standby (standby1) and a potential one
 * (standby2), and an application writing numbered rows through `withSession`.
 * Interval 1 s x threshold 3, leader lease TTL 3 s.
 *
 * Beyond the six scenarios of the issue: status and the gauges name the leader,
 * and a leader killed in the middle of a failover (held in its pre_promote hook)
 * leaves it to the next leader, never half done.
 *
 * Each test has its own databases, sidecars and etcd prefix; the etcd cluster is
 * shared, except by the test that kills its members. Where a test shows that
 * something does NOT happen (no failover, no second promotion), it watches for a
 * bounded window long enough for it to have happened (a detection plus a lease).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import type { ClusterStatus } from '../../src/status.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { inRecovery, missingIds } from '../support/failover.js';
import { startSidecarCluster, type PrimaryAnswer, type SidecarCluster, type SidecarProcess } from '../support/sidecars.js';
import { sample } from '../support/sqlite-cluster.js';

const TTL = 3;
const INTERVAL = 1;
const THRESHOLD = 3;
/** Long enough for a detection and a lease to run out: what did not happen by then is not going to. */
const WINDOW_MS = (THRESHOLD * INTERVAL + TTL + 2) * 1000;
/** Generous deadlines for what must happen (a loaded 2-core machine). */
const LEADER_MS = TTL * 1000 + 20_000;
const FAILOVER_MS = 45_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const successes = (history: FailoverRecordJson[]) => history.filter((r) => r.result === 'success');
const show = (history: FailoverRecordJson[]) =>
  history.map((r) => `#${r.id} ${r.trigger} ${r.from} -> ${r.to}: ${r.result}${r.error ? ` (${r.error})` : ''}`).join('\n') || '(empty history)';
const showPrimaries = (answers: PrimaryAnswer[]) => answers.map((a) => `${a.sidecar}: ${a.status} ${a.body}`).join('\n');

/** Which of the databases are out of recovery (accepting writes as a primary), among those still running. */
async function promoted(c: SidecarCluster): Promise<string[]> {
  const out: string[] = [];
  for (const name of ['primary', 'standby1', 'standby2']) {
    const server = c.server(name);
    if (server.isRunning() && !(await inRecovery(server))) out.push(name);
  }
  return out;
}

/** Polls during `ms`: every check must pass every time (what must not change, does not). */
async function holdsFor(ms: number, what: string, check: () => Promise<string | undefined>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const wrong = await check();
    if (wrong !== undefined) assert.fail(`${what}: ${wrong}`);
    await sleep(250);
  }
}

const everyPrimaryIs = (c: SidecarCluster, status: number, name?: string) => async (): Promise<string | undefined> => {
  const answers = await c.primaries();
  return answers.every((a) => a.status === status && (name === undefined || a.name === name)) ? undefined : showPrimaries(answers);
};

describe('several sidecars, one leader, on etcd', { timeout: 600_000 }, () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await startEtcdCluster({ members: 3 });
  });
  after(async () => {
    await etcd?.destroy();
  });

  const cluster = (t: { after(fn: () => Promise<void>): void }, opts: { proxied?: boolean; ownEtcd?: boolean } = {}) =>
    startSidecarCluster(t, { ttl: TTL, interval: INTERVAL, threshold: THRESHOLD, proxied: opts.proxied, ...(opts.ownEtcd ? {} : { etcd }) });

  test(
    'status (a follower\'s /api/status, the CLI) and the gauges name the leader, the lease and the three members',
    { timeout: 150_000 },
    async (t) => {
      const c = await cluster(t);
      const leader = await c.leader(LEADER_MS);
      await c.waitPrimaries(200, 'primary', 20_000);
      const follower = c.sidecars.find((s) => s !== leader)!;
      // The CLI runs with the follower's config, as an operator on its host would: its member name is the follower's.
      const clusterOf = async (text: Promise<string>) => (JSON.parse(await text) as { cluster: ClusterStatus }).cluster;
      const deadline = Date.now() + 20_000;
      for (;;) {
        const seen = [await clusterOf(follower.api('GET', '/api/status').then((r) => r.body)), await clusterOf(c.cli(['status', '--json'], follower).then((r) => r.stdout))];
        const gauges = await Promise.all(
          c.sidecars.map(async (s) => {
            const m = (await s.metrics()) ?? '';
            return [sample(m, 'dr_sidecar_is_leader'), sample(m, 'dr_sidecar_members')];
          }),
        );
        const ok =
          seen.every((s) => s.leader === leader.name && s.lease !== null && s.members.map((m) => m.name).sort().join() === 'a,b,c') &&
          gauges.every(([isLeader, members], i) => isLeader === (c.sidecars[i] === leader ? 1 : 0) && members === 3);
        if (ok) break;
        if (Date.now() > deadline) {
          const each = await Promise.all(c.sidecars.map(async (s) => `${s.name} sees ${(await clusterOf(s.api('GET', '/api/status').then((r) => r.body))).members.map((m) => `${m.name}@${m.last_heartbeat}`).join(', ')}`));
          assert.fail(
            `status does not show leader ${leader.name}, its lease and members a, b, c (dr_sidecar_is_leader, dr_sidecar_members: ${JSON.stringify(gauges)}; ${each.join('; ')}):\n` +
              JSON.stringify(seen.map((x) => ({ ...x, members: x.members.map((m) => m.name) }))),
          );
        }
        await sleep(200);
      }
    },
  );

  test('kill -9 of the primary postmaster: exactly one failover, every /primary agrees, no acknowledged row lost', { timeout: 150_000 }, async (t) => {
    const c = await cluster(t);
    await c.leader(LEADER_MS);
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(50, 30_000, 'primary');

    await c.server('primary').kill9();
    const record = await c.waitHistory('a successful automatic failover', FAILOVER_MS, (r) => r.trigger === 'auto' && r.result === 'success');
    assert.equal(record.to, 'standby1', 'the synchronous standby (priority 1) is the new primary');
    await c.waitPrimaries(200, 'standby1', 20_000);
    await writer.waitForAcks(50, 30_000, 'standby1');
    await writer.stop();

    assert.deepEqual(await missingIds(c.server('standby1'), writer.ids()), [], 'every acknowledged row is on the new primary');
    assert.deepEqual(await promoted(c), ['standby1'], 'one promotion: standby2 is still a standby');
    const history = await c.history();
    assert.equal(successes(history).length, 1, `exactly one failover:\n${show(history)}`);
    assert.deepEqual(history.filter((r) => r.result === 'failed'), [], `no failed attempt:\n${show(history)}`);
    t.diagnostic(`rows acknowledged: ${writer.acks.length}, longest gap ${writer.longestGap().ms} ms`);
  });

  test('kill -9 of the leader sidecar, then of the primary: a new leader within the TTL, then the failover', { timeout: 150_000 }, async (t) => {
    const c = await cluster(t);
    const old = await c.leader(LEADER_MS);
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(50, 30_000, 'primary');

    const leaderKilledAt = Date.now();
    await old.kill9();
    await c.server('primary').kill9();
    const primaryKilledAt = Date.now();
    const next = await c.leader(LEADER_MS, old);
    const newLeaderMs = Date.now() - leaderKilledAt;
    assert.notEqual(next.name, old.name);

    const record = await c.waitHistory('a successful automatic failover', FAILOVER_MS, (r) => r.trigger === 'auto' && r.result === 'success');
    await writer.waitForAcks(1, 30_000, record.to!);
    const firstOnNew = writer.on(record.to!).find((a) => a.epoch === record.epoch) ?? writer.on(record.to!)[0]!;
    await c.waitPrimaries(200, record.to!, 20_000);
    await writer.waitForAcks(30, 30_000, record.to!);
    await writer.stop();

    assert.equal(record.to, 'standby1');
    assert.deepEqual(await missingIds(c.server('standby1'), writer.ids()), [], 'every acknowledged row is on the new primary');
    assert.deepEqual(await promoted(c), ['standby1']);
    const history = await c.history();
    assert.equal(successes(history).length, 1, `exactly one failover:\n${show(history)}`);
    t.diagnostic(`new leader ${next.name} ${newLeaderMs} ms after the leader's death (ttl ${TTL} s)`);
    t.diagnostic(`RTO (kill -9 of the primary -> first write acknowledged on ${record.to}): ${firstOnNew.at - primaryKilledAt} ms`);
  });

  test('the leader frozen longer than the TTL while the primary dies, then continued: it does not act on its old leadership', { timeout: 150_000 }, async (t) => {
    const c = await cluster(t);
    const old = await c.leader(LEADER_MS);
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(30, 30_000, 'primary');

    old.freeze();
    await c.server('primary').kill9();
    const next = await c.leader(LEADER_MS, old);
    const record = await c.waitHistory('a successful automatic failover', FAILOVER_MS, (r) => r.trigger === 'auto' && r.result === 'success');
    await c.waitPrimaries(200, record.to!, 20_000);
    await writer.waitForAcks(30, 30_000, record.to!);

    old.thaw();
    // Whatever it would do on its old leadership, it does in the ticks right after it wakes up.
    const deadline = Date.now() + 20_000;
    while ((await old.isLeader()) !== false) {
      if (Date.now() > deadline) assert.fail(`the continued sidecar ${old.name} does not say it is a follower (dr_sidecar_is_leader 0)\n${await c.describe()}`);
      await sleep(100);
    }
    await holdsFor(WINDOW_MS, 'after the continued sidecar woke up, /primary of every sidecar names the new primary', everyPrimaryIs(c, 200, record.to!));
    await writer.stop();

    const history = await c.history();
    assert.equal(successes(history).length, 1, `one promotion in the history:\n${show(history)}`);
    assert.deepEqual(await promoted(c), [record.to], 'one promotion in the databases');
    assert.deepEqual(await missingIds(c.server(record.to!), writer.ids()), []);
    assert.equal((await c.leaders()).map((s) => s.name).join(), next.name, 'the new leader still leads');
    const backups = path.join(c.dir, `backups-${old.name}`);
    const files = existsSync(backups) ? readdirSync(backups, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : [];
    assert.deepEqual(files, [], 'no backup taken by the continued sidecar');
  });

  test('kill -9 of the leader in the middle of a failover (in its pre_promote hook): finished by the next leader, never half', { timeout: 150_000 }, async (t) => {
    // The hook marks (in the sidecars' working folder) that a failover is under way, then holds it there a while.
    const c = await startSidecarCluster(t, { etcd, ttl: TTL, interval: INTERVAL, threshold: THRESHOLD, prePromote: 'date +%s >> pre-promote.log && sleep 5' });
    const leader = await c.leader(LEADER_MS);
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(30, 30_000, 'primary');

    await c.server('primary').kill9();
    const marker = path.join(c.dir, 'pre-promote.log');
    const deadline = Date.now() + FAILOVER_MS;
    while (!existsSync(marker)) {
      if (Date.now() > deadline) assert.fail(`the leader never started a failover (no pre_promote hook ran)\n${await c.describe()}`);
      await sleep(50);
    }
    assert.deepEqual(await promoted(c), [], 'nothing promoted yet: the hook holds the failover before the promotion');
    await leader.kill9();

    const next = await c.leader(LEADER_MS, leader);
    const record = await c.waitHistory('a successful automatic failover by the next leader', FAILOVER_MS, (r) => r.trigger === 'auto' && r.result === 'success');
    await c.waitPrimaries(200, record.to!, 20_000);
    await writer.waitForAcks(30, 30_000, record.to!);
    await writer.stop();

    const history = await c.history();
    t.diagnostic(`next leader ${next.name}; history: ${show(history).replace(/\n/g, '; ')}`);
    assert.equal(successes(history).length, 1, `one failover finished:\n${show(history)}`);
    assert.deepEqual(await promoted(c), [record.to], 'one promotion in the databases: what the history says');
    assert.deepEqual(await missingIds(c.server(record.to!), writer.ids()), []);
  });

  test('the leader cut off from the primary only (the others reach it): no failover', { timeout: 150_000 }, async (t) => {
    const c = await cluster(t, { proxied: true });
    const leader = await c.leader(LEADER_MS);
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(20, 30_000, 'primary');

    c.proxy(leader, 'primary').cut();
    // The leader sees the primary dead by its own probes...
    const deadline = Date.now() + 20_000;
    for (;;) {
      const m = await leader.metrics();
      if (m !== undefined && (sample(m, 'dr_database_consecutive_failures{database="primary"}') ?? 0) >= THRESHOLD) break;
      if (Date.now() > deadline) assert.fail(`the leader ${leader.name} never saw the primary fail ${THRESHOLD} times through its cut proxy\n${await c.describe()}`);
      await sleep(100);
    }
    // ...and yet, since the others see it alive, nothing is switched.
    const others = c.sidecars.filter((s) => s !== leader);
    await holdsFor(WINDOW_MS, 'the sidecars that reach the primary keep routing to it', async () => {
      const answers = await Promise.all(others.map((s) => s.primary()));
      return answers.every((a) => a.status === 200 && a.name === 'primary') ? undefined : showPrimaries(answers);
    });
    await writer.waitForAcks(20, 30_000, 'primary');
    const history = await c.history();
    assert.deepEqual(successes(history), [], `no failover:\n${show(history)}`);
    assert.deepEqual(await promoted(c), ['primary'], 'nothing promoted');

    c.proxy(leader, 'primary').mend();
    await c.waitPrimaries(200, 'primary', 20_000);
    await writer.stop();
    assert.deepEqual(await missingIds(c.server('primary'), writer.ids()), []);
  });

  test('one etcd member killed: nothing changes; two killed: no promotion, /primary 503 everywhere; quorum back: the cluster carries on', { timeout: 200_000 }, async (t) => {
    const c = await cluster(t, { ownEtcd: true });
    const members = c.etcd!.members;
    const leader = await c.leader(LEADER_MS);
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(20, 30_000, 'primary');

    // One member of three: a quorum is left, nothing changes.
    await c.etcd!.kill(members[0]!);
    await holdsFor(WINDOW_MS, 'with one etcd member dead, /primary of every sidecar names the primary', everyPrimaryIs(c, 200, 'primary'));
    await writer.waitForAcks(20, 30_000, 'primary');
    assert.deepEqual((await c.leaders()).map((s) => s.name), [leader.name], 'the same leader');
    assert.deepEqual(successes(await c.history()), []);

    // Two of three: no quorum. Every sidecar fails safe, and a dead primary is not replaced.
    await c.etcd!.kill(members[1]!);
    const quorumLostAt = Date.now();
    await c.waitPrimaries(503, undefined, TTL * 1000 + 20_000);
    // The primary still runs, but a writer that cannot confirm the cluster state for longer than the lease stops committing.
    await holdsFor(TTL * 1000 + 2_000, 'without quorum, /primary answers 503 on every sidecar', everyPrimaryIs(c, 503));
    const committedBlind = writer.acks.filter((a) => a.at > quorumLostAt + TTL * 1000);
    assert.deepEqual(committedBlind.map((a) => a.id), [], `rows acknowledged more than the lease (${TTL} s) after quorum was lost`);
    await c.server('primary').kill9();
    await holdsFor(WINDOW_MS, 'without quorum, /primary answers 503 on every sidecar', everyPrimaryIs(c, 503));
    assert.deepEqual(await promoted(c), [], 'nothing promoted without quorum');

    // Quorum back: the cluster carries on (here: the dead primary is replaced) without an operator.
    await c.etcd!.start(members[0]!);
    await c.etcd!.start(members[1]!);
    const record = await c.waitHistory('a successful automatic failover once quorum is back', FAILOVER_MS, (r) => r.trigger === 'auto' && r.result === 'success');
    await c.waitPrimaries(200, record.to!, 30_000);
    await writer.waitForAcks(20, 30_000, record.to!);
    await writer.stop();
    assert.equal(record.to, 'standby1');
    assert.deepEqual(await missingIds(c.server('standby1'), writer.ids()), [], 'every acknowledged row is on the new primary');
    assert.deepEqual(await promoted(c), ['standby1']);
    const history = await c.history();
    assert.equal(successes(history).length, 1, `exactly one failover:\n${show(history)}`);
  });

  test('manual failovers submitted on a follower and on the leader at the same moment: one runs, the other is refused with the reason', { timeout: 150_000 }, async (t) => {
    const c = await cluster(t);
    const leader = await c.leader(LEADER_MS);
    const follower: SidecarProcess = c.sidecars.find((s) => s !== leader)!;
    await c.waitPrimaries(200, 'primary', 20_000);
    const writer = await c.startWriter();
    await writer.waitForAcks(20, 30_000, 'primary');

    const asks = [
      { on: follower, target: 'standby1' },
      { on: leader, target: 'standby2' },
    ];
    const answers = await Promise.all(asks.map((a) => a.on.api('POST', '/api/failover', { target: a.target, reason: `asked on sidecar ${a.on.name}` })));
    const outcome = answers.map((a, i) => {
      let body: { result?: string; error?: string | null; message?: string } = {};
      try {
        body = JSON.parse(a.body) as typeof body;
      } catch { /* not JSON */ }
      return { ...asks[i]!, status: a.status, ran: a.status === 200 && body.result === 'success', reason: body.error ?? body.message ?? a.body };
    });
    const described = outcome.map((o) => `on ${o.on.name} to ${o.target}: HTTP ${o.status}, ${o.ran ? 'ran' : `refused: ${o.reason}`}`).join('; ');
    const ran = outcome.filter((o) => o.ran);
    const refused = outcome.filter((o) => !o.ran);
    assert.equal(ran.length, 1, `exactly one ran:\n${described}\n${await c.describe()}`);
    assert.equal(refused.length, 1);
    assert.ok(refused[0]!.status !== 200 || refused[0]!.reason, `the other is refused with a reason:\n${described}`);
    assert.match(String(refused[0]!.reason), /\w{3,}/, `the refusal says why:\n${described}`);
    t.diagnostic(described);

    const winner = ran[0]!.target;
    await c.waitPrimaries(200, winner, 20_000);
    await writer.waitForAcks(20, 30_000, winner);
    await writer.stop();
    const history = await c.history();
    assert.equal(successes(history).length, 1, `one switch in the history:\n${show(history)}`);
    assert.deepEqual((await promoted(c)).filter((n) => n !== 'primary'), [winner], 'one standby promoted');
    assert.deepEqual(await missingIds(c.server(winner), writer.ids()), []);
  });
});
