/**
 * The identity of a SQLite file the sidecar watches, and the decision whether
 * the file at a database's path is still the database it watched. Plain data
 * and plain functions; engines/sqlite-identities.ts keeps them and persists them.
 */

/** Which file holds a database, and how much of it there was. */
export interface SqliteIdentity {
  dev: number;
  ino: number;
  /**
   * The file's creation time in ms (0 or absent: not kept by the file system). A file deleted and
   * created again often gets the same inode number back (ext4 hands it out at once); not the same birth.
   */
  born?: number;
  /** Pages of the main file (its size over the page size). */
  pages: number;
  /** The header's file change counter (bytes 24..27); SQLite only ever raises it. */
  changeCounter: number;
  /** User tables in its schema; undefined when the file could not be opened to count them. */
  tables: number | undefined;
}

/** An identity as seen at one moment. */
export interface SqliteObservation extends SqliteIdentity {
  /** Epoch ms of the stat it was read from. */
  at: number;
}

/**
 * Why the file now at the path is not the database of `baseline` (it lost its
 * data behind the sidecar's back), or undefined when it still is.
 *
 * A file only grows, or shrinks through a write to page 1 (VACUUM, auto-vacuum:
 * they raise the change counter): a change counter that went back, or a sharp
 * shrink without a write to the header, means another file's bytes are there.
 */
export function judgeIdentity(baseline: SqliteIdentity, now: SqliteIdentity): string | undefined {
  if (now.dev !== baseline.dev || now.ino !== baseline.ino) {
    return `the file was replaced (device:inode ${baseline.dev}:${baseline.ino} -> ${now.dev}:${now.ino}; now ${pagesText(now)})`;
  }
  if (baseline.born && now.born && baseline.born !== now.born) {
    return `the file was deleted and created again (same inode ${now.ino}, created ${new Date(now.born).toISOString()}; now ${pagesText(now)})`;
  }
  if (baseline.pages > 0 && now.pages === 0) return `the file was emptied (0 pages, it had ${baseline.pages})`;
  if (now.changeCounter < baseline.changeCounter) {
    return `its header's change counter went back from ${baseline.changeCounter} to ${now.changeCounter} (another database's bytes were written over it; now ${pagesText(now)})`;
  }
  if (baseline.tables !== undefined && baseline.tables > 0 && now.tables === 0) {
    return `its schema is empty (it had ${baseline.tables} table${baseline.tables === 1 ? '' : 's'})`;
  }
  if (now.pages * 2 < baseline.pages && now.changeCounter === baseline.changeCounter) {
    return `it shrank from ${baseline.pages} to ${now.pages} pages without a write to its header (truncated)`;
  }
  return undefined;
}

const pagesText = (identity: SqliteIdentity) => `${identity.pages} pages${identity.tables !== undefined ? `, ${identity.tables} tables` : ''}`;

/**
 * Whether an observation moved far enough from the identity last persisted to
 * be worth writing down: a sidecar restart then judges against something close.
 * (A persisted identity that is behind never makes a false "lost": the counter
 * only grows, and a shrink that came with a header write is no loss.)
 */
export function worthPersisting(persisted: SqliteIdentity, now: SqliteIdentity): boolean {
  if (now.dev !== persisted.dev || now.ino !== persisted.ino || (now.born ?? 0) !== (persisted.born ?? 0)) return true;
  if ((persisted.tables ?? 0) === 0 && (now.tables ?? 0) > 0) return true;
  return Math.abs(now.pages - persisted.pages) * 4 >= Math.max(persisted.pages, 1);
}
