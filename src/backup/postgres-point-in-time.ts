import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { DatabaseConfig } from '../config/load.js';
import { ConflictError, DrError, InputError } from '../errors.js';
import { bringInto, countIn, withRecovered } from '../engines/postgres/base-backup.js';
import { RecoveryServer, type WalSource } from '../engines/postgres/recovery-server.js';
import { handOver } from '../engines/postgres/server-user.js';
import type { Storage } from '../storage/storage.js';
import { pickRestore, withinRanges, type RestorePick } from './archive-window.js';
import type { Backups } from './backups.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './point-in-time.js';
import { readPostgresArchive, viewOf, type PostgresArchive } from './postgres-archive.js';
import { pgTargetOf } from './pg-session.js';

const RECOVERY_TIMEOUT_MS = 6 * 3600_000;

/**
 * Point-in-time restore of PostgreSQL: the nearest earlier base backup and the
 * archived WAL, from the first storage (local first) whose archive covers the
 * time; recovered by a temporary server with `recovery_target_time`.
 */
export class PostgresPointInTime {
  constructor(
    private readonly backups: Backups,
    /** Where archives are read from, in order of preference: the local folder first, then offsite destinations. */
    private readonly sources: Storage[],
  ) {}

  async window(database: string): Promise<RestoreWindow> {
    const archive = await readPostgresArchive(this.sources[0]!, database);
    const view = viewOf(archive);
    return { database, engine: 'postgresql', ranges: view.ranges, gaps: view.gaps };
  }

  /** The archive (of the first source whose window holds `time`) and what to restore from it; refuses a time outside every window, naming the window. */
  private async plan(db: DatabaseConfig, time: Date): Promise<{ archive: PostgresArchive; pick: RestorePick }> {
    let firstWindow: RestoreWindow | undefined;
    for (const storage of this.sources) {
      const archive = await readPostgresArchive(storage, db.name);
      const view = viewOf(archive);
      firstWindow ??= { database: db.name, engine: 'postgresql', ...view };
      if (!withinRanges(view.ranges, time)) continue;
      const pick = pickRestore(archive.segments, archive.backups, time);
      if (typeof pick !== 'string') return { archive, pick };
    }
    throw new InputError(`cannot restore ${db.name} to ${time.toISOString()}: it is outside the window the backups and the archive cover (${describeWindow(firstWindow!)})`);
  }

  async restore(request: PointInTimeRequest, options: { skipSafetyBackup?: boolean } = {}): Promise<PointInTimeOutcome> {
    const started = performance.now();
    const db = this.backups.database(request.database);
    if (db.target.engine !== 'postgresql') throw new InputError(`${db.name} is not a PostgreSQL database`);
    const { archive, pick } = await this.plan(db, request.time);
    const target = pick.stopAtTime ? { time: request.time } : ('end' as const);
    const wal = walSources(archive, pick);
    const log = this.backups.deps.log;
    log.info({ database: db.name, time: request.time.toISOString(), base: pick.base.key, segments: pick.segments.length }, `point-in-time restore of ${db.name} to ${request.time.toISOString()} from ${pick.base.key}`);
    const base = async () => (await archive.storage.read(pick.base.key)).pipe(zlib.createGunzip());
    let lastTransactionAt: Date | undefined;
    let safety: string | undefined;
    if (request.into) {
      const into = path.resolve(request.into);
      if (fs.existsSync(into) && fs.readdirSync(into).length > 0) throw new InputError(`--into ${into} is not empty: name a new or empty folder`);
      const server = new RecoveryServer(into);
      try {
        await server.prepare(await base(), wal, target);
        lastTransactionAt = await server.recover(RECOVERY_TIMEOUT_MS);
      } finally {
        await server.stop().catch(() => undefined);
      }
      await handOver(into);
    } else {
      lastTransactionAt = await this.backups.exclusive(db.name, async () => {
        const saved = await this.backups.createUnlocked(db, 'pre-restore', 'pre-restore').catch((error: unknown) => {
          if (options.skipSafetyBackup) return undefined;
          throw new DrError(`cannot save the current contents of ${db.name} before restoring, so nothing was restored: ${(error as Error).message}`);
        });
        safety = saved?.path;
        return withRecovered(await base(), wal, target, async (server, at) => {
          await bringInto(server, db).catch((error: unknown) => {
            throw new DrError(`${this.backups.deps.scrub((error as Error).message)}${safety ? ` (its contents before were saved to ${safety})` : ''}`);
          });
          return at;
        });
      });
    }
    return {
      database: db.name,
      time: request.time,
      base: pick.base.key,
      source: archive.storage.name,
      lastTransactionAt,
      into: request.into ? path.resolve(request.into) : undefined,
      safetyBackup: safety,
      durationSeconds: (performance.now() - started) / 1000,
    };
  }

  /** Proves the archive: a restore to a moment inside the newest range into a scratch folder, read back; the gaps by time range. */
  async verify(database: string): Promise<ArchiveVerification> {
    const db = this.backups.database(database);
    const archive = await readPostgresArchive(this.sources[0]!, database);
    const view = viewOf(archive);
    const newest = view.ranges.at(-1);
    if (!newest) return { database, ok: false, detail: `no restorable window yet (${describeWindow({ database, engine: 'postgresql', ...view })})`, gaps: view.gaps };
    const time = new Date(newest.from.getTime() + (newest.to.getTime() - newest.from.getTime()) / 2);
    const pick = pickRestore(archive.segments, archive.backups, time);
    if (typeof pick === 'string') return { database, ok: false, detail: pick, gaps: view.gaps };
    const tables = await withRecovered(
      (await archive.storage.read(pick.base.key)).pipe(zlib.createGunzip()),
      walSources(archive, pick),
      pick.stopAtTime ? { time } : 'end',
      (server) => countIn(server, pgTargetOf(db)),
    ).catch((error: unknown) => {
      throw new ConflictError(this.backups.deps.scrub(`the archive of ${database} did not restore to ${time.toISOString()}: ${(error as Error).message}`));
    });
    const rows = Object.values(tables).reduce((a, b) => a + b, 0);
    const gaps = view.gaps.length === 0 ? 'no gaps' : `${view.gaps.length} gap(s): ${view.gaps.map((g) => `${g.from.toISOString()} .. ${g.to.toISOString()} (${g.reason})`).join('; ')}`;
    return {
      database,
      ok: view.gaps.length === 0,
      detail: `restored to ${time.toISOString()} from ${pick.base.key} and ${pick.segments.length} segment(s): ${Object.keys(tables).length} table(s), ${rows} row(s); ${gaps}`,
      gaps: view.gaps,
    };
  }
}

function walSources(archive: PostgresArchive, pick: RestorePick): WalSource[] {
  const names = [...pick.segments.map((s) => s.name), ...[...archive.files.keys()].filter((n) => n.endsWith('.history'))];
  return names.map((name) => {
    const key = archive.files.get(name)!;
    return { name, gzipped: key.endsWith('.gz'), open: () => archive.storage.read(key) };
  });
}

export function describeWindow(window: RestoreWindow): string {
  if (window.ranges.length === 0) return 'nothing can be restored to a point in time yet: take a backup with archiving on, and let a commit reach the archive';
  const ranges = window.ranges.map((r) => `${r.from.toISOString()} .. ${r.to.toISOString()}`).join(', ');
  return `restorable: ${ranges}`;
}
