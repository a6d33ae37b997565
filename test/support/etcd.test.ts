import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { etcdctl, startEtcdCluster, type EtcdCluster } from './etcd.js';
import { waitFor } from './failover.js';

/** exists and is not a zombie */
function alive(pid: number): boolean {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t.slice(t.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** etcdctl's output, or undefined when it failed (for retries while the cluster elects a leader). */
function tryEtcdctl(cluster: EtcdCluster, args: string[]): string | undefined {
  try {
    return etcdctl(cluster, args) || 'ok';
  } catch {
    return undefined;
  }
}

const pids = (cluster: EtcdCluster) => cluster.members.map((m) => m.pid).filter((p): p is number => p !== undefined);

describe('etcd test harness', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
  });
  after(async () => {
    await cluster?.destroy();
  });

  test('three members on their own ports and data directories, one leader', () => {
    assert.equal(cluster.members.length, 3);
    assert.equal(new Set(cluster.endpoints).size, 3);
    assert.equal(new Set(cluster.members.map((m) => m.dataDir)).size, 3);
    const status = JSON.parse(etcdctl(cluster, ['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { header: { member_id: string }; leader: string } }>;
    assert.equal(status.length, 3);
    assert.equal(new Set(status.map((s) => s.Status.leader)).size, 1, 'every member names the same leader');
  });

  test('one member killed: still writable; started again: healthy, with the write', async () => {
    const victim = cluster.members[0]!;
    const pid = victim.pid!;
    await cluster.kill(victim);
    assert.equal(alive(pid), false);
    assert.equal(victim.pid, undefined);
    // Killing the raft leader means an election first: the write is retried until the two left elect one.
    await waitFor('a write with one member of three down', 30_000, () => tryEtcdctl(cluster, ['put', 'harness/k', 'v1']));
    await cluster.start(victim);
    const only = { ...cluster, endpoints: [victim.clientUrl] } as EtcdCluster;
    await waitFor('the restarted member serving the write', 30_000, () => etcdctl(only, ['get', 'harness/k', '--print-value-only']).trim() === 'v1');
  });

  test('a paused member does not answer until resumed; stop ends it cleanly', async () => {
    const m = cluster.members[1]!;
    await cluster.waitHealthy();
    await waitFor('a write to the whole cluster', 30_000, () => tryEtcdctl(cluster, ['put', 'harness/paused', 'v2']));
    cluster.pause(m);
    const only = { ...cluster, endpoints: [m.clientUrl] } as EtcdCluster;
    assert.throws(() => etcdctl(only, ['get', 'harness/paused']));
    cluster.resume(m);
    await cluster.waitHealthy();
    await waitFor('the resumed member serving the write', 30_000, () => /v2/.test(tryEtcdctl(only, ['get', 'harness/paused', '--print-value-only']) ?? ''));
    const pid = m.pid!;
    await cluster.stop(m);
    assert.equal(alive(pid), false);
    await cluster.start(m);
  });

  test('a test process killed with SIGKILL leaves no etcd running and no folder', async () => {
    const harness = path.join(path.dirname(fileURLToPath(import.meta.url)), 'etcd.js');
    const script = `import { startEtcdCluster } from ${JSON.stringify(harness)};
      const c = await startEtcdCluster({ members: 1 });
      console.log(JSON.stringify({ pid: c.members[0].pid, dir: c.members[0].dataDir }));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const info = await waitFor('the child to start its etcd', 30_000, () => (out.includes('\n') ? (JSON.parse(out) as { pid: number; dir: string }) : undefined), 50);
    assert.equal(alive(info.pid), true);
    child.kill('SIGKILL');
    await waitFor('the orphaned etcd to be killed by the watchdog', 15_000, () => !alive(info.pid), 100);
    await waitFor('its folder to be removed', 15_000, () => !existsSync(info.dir), 100);
  });

  test('destroy leaves no process', async () => {
    const own = await startEtcdCluster({ members: 1 });
    const running = pids(own);
    assert.equal(running.length, 1);
    await own.destroy();
    for (const pid of running) assert.equal(alive(pid), false);
    assert.equal(existsSync(own.members[0]!.dataDir), false);
  });

  test('without etcd installed the harness fails (never skips), naming the Debian package', () => {
    const harness = path.join(path.dirname(fileURLToPath(import.meta.url)), 'etcd.js');
    const script = `import { startEtcdCluster } from ${JSON.stringify(harness)};
      try { await startEtcdCluster({ members: 1 }); console.log('started'); } catch (e) { console.log(e.message); }`;
    // A PATH with a shell and nothing else.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'dr-no-etcd-'));
    symlinkSync('/bin/sh', path.join(bin, 'sh'));
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PATH: bin } });
    rmSync(bin, { recursive: true, force: true });
    assert.match(r.stdout, /needs `etcd`, which is not installed: apt-get install -y etcd-server etcd-client \(Debian package `etcd-server`\)/);
  });
});
