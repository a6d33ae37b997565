import type { Storage } from '../../storage/storage.js';
import { archivePrefix, parseArchiveKey, type GenerationRecord } from './archive-layout.js';
import type { ArchivedGeneration } from './archive-window.js';

/**
 * A SQLite database's archive as it stands in `storage`: one listing, and the
 * small generation.json of each generation (its reason and what it continues).
 */
export async function readArchive(storage: Storage, database: string): Promise<ArchivedGeneration[]> {
  const byName = new Map<string, ArchivedGeneration & { hasRecord: boolean; hasSnapshot: boolean }>();
  const of = (name: string) => {
    let generation = byName.get(name);
    if (!generation) {
      generation = { name, startedMs: startOfName(name), record: undefined, segments: [], hasRecord: false, hasSnapshot: false };
      byName.set(name, generation);
    }
    return generation;
  };
  for (const object of await storage.list(archivePrefix(database))) {
    const key = parseArchiveKey(database, object.key);
    if (key.kind === 'other') continue;
    const generation = of(key.generation);
    if (key.kind === 'generation') generation.hasRecord = true;
    else if (key.kind === 'snapshot') generation.hasSnapshot = true;
    else generation.segments.push({ key: object.key, sequence: key.sequence, committedMs: key.committedMs, size: object.size });
  }
  const generations: ArchivedGeneration[] = [];
  for (const g of byName.values()) {
    g.segments.sort((a, b) => a.sequence - b.sequence);
    if (g.hasRecord && g.hasSnapshot) {
      const record = await readRecord(storage, `${archivePrefix(database)}${g.name}/generation.json`);
      g.record = { reason: record.reason, continues: record.continues, snapshotKey: record.snapshot.key };
      g.startedMs = Date.parse(record.started_at);
    }
    generations.push({ name: g.name, startedMs: g.startedMs, record: g.record, segments: g.segments });
  }
  return generations.sort((a, b) => a.startedMs - b.startedMs);
}

export async function readRecord(storage: Storage, key: string): Promise<GenerationRecord> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await storage.read(key)) as AsyncIterable<Buffer>) chunks.push(chunk);
  const record = JSON.parse(Buffer.concat(chunks).toString('utf8')) as GenerationRecord;
  if (record?.format !== 'dr-sidecar sqlite archive generation') throw new Error(`${key} in ${storage.name} is not a generation record`);
  return record;
}

/** `20261130T072512123Z-3fa9` -> its epoch ms. */
function startOfName(name: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(name);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!) : 0;
}
