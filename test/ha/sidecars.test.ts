/**
 * Several sidecars on one cluster state: a real 3-member etcd cluster and three
 * `start-monitoring` processes (the real CLI) beside one pair of SQLite files.
 * Exactly one leads; killing it (-9) hands the lead to another within the lease;
 * a failover asked on a follower is carried out once, by the leader; two asked
 * at once: one runs, the other is refused with the reason; etcd without quorum:
 * /primary answers 503 on every sidecar and nothing is switched.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSandbox, eventually, freePort, httpGet, sqliteConfig, type MonitorProcess, type Sandbox } from '../support/cli.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { report } from '../support/failover.js';
import { moveAway } from '../support/sqlite-cluster.js';

const TOKEN = 'several-sidecars-token-0123';
const TTL = 3;
const auth = { Authorization: `Bearer ${TOKEN}` };

interface StatusJson {
  primary: string | null;
  epoch: number;
  cluster: { member: string; is_leader: boolean; leader: string | null; members: Array<{ name: string }>; cut_off: string | null };
}

interface Sidecar {
  name: string;
  config: string;
  process: MonitorProcess;
}

async function statusOf(s: Sidecar): Promise<StatusJson> {
  const r = await httpGet(`${s.process.url}/api/status`, auth);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as StatusJson;
}

async function post(s: Sidecar, route: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${s.process.url}${route}`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('several sidecars, one leader, on a real etcd cluster', () => {
  let etcd: EtcdCluster;
  let sandbox: Sandbox;
  let sidecars: Sidecar[] = [];
  const prefix = `/dr-sidecars/${randomUUID()}/`;

  async function startSidecar(name: string): Promise<Sidecar> {
    const port = await freePort();
    const doc = sqliteConfig(port) as unknown as Record<string, unknown> & ReturnType<typeof sqliteConfig>;
    doc.server.auth_token = TOKEN;
    doc.disaster_recovery.failover.health_check_interval = 1;
    doc.disaster_recovery.failover.cooldown = 0;
    doc.disaster_recovery.failover.retry_delay = 1;
    (doc as Record<string, unknown>).state = { backend: 'etcd', etcd: { endpoints: etcd.endpoints, prefix, ttl: TTL, member: name } };
    const config = sandbox.writeConfig(doc, `${name}.yaml`);
    const process = await sandbox.startMonitoring({ port, args: ['--config', config] });
    return { name, config, process };
  }

  const output = () => sidecars.map((s) => `--- ${s.name} ---\n${s.process.output().stdout.split('\n').slice(-15).join('\n')}`).join('\n');

  async function leaders(among: Sidecar[]): Promise<string[]> {
    const all = await Promise.all(among.map((s) => statusOf(s).catch(() => undefined)));
    return all.filter((s) => s?.cluster.is_leader).map((s) => s!.cluster.member);
  }

  async function theLeader(among: Sidecar[], timeoutMs = 30_000): Promise<Sidecar> {
    let found: string[] = [];
    await eventually('exactly one leader', timeoutMs, async () => (found = await leaders(among)).length === 1, () => `leaders: ${found.join(', ')}\n${output()}`);
    return among.find((s) => s.name === found[0])!;
  }

  before(async () => {
    etcd = await startEtcdCluster({ members: 3 });
    sandbox = createSandbox();
    sandbox.writeSqlite('data/images_primary.db', 20);
    sandbox.writeSqlite('data/images_secondary1.db', 20);
    sidecars = [];
    for (const name of ['a', 'b', 'c']) sidecars.push(await startSidecar(name));
  });
  after(async () => {
    await Promise.all(sidecars.map((s) => s.process.stop('SIGKILL').catch(() => undefined)));
    await etcd?.destroy();
    sandbox?.remove();
  });

  test('exactly one leader; every sidecar sees the three members and agrees on the leader', async () => {
    const leader = await theLeader(sidecars);
    await eventually('every sidecar to list three members and the same leader', 20_000, async () => {
      const all = await Promise.all(sidecars.map(statusOf));
      return all.every((s) => s.cluster.members.length === 3 && s.cluster.leader === leader.name);
    }, output);
    const metrics = await Promise.all(sidecars.map(async (s) => (await httpGet(`${s.process.url}/metrics`)).body));
    const isLeader = metrics.map((m) => Number(/^dr_sidecar_is_leader (\d)/m.exec(m)?.[1]));
    assert.deepEqual(isLeader.slice().sort(), [0, 0, 1]);
    assert.ok(metrics.every((m) => /^dr_sidecar_members 3$/m.test(m)), 'dr_sidecar_members 3 on every sidecar');
    const text = await sandbox.run(['status', '--config', sidecars[0]!.config]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Leader: +${leader.name}\\b`));
    assert.match(text.stdout, /Members: +3/);
  });

  test('a failover asked on a follower (CLI and API) is carried out by the leader, once', async () => {
    const leader = await theLeader(sidecars);
    const follower = sidecars.find((s) => s !== leader)!;
    const before = await statusOf(leader);
    const r = await sandbox.run(['failover', 'secondary1', '--reason', 'asked on a follower', '--json', '--config', follower.config], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${r.stderr}\n${output()}`);
    const record = JSON.parse(r.stdout) as { result: string; epoch: number; to: string };
    assert.equal(record.result, 'success');
    assert.equal(record.epoch, before.epoch + 1);
    assert.match(leader.process.output().stdout, /carrying out failover asked by command@/);
    await eventually('every sidecar to route to secondary1', 20_000, async () => {
      const answers = await Promise.all(sidecars.map((s) => httpGet(`${s.process.url}/primary`)));
      return answers.every((a) => a.status === 200 && (JSON.parse(a.body) as { name: string }).name === 'secondary1');
    }, output);
    const history = await sandbox.run(['history', '--json', '--config', sidecars[2]!.config]);
    const entries = JSON.parse(history.stdout) as Array<{ result: string; reason: string }>;
    assert.equal(entries.filter((e) => e.reason === 'asked on a follower').length, 1, 'one history entry');
  });

  test('two manual failovers at once, on a follower and on the leader: one runs, the other is refused with the reason', async () => {
    const leader = await theLeader(sidecars);
    const follower = sidecars.find((s) => s !== leader)!;
    const state = await statusOf(leader);
    const target = state.primary === 'primary' ? 'secondary1' : 'primary';
    const [onFollower, onLeader] = await Promise.all([
      post(follower, '/api/failover', { target, reason: 'at once (follower)' }),
      post(leader, '/api/failover', { target, reason: 'at once (leader)' }),
    ]);
    const statuses = [onFollower.status, onLeader.status].sort();
    assert.deepEqual(statuses, [200, 409], JSON.stringify([onFollower, onLeader]));
    const refused = onFollower.status === 409 ? onFollower : onLeader;
    assert.match(String(refused.json.error), /another failover is in progress|the primary changed since this was asked/);
    const after = await statusOf(leader);
    assert.equal(after.epoch, state.epoch + 1, 'one switch');
  });

  test('kill -9 of the leader: another sidecar leads within the lease', async () => {
    const leader = await theLeader(sidecars);
    const rest = sidecars.filter((s) => s !== leader);
    const killedAt = performance.now();
    await leader.process.stop('SIGKILL');
    const next = await theLeader(rest, 10 * TTL * 1000);
    const newLeaderMs = performance.now() - killedAt;
    report('new leader after kill -9 of the leader', { ttl_s: TTL, new_leader_ms: Math.round(newLeaderMs), leader: next.name });
    sidecars = [...rest, await startSidecar(leader.name)];
    await eventually('the restarted sidecar to follow', 20_000, async () => (await statusOf(sidecars[2]!)).cluster.leader === next.name, output);
  });

  test('etcd without quorum: /primary answers 503 on every sidecar, nobody leads or switches; quorum back: carries on', async () => {
    const before = await statusOf(await theLeader(sidecars));
    const [m1, m2] = etcd.members.slice(1);
    await etcd.kill(m1!);
    await etcd.kill(m2!);
    await eventually('/primary 503 on every sidecar', 10 * TTL * 1000, async () => {
      const answers = await Promise.all(sidecars.map((s) => httpGet(`${s.process.url}/primary`)));
      return answers.every((a) => a.status === 503);
    }, output);
    // The leadership ends with its lease (a renewal cannot get through): within the TTL of the cut.
    let cut: StatusJson[] = [];
    await eventually('every sidecar to say it is cut off, and none to lead', 10 * TTL * 1000, async () => {
      cut = await Promise.all(sidecars.map(statusOf));
      return cut.every((s) => /the state store does not answer/.test(s.cluster.cut_off ?? '') && !s.cluster.is_leader);
    }, () => JSON.stringify(cut.map((s) => s.cluster)));
    const routed = await httpGet(`${sidecars[0]!.process.url}/primary/${before.primary}`);
    assert.equal(routed.status, 503);
    assert.match(JSON.parse(routed.body).problem, /the state store does not answer/);

    await etcd.start(m1!);
    await etcd.start(m2!);
    await etcd.waitHealthy();
    const leader = await theLeader(sidecars, 60_000);
    let answers: Array<{ status: number; body: string }> = [];
    await eventually('/primary 200 again on every sidecar', 30_000, async () => {
      answers = await Promise.all(sidecars.map((s) => httpGet(`${s.process.url}/primary`)));
      return answers.every((a) => a.status === 200);
    }, () => `${answers.map((a) => `${a.status} ${a.body}`).join('\n')}\n${output()}`);
    const afterwards = await statusOf(leader);
    assert.equal(afterwards.epoch, before.epoch, 'no switch while cut off');
    assert.equal(afterwards.primary, before.primary);
  });

  test('the primary lost: the leader fails over once the members agree, and every sidecar routes to the new primary', async () => {
    const leader = await theLeader(sidecars);
    const before = await statusOf(leader);
    const lost = before.primary!;
    const next = lost === 'primary' ? 'secondary1' : 'primary';
    const lostAt = performance.now();
    moveAway(sandbox.path(`data/images_${lost}.db`));
    await eventually(`every sidecar to route to ${next}`, 60_000, async () => {
      const answers = await Promise.all(sidecars.map((s) => httpGet(`${s.process.url}/primary`)));
      return answers.every((a) => a.status === 200 && (JSON.parse(a.body) as { name: string }).name === next);
    }, output);
    const rtoMs = performance.now() - lostAt;
    const history = JSON.parse((await sandbox.run(['history', '--json', '--config', sidecars[0]!.config])).stdout) as Array<{ trigger: string; result: string; reason: string }>;
    const auto = history.filter((h) => h.trigger === 'auto');
    assert.deepEqual(auto.map((h) => h.result), ['success'], JSON.stringify(history, null, 2));
    assert.match(auto[0]!.reason, /3 of 3 live members see the primary down|[23] of 3 live members see the primary down/);
    assert.equal((await statusOf(leader)).epoch, before.epoch + 1, 'one switch');
    report('failover with three sidecars on etcd (SQLite file lost; interval 1 s x threshold 3)', { rto_ms: Math.round(rtoMs), from: lost, to: next });
  });
});
