/**
 * The failure branches of the failover procedure that real servers cannot be made
 * to produce on demand: a leadership lost half-way, another process switching
 * between the procedure's look and its commit. Fake engines (a log of what was
 * done to each database) and a real SQLite state store: the procedure's own
 * logic is what is under test.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { DataSyncOutcome, Engine, Fence, ProbeResult } from '../../src/engines/engine.js';
import type { Engines } from '../../src/engines/index.js';
import { FailoverFailed, FailoverProcedure, type FailoverRequest } from '../../src/failover/procedure.js';
import { SilentNotifier } from '../../src/notifications/notifier.js';
import { LeadershipLost, type Leadership } from '../../src/state/leadership.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { memoryLogger } from '../support/failover.js';
import { tempDir } from '../support/sqlite.js';

class FakeEngine implements Engine {
  readonly kind = 'postgresql' as const;
  readonly replicatedBySidecar = false;
  readonly displayUrl: string;
  onCatchUp: (() => Promise<void> | void) | undefined;
  onPromote: (() => Promise<void> | void) | undefined;

  constructor(
    readonly name: string,
    private readonly done: string[],
  ) {
    this.displayUrl = `fake://${name}`;
  }

  async probe(): Promise<ProbeResult> {
    return { up: true, checkedAt: Date.now(), responseTimeSeconds: 0.001 };
  }
  async close(): Promise<void> {}
  async fence(): Promise<Fence> {
    this.done.push(`fence ${this.name}`);
    return { release: async () => void this.done.push(`release ${this.name}`), keep: async () => void this.done.push(`keep ${this.name}`) };
  }
  async catchUp(): Promise<DataSyncOutcome> {
    await this.onCatchUp?.();
    this.done.push(`catch up ${this.name}`);
    return { method: 'streaming', complete: true, detail: 'replayed to the fenced position' };
  }
  async promote(): Promise<void> {
    this.done.push(`promote ${this.name}`);
    await this.onPromote?.();
  }
  async follow(): Promise<string> {
    return 'follows';
  }
}

/** A leadership the test takes away when it likes. */
function leadership(): Leadership & { lose(): void } {
  const controller = new AbortController();
  return {
    holder: 'test-leader',
    signal: controller.signal,
    stillLeader: () => !controller.signal.aborted,
    release: async () => controller.abort(new LeadershipLost('released')),
    lose: () => controller.abort(new LeadershipLost('leadership of test-leader lost: the lease expired')),
  };
}

describe('failover procedure under a leadership', () => {
  const tmp = tempDir('dr-procedure-');
  after(() => tmp.cleanup());
  let n = 0;

  function setup() {
    const dir = path.join(tmp.dir, `case${++n}`);
    const yaml = `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "postgresql://u:p@127.0.0.1:1/a" }
    secondary1: { type: secondary, priority: 1, url: "postgresql://u:p@127.0.0.1:2/a" }
    secondary2: { type: secondary, priority: 2, url: "postgresql://u:p@127.0.0.1:3/a" }
  failover: { max_retry_attempts: 1, retry_delay: 0 }
state: { path: ${JSON.stringify(path.join(dir, 'state.db'))} }
`;
    const config = parseConfig(yaml, path.join(dir, 'config.yaml'), {}, dir);
    const done: string[] = [];
    const engines = new Map(config.databases.map((d) => [d.name, new FakeEngine(d.name, done)]));
    const store = new SqliteStateStore(config.state.path, { create: true });
    const logs = memoryLogger('debug');
    const procedure = new FailoverProcedure({
      config,
      engines: { get: (name: string) => engines.get(name), all: () => [...engines.values()] } as unknown as Engines,
      store,
      notifier: new SilentNotifier(),
      log: logs.log,
      lastCopyAt: () => undefined,
      countedUnrecorded: () => undefined,
    });
    return { procedure, store, done, engine: (name: string) => engines.get(name)!, logs };
  }

  const manual: FailoverRequest = { trigger: 'manual', target: 'secondary1', reason: 'test', ifPrimaryAnswers: 'switch over' };

  async function failure(run: Promise<unknown>): Promise<FailoverFailed> {
    const error = await run.then(
      () => assert.fail('expected the failover to fail'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof FailoverFailed, `a FailoverFailed, got ${String(error)}`);
    return error;
  }

  test('the leadership lost during the catch-up: nothing promoted, the fence lifted, the history says not done', async () => {
    const { procedure, store, done, engine } = setup();
    const lead = leadership();
    engine('secondary1').onCatchUp = () => lead.lose();
    const error = await failure(procedure.run(manual, lead));
    assert.equal(error.record.result, 'refused');
    assert.match(error.record.error ?? '', /lost before "promote secondary1"; not done/);
    assert.deepEqual(done, ['fence primary', 'catch up secondary1', 'release primary']);
    assert.equal((await store.read()).epoch, 0, 'no switch recorded');
    assert.equal((await store.history(1))[0]?.result, 'refused');
    await store.close();
  });

  test('the leadership lost during the promotion: the switch is not recorded, the stray target is fenced again, and the history says so', async () => {
    const { procedure, store, done, engine } = setup();
    const lead = leadership();
    engine('secondary1').onPromote = () => lead.lose();
    const error = await failure(procedure.run(manual, lead));
    assert.equal(error.record.result, 'failed');
    assert.match(error.record.error ?? '', /^promoted but not recorded: secondary1 is writable, the cluster's primary is primary; fenced again \(leadership of test-leader lost/);
    assert.deepEqual(done, ['fence primary', 'catch up secondary1', 'promote secondary1', 'release primary', 'fence secondary1', 'keep secondary1']);
    assert.equal((await store.read()).epoch, 0);
    await store.close();
  });

  test('another process records a switch between the last look and the commit: never "nothing changed" with a promoted target', async () => {
    const { procedure, store, done, engine } = setup();
    engine('secondary1').onPromote = async () => void (await store.commitSwitch(0, 'primary', 'secondary2', 'manual', Date.now()));
    const error = await failure(procedure.run(manual, leadership()));
    assert.equal(error.record.result, 'failed');
    assert.match(error.record.error ?? '', /^promoted but not recorded: secondary1 is writable, the cluster's primary is secondary2; fenced again/);
    assert.ok(done.includes('fence secondary1') && done.includes('keep secondary1'), done.join(', '));
    const state = await store.read();
    assert.equal(state.primary, 'secondary2');
    assert.equal(state.epoch, 1);
    await store.close();
  });

  test('another process switches before the promotion: refused, nothing promoted', async () => {
    const { procedure, store, done, engine } = setup();
    engine('secondary1').onCatchUp = async () => void (await store.commitSwitch(0, 'primary', 'secondary2', 'manual', Date.now()));
    const error = await failure(procedure.run(manual, leadership()));
    assert.equal(error.record.result, 'refused');
    assert.match(error.record.error ?? '', /another process switched the primary first \(epoch 0 -> 1\); nothing changed here/);
    assert.ok(!done.some((d) => d.startsWith('promote')), done.join(', '));
    await store.close();
  });

  test('without the leadership, or with a second run under way, or asked before a switch: refused, nothing done', async () => {
    const { procedure, store, done, engine } = setup();
    const lost = leadership();
    lost.lose();
    await assert.rejects(procedure.run(manual, lost), /does not hold the leadership \(test-leader\); nothing changed/);
    assert.equal(done.length, 0);

    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    engine('secondary1').onCatchUp = () => held;
    const lead = leadership();
    const first = procedure.run(manual, lead);
    while (!done.includes('fence primary')) await new Promise((r) => setImmediate(r));
    await assert.rejects(procedure.run({ ...manual, target: 'secondary2' }, lead), /another failover is in progress \(manual to secondary1, by test-leader/);
    release();
    assert.equal((await first).result, 'success');
    assert.equal((await store.read()).primary, 'secondary1');

    await assert.rejects(procedure.run({ ...manual, target: 'secondary2', expectedEpoch: 0 }, lead), /the primary changed since this was asked \(epoch 0 -> 1, primary secondary1\); nothing changed/);
    const results = (await store.history(10)).map((r) => r.result);
    assert.deepEqual(results, ['refused', 'success', 'refused', 'refused'], 'every manual attempt is in the history');
    await store.close();
  });
});
