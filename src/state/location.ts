/**
 * Where the state store is, and the errors a user gets when it is not usable
 * there. Relative `state.path` values resolve against the working directory
 * (as the databases' SQLite URLs do); what keeps every process on one cluster
 * state is that only `start-monitoring` creates a store that does not exist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DrError } from '../errors.js';

/** The configured state store: an absolute path, and how it was reached. */
export interface StateLocation {
  path: string;
  /** The working directory a relative `state.path` was resolved against; undefined when it was absolute. */
  relativeTo?: string | undefined;
}

/** Kernel pseudo-filesystems: files there are not storage (SQLite on /proc spins instead of failing). */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];
const PSEUDO_FS_TYPES = new Map<number, string>([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
]);

/** The store does not exist where this process looked; only start-monitoring creates one. */
export class StateStoreMissing extends DrError {
  constructor(readonly file: string, relativeTo: string | undefined) {
    const resolved = relativeTo ? ` (state.path is relative, resolved against the working directory ${relativeTo})` : '';
    super(
      `no state store at ${file}${resolved}: run this command from the folder the sidecar runs in, or make state.path absolute; ` +
        "the sidecar's start-monitoring creates the store",
    );
  }
}

/** The store exists (or should be created) but cannot be used: unwritable, damaged, not a file. */
export class StateStoreUnusable extends DrError {
  constructor(readonly file: string, what: string) {
    super(`state store ${file} ${what}`);
  }
}

/**
 * Why `file` cannot hold a state store, when the path alone says so (a
 * pseudo-filesystem, something that is not a regular file), as words that
 * follow the path ("is a directory, ..."); else undefined.
 */
export function stateLocationProblem(file: string): string | undefined {
  const real = realLocation(file);
  const root = PSEUDO_ROOTS.find((r) => real === r || real.startsWith(`${r}/`));
  const fsType = root ? undefined : pseudoFsType(real);
  if (root || fsType) {
    return `is on ${root ?? fsType}, a kernel pseudo-filesystem, not a place for a database file; choose a file on a local disk (e.g. /var/lib/dr-sidecar/dr-state.db)`;
  }
  const kind = nonRegularKind(file);
  return kind ? `is ${kind}, not a regular file; point state.path at a file (it is created by start-monitoring)` : undefined;
}

/** Checks the place before opening: refuses what is not a regular file, and a missing store unless creating. */
export function checkStateLocation(location: StateLocation, create: boolean): void {
  const problem = stateLocationProblem(location.path);
  if (problem) throw new StateStoreUnusable(location.path, problem);
  if (!create && !fs.existsSync(location.path)) throw new StateStoreMissing(location.path, location.relativeTo);
}

/** One readable line for a failure to create, open or read the store (driver and system errors). */
export function unusableStore(file: string, error: unknown): StateStoreUnusable {
  if (error instanceof StateStoreUnusable) return error;
  const code = String((error as { code?: unknown }).code ?? '');
  const message = (error as Error).message ?? String(error);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StateStoreUnusable(
      file,
      `is not a SQLite database or is damaged (${message}): move it aside and put back a copy of it; ` +
        'only if there is none, let start-monitoring create a new one (the failover history and the current primary are lost: check them before)',
    );
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new StateStoreUnusable(file, `cannot be written (${message}): give the sidecar's user write access to it and its folder, or set state.path to a writable place`);
  }
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    return new StateStoreUnusable(file, `cannot be created: its folder ${path.dirname(file)} cannot be made, something on the way is not a folder (${message}); set state.path to a file in a folder that exists or can be made`);
  }
  if (code === 'ENOENT') {
    return new StateStoreUnusable(file, `cannot be created: its folder ${path.dirname(file)} cannot be made (${message}); set state.path to a file in a folder that exists or can be made`);
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return new StateStoreUnusable(file, `cannot be opened (${message}): check that its folder exists and is writable for the sidecar's user`);
  }
  return new StateStoreUnusable(file, `cannot be used (${code && !message.startsWith(code) ? `${code}: ` : ''}${message})`);
}

/** The path with the symlinks of its longest existing ancestor resolved. */
function realLocation(file: string): string {
  const rest: string[] = [];
  let at = file;
  for (;;) {
    try {
      return path.join(fs.realpathSync(at), ...rest);
    } catch {
      const parent = path.dirname(at);
      if (parent === at) return file;
      rest.unshift(path.basename(at));
      at = parent;
    }
  }
}

function pseudoFsType(real: string): string | undefined {
  for (let at = real; ; at = path.dirname(at)) {
    try {
      return PSEUDO_FS_TYPES.get(Number(fs.statfsSync(at).type));
    } catch {
      if (path.dirname(at) === at) return undefined;
    }
  }
}

function nonRegularKind(file: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a named pipe';
  if (stat.isSocket()) return 'a socket';
  return 'a device';
}
