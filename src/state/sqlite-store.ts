import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AlertRecord, ClusterState, FailoverRecord, FailoverResult, FailoverTrigger, Lease, SqliteIdentityRecord, StateStore } from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS demoted (name TEXT PRIMARY KEY, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS failover_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
  key TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_received_at ON alerts (received_at);
CREATE TABLE IF NOT EXISTS file_identity (database TEXT PRIMARY KEY, generation INTEGER NOT NULL, record TEXT NOT NULL);`;

/** Alert records are kept this long: long enough to catch any re-delivery. */
const ALERT_RETENTION_MS = 30 * 86_400_000;
/** Alert records committed in one transaction at most. */
const ALERT_GROUP = 16;

/**
 * The state store in a SQLite file (WAL mode), shared by every process on the
 * host. Each change is one IMMEDIATE transaction, so two processes never both
 * win the lease or both commit a switch from the same epoch.
 */
export class SqliteStateStore implements StateStore {
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    // A committed switch must survive a power cut: the next start must not route to the old primary.
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  async read(): Promise<ClusterState> {
    return this.db.transaction(() => this.readNow())();
  }

  async setAutoFailover(enabled: boolean): Promise<void> {
    this.setMeta('auto_failover', enabled ? '1' : '0');
  }

  async reinstate(name: string): Promise<void> {
    this.db.prepare('DELETE FROM demoted WHERE name = ?').run(name);
  }

  async acquireLease(holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.db
      .transaction(() => {
        const now = Date.now();
        const current = this.db.prepare('SELECT holder, expires_at FROM lease WHERE id = 1').get() as { holder: string; expires_at: number } | undefined;
        if (current && current.holder !== holder && current.expires_at > now) return undefined;
        const lease = { holder, expiresAt: now + ttlMs };
        this.db.prepare('INSERT INTO lease (id, holder, expires_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at').run(holder, lease.expiresAt);
        return lease;
      })
      .immediate();
  }

  async leaseHolder(): Promise<Lease | undefined> {
    const row = this.db.prepare('SELECT holder, expires_at FROM lease WHERE id = 1').get() as { holder: string; expires_at: number } | undefined;
    return row && row.expires_at > Date.now() ? { holder: row.holder, expiresAt: row.expires_at } : undefined;
  }

  async releaseLease(holder: string): Promise<void> {
    this.db.prepare('DELETE FROM lease WHERE id = 1 AND holder = ?').run(holder);
  }

  async commitSwitch(expectedEpoch: number, from: string | undefined, to: string, trigger: FailoverTrigger, at: number): Promise<ClusterState | undefined> {
    return this.db
      .transaction(() => {
        const state = this.readNow();
        if (state.epoch !== expectedEpoch) return undefined;
        this.setMeta('primary', to);
        this.setMeta('epoch', String(state.epoch + 1));
        if (trigger === 'auto' || trigger === 'alert') this.setMeta('last_auto_failover_at', String(at));
        if (from && from !== to) this.db.prepare('INSERT OR REPLACE INTO demoted (name, since) VALUES (?, ?)').run(from, at);
        this.db.prepare('DELETE FROM demoted WHERE name = ?').run(to);
        return this.readNow();
      })
      .immediate();
  }

  async appendHistory(record: FailoverRecord): Promise<number> {
    const { id: _id, ...rest } = record;
    const info = this.db.prepare('INSERT INTO failover_history (started_at, record) VALUES (?, ?)').run(record.startedAt, JSON.stringify(rest));
    return Number(info.lastInsertRowid);
  }

  async history(limit: number): Promise<FailoverRecord[]> {
    const rows = this.db.prepare('SELECT id, record FROM failover_history ORDER BY id DESC LIMIT ?').all(limit) as Array<{ id: number; record: string }>;
    return rows.map((row) => ({ id: row.id, ...(JSON.parse(row.record) as Omit<FailoverRecord, 'id'>) }));
  }

  /**
   * Alert records are committed in groups: the deliveries that arrive in one turn of the
   * event loop share one transaction, hence one fsync (synchronous = FULL) instead of one each.
   * At most ALERT_GROUP a turn, so a burst of deliveries lets other requests (a /metrics
   * scrape) in between groups instead of holding the event loop for all of them.
   */
  recordAlert(record: AlertRecord): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.alertQueue.push({ record, resolve, reject }) === 1) setImmediate(() => this.commitAlerts());
    });
  }

  private alertQueue: Array<{ record: AlertRecord; resolve: (fresh: boolean) => void; reject: (error: unknown) => void }> = [];
  private insertAlert: Database.Statement | undefined;
  private alertDb: Database.Database | undefined;

  /**
   * Alert records go through a connection of their own with synchronous = NORMAL
   * (in WAL mode: no fsync per commit, durable across a crash of the process,
   * not across a power cut). A record lost to a power cut only lets a re-delivery
   * act once more; an fsync per group blocked the event loop for milliseconds,
   * 180 times a second under load. Switches and history stay synchronous = FULL.
   */
  private alertConnection(): Database.Database {
    if (!this.db.open) throw new TypeError('The database connection is not open');
    if (!this.alertDb) {
      this.alertDb = new Database(this.file, { timeout: 5000 });
      this.alertDb.pragma('synchronous = NORMAL');
    }
    return this.alertDb;
  }

  private commitAlerts(): void {
    const batch = this.alertQueue.splice(0, ALERT_GROUP);
    if (this.alertQueue.length > 0) setImmediate(() => this.commitAlerts());
    const now = Date.now();
    let fresh: boolean[];
    try {
      const db = this.alertConnection();
      const insert = (this.insertAlert ??= db.prepare('INSERT OR IGNORE INTO alerts (key, received_at, record) VALUES (?, ?, ?)'));
      fresh = db
        .transaction(() => {
          const rows = batch.map(({ record }) => insert.run(record.key, now, JSON.stringify(record)));
          if (rows.some((r) => r.changes > 0 && Number(r.lastInsertRowid) % 1000 === 0)) {
            db.prepare('DELETE FROM alerts WHERE received_at < ?').run(now - ALERT_RETENTION_MS);
          }
          return rows.map((r) => r.changes > 0);
        })
        .immediate();
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    batch.forEach((waiting, i) => waiting.resolve(fresh[i]!));
  }

  async finishAlert(key: string, result: string): Promise<void> {
    this.db.prepare("UPDATE alerts SET record = json_set(record, '$.result', ?) WHERE key = ?").run(result, key);
  }

  async alerts(limit: number): Promise<AlertRecord[]> {
    const rows = this.db.prepare('SELECT record FROM alerts ORDER BY rowid DESC LIMIT ?').all(limit) as Array<{ record: string }>;
    return rows.map((row) => JSON.parse(row.record) as AlertRecord);
  }

  async historyCounts(): Promise<Array<{ trigger: FailoverTrigger; result: FailoverResult; count: number }>> {
    return this.db
      .prepare("SELECT json_extract(record, '$.trigger') AS trigger, json_extract(record, '$.result') AS result, count(*) AS count FROM failover_history GROUP BY 1, 2")
      .all() as Array<{ trigger: FailoverTrigger; result: FailoverResult; count: number }>;
  }

  async sqliteIdentities(): Promise<SqliteIdentityRecord[]> {
    const rows = this.db.prepare('SELECT record FROM file_identity ORDER BY database').pluck().all() as string[];
    return rows.map((row) => JSON.parse(row) as SqliteIdentityRecord);
  }

  async recordSqliteIdentity(record: SqliteIdentityRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO file_identity (database, generation, record) VALUES (?, ?, ?)
         ON CONFLICT (database) DO UPDATE SET generation = excluded.generation, record = excluded.record
         WHERE excluded.generation >= file_identity.generation`,
      )
      .run(record.database, record.generation, JSON.stringify(record));
  }

  async close(): Promise<void> {
    if (this.alertDb?.open) this.alertDb.close();
    if (this.db.open) this.db.close();
  }

  private readNow(): ClusterState {
    const meta = new Map((this.db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((r) => [r.key, r.value]));
    const demoted = (this.db.prepare('SELECT name FROM demoted ORDER BY since').all() as Array<{ name: string }>).map((r) => r.name);
    const auto = meta.get('auto_failover');
    const lastAuto = meta.get('last_auto_failover_at');
    return {
      primary: meta.get('primary'),
      epoch: Number(meta.get('epoch') ?? 0),
      autoFailover: auto === undefined ? undefined : auto === '1',
      demoted,
      lastAutoFailoverAt: lastAuto === undefined ? undefined : Number(lastAuto),
    };
  }

  private setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
