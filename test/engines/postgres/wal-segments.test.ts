import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lastTransactionIn } from '../../../src/engines/postgres/recovery-server.js';
import { commitTimesIn } from '../../../src/engines/postgres/segment-times.js';
import { slotNameFor } from '../../../src/engines/postgres/archive-layout.js';
import { formatLsn, missingRuns, parseLsn, parseSegmentName, segmentName, segnoOf } from '../../../src/engines/postgres/wal-segments.js';

describe('WAL segment names and positions', () => {
  test('a segment name reads back to its timeline and number', () => {
    const s = parseSegmentName('0000000200000001000000FE')!;
    assert.equal(s.timeline, 2);
    assert.equal(s.segno, 256n + 254n);
    assert.equal(segmentName(2, s.segno), '0000000200000001000000FE');
    assert.equal(parseSegmentName('000000010000000000000002.partial'), undefined);
    assert.equal(parseSegmentName('00000002.history'), undefined);
  });

  test('positions: parse, format, the segment they fall in', () => {
    assert.equal(parseLsn('1/2000028'), 0x1_0200_0028n);
    assert.equal(formatLsn(0x1_0200_0028n), '1/2000028');
    assert.equal(segnoOf(parseLsn('0/2000028')), 2n);
    assert.throws(() => parseLsn('nope'), /not a WAL position/);
  });

  test('missing runs between the lowest and the highest segment', () => {
    assert.deepEqual(missingRuns([1n, 2n, 3n]), []);
    assert.deepEqual(missingRuns([5n, 1n, 2n, 9n]), [{ from: 3n, to: 4n }, { from: 6n, to: 8n }]);
  });

  test('commit times from pg_waldump output; the last transaction from a recovery log', () => {
    const out = [
      'rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/01548F50, prev 0/01548F18, desc: COMMIT 2026-11-30 07:35:01.123456 UTC',
      'rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/01549F50, prev 0/01549F18, desc: ABORT 2026-11-30 07:35:02.5 UTC',
    ].join('\n');
    assert.deepEqual(commitTimesIn(out).map((d) => d.toISOString()), ['2026-11-30T07:35:01.123Z', '2026-11-30T07:35:02.500Z']);
    const log = 'LOG:  recovery stopping before commit of transaction 760, time 2026-11-30 07:35:09.1+00\nLOG:  last completed transaction was at log time 2026-11-30 07:35:08.654321+00';
    assert.equal(lastTransactionIn(log)?.toISOString(), '2026-11-30T07:35:08.654Z');
  });

  test('slot names: the allowed characters, at most 63 bytes, distinct for names of other scripts', () => {
    assert.equal(slotNameFor('primary'), 'dr_sidecar_primary');
    assert.match(slotNameFor('主库'), /^dr_sidecar_+[0-9a-f]{8}$/);
    assert.notEqual(slotNameFor('主库'), slotNameFor('备库'));
    assert.ok(slotNameFor('x'.repeat(150)).length <= 63);
  });
});
