import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { ensurePrivateFolder, restrictSqliteFiles } from '../engines/private-file.js';
import { comparePath, identityAt, writeBack, type FileIdentity } from './file-guard.js';
import { checkStateLocation, unusableStore } from './location.js';
import type { AlertRecord, ClusterState, CommitSwitchOptions, FailoverRecord, FailoverResult, FailoverTrigger, Lease, LocationMode, SqliteIdentityRecord, StateStore } from './store.js';
import type { Intent, IntentOutcome, IntentRequest, MemberRecord, MemberView, StateWatch } from './store.js';

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
  private db: Database.Database;
  /** The file this process has open, to notice it removed or replaced at its path. */
  private identity: FileIdentity | undefined;
  readonly location: string;

  /**
   * Opens the store at `file` (absolute). It must exist unless `create` (only
   * start-monitoring creates a store: a missing one is refused, never quietly
   * replaced by an empty one that names the config's primary as current).
   */
  constructor(
    readonly file: string,
    options: { create?: boolean; relativeTo?: string | undefined } = {},
  ) {
    this.location = file;
    checkStateLocation({ path: file, relativeTo: options.relativeTo }, options.create === true);
    if (options.create) {
      try {
        ensurePrivateFolder(path.dirname(file));
      } catch (error) {
        throw unusableStore(file, error);
      }
    }
    this.db = openDatabase(file, options.create === true);
    this.identity = identityAt(file);
  }

  /**
   * Makes sure the file at the path is still the one open here. `write-back`
   * (the sidecar, whose store it is): a removed or replaced file is written back
   * from the open one. `follow` (CLI, library): a new file at the path is
   * opened; while none is there, the open one is still the cluster's state.
   */
  async checkLocation(mode: LocationMode): Promise<string | undefined> {
    const now = identityAt(this.file);
    const found = this.identity ? comparePath(this.identity, now) : 'replaced';
    if (found === 'same' || (mode === 'follow' && found === 'missing')) return undefined;
    if (mode === 'follow') {
      this.reopen();
      return `the state store ${this.file} was replaced; now reading the file at that path`;
    }
    let moved: string[];
    try {
      moved = writeBack(this.db, this.file);
    } catch (error) {
      throw unusableStore(this.file, error);
    }
    this.reopen();
    const aside = moved.length > 0 ? `; what was at the path was moved aside to ${moved.join(', ')}` : '';
    return `the state store ${this.file} was ${found === 'missing' ? 'removed' : 'replaced'} while the sidecar held it open; the sidecar wrote back the state it holds${aside}`;
  }

  /** Opens the file now at the path and drops the old connections (their file is not the cluster's any more). */
  private reopen(): void {
    const db = openDatabase(this.file, false);
    const old = [this.db, this.alertDb];
    this.db = db;
    this.identity = identityAt(this.file);
    this.alertDb = undefined;
    this.insertAlert = undefined;
    for (const conn of old) if (conn?.open) conn.close();
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

  async commitSwitch(
    expectedEpoch: number,
    from: string | undefined,
    to: string,
    trigger: FailoverTrigger,
    at: number,
    options: CommitSwitchOptions = {},
  ): Promise<ClusterState | undefined> {
    return this.db
      .transaction(() => {
        const state = this.readNow();
        if (state.epoch !== expectedEpoch) return undefined;
        this.setMeta('primary', to);
        this.setMeta('epoch', String(state.epoch + 1));
        if (trigger === 'auto' || trigger === 'alert') this.setMeta('last_auto_failover_at', String(at));
        if (from && from !== to && options.demoteFrom !== false) this.db.prepare('INSERT OR REPLACE INTO demoted (name, since) VALUES (?, ?)').run(from, at);
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
      .prepare("SELECT json_extract(record, '$.trigger') AS trigger, json_extract(record, '$.result') AS result, count(*) AS count FROM failover_history WHERE json_extract(record, '$.drill') IS NULL GROUP BY 1, 2")
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
    this.closeNow();
  }

  closeNow(): void {
    for (const watch of [...this.watches]) watch.stop();
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

  // Several sidecars sharing the state (issue 12). Kept at the end of the class, tables created on first use.

  private clusterTablesReady = false;
  private readonly watches = new Set<StateWatch>();

  private clusterDb(): Database.Database {
    if (!this.clusterTablesReady) {
      this.db.exec(`
CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, view TEXT NOT NULL, published_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  submitted_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  claimed_by TEXT,
  request TEXT NOT NULL,
  outcome TEXT
);`);
      this.clusterTablesReady = true;
    }
    return this.db;
  }

  async renewLease(holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.db
      .transaction(() => {
        const now = Date.now();
        const current = this.db.prepare('SELECT holder, expires_at FROM lease WHERE id = 1').get() as { holder: string; expires_at: number } | undefined;
        if (!current || current.holder !== holder || current.expires_at <= now) return undefined;
        const lease = { holder, expiresAt: now + ttlMs };
        this.db.prepare('UPDATE lease SET expires_at = ? WHERE id = 1').run(lease.expiresAt);
        return lease;
      })
      .immediate();
  }

  /**
   * Polls PRAGMA data_version on a connection of its own (it moves only for commits of
   * other connections, so this store's own writes count too), and reads the state when it
   * moved. Each poll that answers confirms the state delivered so far; `refresh()` is one
   * poll on demand (microseconds: the pragma looks at the WAL index, no page is read unless
   * the state changed). The probe follows the store to a file reopened at its path.
   */
  watch(onChange: (state: ClusterState) => void, onError?: (error: Error) => void, everyMs = 100): StateWatch {
    let probedDb = this.db;
    let probe = new Database(this.file, { readonly: true, timeout: 5000 });
    let version: number | undefined;
    let last: string | undefined;
    let confirmedAt: number | undefined;
    let stopped = false;
    const poll = () => {
      if (stopped) throw new Error(`the watch of the state store ${this.file} was stopped`);
      const sentAt = performance.now();
      if (probedDb !== this.db) {
        // checkLocation reopened the store on the file now at the path: watch that one.
        if (probe.open) probe.close();
        probe = new Database(this.file, { readonly: true, timeout: 5000 });
        probedDb = this.db;
        version = undefined;
      }
      const now = probe.pragma('data_version', { simple: true }) as number;
      if (now !== version) {
        const state = this.db.transaction(() => this.readNow())();
        version = now;
        const text = JSON.stringify(state);
        if (text !== last) {
          last = text;
          onChange(state);
        }
      }
      confirmedAt = sentAt;
    };
    const tick = () => {
      if (stopped) return;
      try {
        poll();
      } catch (error) {
        onError?.(error as Error);
      }
    };
    const timer = setInterval(tick, everyMs);
    timer.unref();
    setImmediate(tick);
    const watch: StateWatch = {
      stop: () => {
        stopped = true;
        clearInterval(timer);
        if (probe.open) probe.close();
        this.watches.delete(watch);
      },
      confirmedAt: () => confirmedAt,
      refresh: poll,
    };
    this.watches.add(watch);
    return watch;
  }

  async publishMember(name: string, view: MemberView, ttlMs: number): Promise<void> {
    const now = Date.now();
    this.clusterDb()
      .prepare('INSERT INTO members (name, view, published_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET view = excluded.view, published_at = excluded.published_at, expires_at = excluded.expires_at')
      .run(name, JSON.stringify(view), now, now + ttlMs);
  }

  async members(): Promise<MemberRecord[]> {
    const rows = this.clusterDb().prepare('SELECT name, view, published_at FROM members WHERE expires_at > ? ORDER BY name').all(Date.now()) as Array<{ name: string; view: string; published_at: number }>;
    return rows.map((r) => ({ name: r.name, view: JSON.parse(r.view) as MemberView, publishedAt: r.published_at }));
  }

  async submitIntent(request: IntentRequest): Promise<string> {
    const db = this.clusterDb();
    const now = Date.now();
    // Intents are kept a day: long enough for any submitter to read its outcome.
    db.prepare('DELETE FROM intents WHERE submitted_at < ?').run(now - 86_400_000);
    const info = db.prepare("INSERT INTO intents (submitted_at, state, request) VALUES (?, 'pending', ?)").run(now, JSON.stringify(request));
    return String(info.lastInsertRowid);
  }

  async claimIntent(holder: string): Promise<Intent | undefined> {
    const db = this.clusterDb();
    return db
      .transaction(() => {
        const row = db.prepare("SELECT id FROM intents WHERE state = 'pending' ORDER BY id LIMIT 1").get() as { id: number } | undefined;
        if (!row) return undefined;
        db.prepare("UPDATE intents SET state = 'claimed', claimed_by = ? WHERE id = ?").run(holder, row.id);
        return this.intentNow(String(row.id));
      })
      .immediate();
  }

  async finishIntent(id: string, outcome: IntentOutcome): Promise<void> {
    this.clusterDb().prepare("UPDATE intents SET state = 'finished', outcome = ? WHERE id = ? AND state != 'finished'").run(JSON.stringify(outcome), Number(id));
  }

  async intent(id: string): Promise<Intent | undefined> {
    return this.intentNow(id);
  }

  private intentNow(id: string): Intent | undefined {
    const row = this.clusterDb().prepare('SELECT id, submitted_at, state, claimed_by, request, outcome FROM intents WHERE id = ?').get(Number(id)) as
      | { id: number; submitted_at: number; state: Intent['state']; claimed_by: string | null; request: string; outcome: string | null }
      | undefined;
    if (!row) return undefined;
    return {
      ...(JSON.parse(row.request) as IntentRequest),
      id: String(row.id),
      submittedAt: row.submitted_at,
      state: row.state,
      claimedBy: row.claimed_by ?? undefined,
      outcome: row.outcome ? (JSON.parse(row.outcome) as IntentOutcome) : undefined,
    };
  }
}

/** A connection in WAL mode with the schema; a failure is one line naming the store. */
function openDatabase(file: string, create: boolean): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: 5000, fileMustExist: !create });
    db.pragma('journal_mode = WAL');
    restrictSqliteFiles(file); // the sidecar's own file: 0600, and so are the -wal/-shm SQLite makes after
    // A committed switch must survive a power cut: the next start must not route to the old primary.
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
    return db;
  } catch (error) {
    if (db?.open) db.close();
    throw unusableStore(file, error);
  }
}
