import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { registerBackupMetrics } from '../../src/metrics/backup-metrics.js';
import { makeImagesDb, tempDir } from '../support/sqlite.js';
import { backupsFor } from './fixtures.js';

/** The value of one series in a text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('backup metrics', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir('dr-backup-metrics-')));
  afterEach(() => cleanup());

  test('counts by result from the start, and describe the newest good backup in the catalogue', async () => {
    const live = path.join(dir, 'images.db');
    makeImagesDb(live, 100);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}`, secondary: `sqlite:///${path.join(dir, 'missing.db')}` });
    const registry = new Registry();
    registerBackupMetrics(registry, backups);

    let text = await registry.metrics();
    for (const database of ['primary', 'secondary']) {
      for (const result of ['success', 'error']) assert.equal(sample(text, `dr_backups_total{database="${database}",result="${result}"}`), 0);
    }
    assert.equal(sample(text, 'dr_backup_size_bytes{database="primary"}'), undefined, 'no backup yet: no series');

    const record = await backups.create();
    await assert.rejects(backups.create({ database: 'secondary' }));
    text = await registry.metrics();
    assert.equal(sample(text, 'dr_backups_total{database="primary",result="success"}'), 1);
    assert.equal(sample(text, 'dr_backups_total{database="secondary",result="error"}'), 1);
    assert.equal(sample(text, 'dr_backup_last_success_timestamp_seconds{database="primary"}'), Date.parse(record.finished_at) / 1000);
    assert.equal(sample(text, 'dr_backup_size_bytes{database="primary"}'), record.size_bytes);
    assert.equal(sample(text, 'dr_backup_duration_seconds{database="primary"}'), record.duration_seconds);
    assert.equal(sample(text, 'dr_backup_size_bytes{database="secondary"}'), undefined);
    assert.match(text, /# TYPE dr_backups_total counter/);
    assert.match(text, /# TYPE dr_backup_last_success_timestamp_seconds gauge/);
  });
});
