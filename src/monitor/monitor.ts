import { EventEmitter } from 'node:events';
import { downResult, type Engine, type ProbeResult } from '../engines/engine.js';
import type { Logger } from '../log.js';
import { endSpan, startDetachedSpan } from '../telemetry/tracing.js';
import { applyProbe, initialHealth, type DatabaseHealth } from './health.js';
import { ProbeHistory } from './history.js';

export interface MonitorOptions {
  /** Seconds between the starts of two probes of one database. */
  intervalSeconds: number | ((name: string) => number);
  /** Seconds one probe may take before the database counts as down. */
  timeoutSeconds: number;
  historyRetentionHours: number;
}

export interface MonitorEvents {
  probe: [health: DatabaseHealth, previous: DatabaseHealth];
}

/**
 * Probes every database on its own timer, so a hung database delays nobody
 * else's probes, and keeps each one's health and probe history.
 */
export class Monitor extends EventEmitter<MonitorEvents> {
  private readonly healthByName = new Map<string, DatabaseHealth>();
  private readonly historyByName = new Map<string, ProbeHistory>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Epoch ms at which the probe under way of each database started. */
  private readonly probingSince = new Map<string, number>();
  private readonly asked = new Map<string, Promise<DatabaseHealth>>();
  private running = false;

  constructor(
    private readonly engines: Engine[],
    private readonly options: MonitorOptions,
    private readonly log: Logger,
  ) {
    super();
    for (const engine of engines) {
      this.healthByName.set(engine.name, initialHealth(engine.name));
      this.historyByName.set(engine.name, new ProbeHistory(options.historyRetentionHours * 3_600_000));
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Every database is probed at once at the start; after that the databases are spread over
    // the interval (the i-th of n probes its second time (n - i) / n of an interval later, then
    // every interval), so 55 databases are not 55 probes landing on the event loop together
    // every interval. No probe comes later than it would have: only sooner, once.
    this.engines.forEach((engine, i) => this.schedule(engine, 0, (this.engines.length - i) / this.engines.length));
  }

  /** Stops the timers and waits for probes under way. */
  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Probes every database once, all at the same time; resolves when the slowest has answered or timed out. */
  probeAll(): Promise<DatabaseHealth[]> {
    return Promise.all(this.engines.map((engine) => this.probe(engine)));
  }

  /** Probes one database now, out of turn; callers asking at the same time share one probe. */
  probeNow(name: string): Promise<DatabaseHealth | undefined> {
    const engine = this.engines.find((e) => e.name === name);
    if (!engine) return Promise.resolve(undefined);
    let pending = this.asked.get(name);
    if (!pending) {
      pending = this.probe(engine).finally(() => this.asked.delete(name));
      this.asked.set(name, pending);
    }
    return pending;
  }

  health(name: string): DatabaseHealth | undefined {
    return this.healthByName.get(name);
  }

  snapshot(): DatabaseHealth[] {
    return [...this.healthByName.values()];
  }

  /** Seconds the probe under way of `name` has run so far; undefined when none is. */
  probeUnderWaySeconds(name: string, now = Date.now()): number | undefined {
    const since = this.probingSince.get(name);
    return since === undefined ? undefined : Math.max(0, now - since) / 1000;
  }

  history(name: string): ProbeHistory | undefined {
    return this.historyByName.get(name);
  }

  /** Probes `engine` after `delayMs`, then again `share` of an interval after that probe started, then every interval. */
  private schedule(engine: Engine, delayMs: number, share = 1): void {
    const timer = setTimeout(() => {
      const startedAt = Date.now();
      void this.probe(engine).then(() => {
        if (!this.running) return;
        const intervalMs = this.intervalOf(engine.name) * 1000 * share;
        this.schedule(engine, Math.max(0, startedAt + intervalMs - Date.now()));
      });
    }, delayMs);
    this.timers.set(engine.name, timer);
  }

  private intervalOf(name: string): number {
    const interval = this.options.intervalSeconds;
    return typeof interval === 'function' ? interval(name) : interval;
  }

  /**
   * One promise and one callback per probe, no async/await: with tracing on,
   * Node 20's AsyncLocalStorage runs a hook for every promise, and probes are
   * the sidecar's most frequent work. An engine's probe answers "down" rather
   * than failing; should one fail anyway (even synchronously), that is a "down" too.
   */
  private probe(engine: Engine): Promise<DatabaseHealth> {
    const startedAt = performance.now();
    const since = Date.now();
    this.probingSince.set(engine.name, since);
    const span = startDetachedSpan('probe', { 'dr.database': engine.name, 'db.system': engine.kind });
    const settle = (result: ProbeResult, error?: unknown): DatabaseHealth => {
      this.inFlight.delete(pending);
      if (this.probingSince.get(engine.name) === since) this.probingSince.delete(engine.name);
      endSpan(span, { 'dr.up': result.up, ...(result.error ? { 'dr.error': result.error } : {}) }, error);
      return this.record(engine.name, result);
    };
    let probing: Promise<ProbeResult>;
    try {
      probing = engine.probe(this.options.timeoutSeconds * 1000);
    } catch (error) {
      probing = Promise.reject(error);
    }
    const pending: Promise<DatabaseHealth> = probing.then(
      (result) => settle(result),
      (error: unknown) => settle(downResult(startedAt, error instanceof Error ? error.message : String(error)), error),
    );
    this.inFlight.add(pending);
    return pending;
  }

  private record(name: string, result: ProbeResult): DatabaseHealth {
    const previous = this.healthByName.get(name) ?? initialHealth(name);
    const health = applyProbe(previous, result);
    this.healthByName.set(name, health);
    this.historyByName.get(name)?.add(result.checkedAt, result.up, result.responseTimeSeconds);
    this.logTransition(previous, health);
    this.emit('probe', health, previous);
    return health;
  }

  private logTransition(previous: DatabaseHealth, health: DatabaseHealth): void {
    if (previous.status === health.status) return;
    const fields = { database: health.name, status: health.status, previous: previous.status };
    if (health.status === 'down') {
      this.log.warn({ ...fields, error: health.last?.error }, `disaster-recovery health: database ${health.name} is down: ${health.last?.error}`);
    } else if (previous.status === 'down') {
      this.log.info(fields, `disaster-recovery health: database ${health.name} is up again`);
    } else {
      this.log.debug(fields, `disaster-recovery health: database ${health.name} is ${health.status}`);
    }
  }
}
