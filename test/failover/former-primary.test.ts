/** The fate of a replaced primary (plain function): a table of situations, and the words that tell the operator what follows. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { demotedNote, formerPrimaryFate, formerPrimaryNote, type FormerPrimaryFate, type FormerPrimaryInput } from '../../src/failover/former-primary.js';

const CASES: Array<{ name: string; input: FormerPrimaryInput; fate: FormerPrimaryFate }> = [
  {
    name: 'SQLite switchover, fenced and caught up: a candidate, kept up to date by the copies',
    input: { trigger: 'manual', primaryWasUp: true, syncComplete: true, keptWarm: true },
    fate: { demote: false, because: 'kept-warm' },
  },
  {
    name: 'a switchover asked for by an alert counts as a switchover',
    input: { trigger: 'alert', primaryWasUp: true, syncComplete: true, keptWarm: true },
    fate: { demote: false, because: 'kept-warm' },
  },
  {
    name: 'PostgreSQL switchover, lossless: demoted, nothing keeps it up to date',
    input: { trigger: 'manual', primaryWasUp: true, syncComplete: true, keptWarm: false },
    fate: { demote: true, because: 'not-kept-warm' },
  },
  {
    name: 'switchover whose sync was not complete: may hold writes the new primary lacks',
    input: { trigger: 'manual', primaryWasUp: true, syncComplete: false, keptWarm: true },
    fate: { demote: true, because: 'lossy' },
  },
  {
    name: 'manual failover of a dead primary: lossy even if a last copy worked',
    input: { trigger: 'manual', primaryWasUp: false, syncComplete: true, keptWarm: true },
    fate: { demote: true, because: 'lossy' },
  },
  {
    name: 'automatic failover: the primary was judged dead, whatever the copy managed',
    input: { trigger: 'auto', primaryWasUp: true, syncComplete: true, keptWarm: true },
    fate: { demote: true, because: 'lossy' },
  },
  {
    name: 'automatic failover of a dead PostgreSQL primary',
    input: { trigger: 'auto', primaryWasUp: false, syncComplete: false, keptWarm: false },
    fate: { demote: true, because: 'lossy' },
  },
  {
    name: 'alert-driven failover of a dead primary',
    input: { trigger: 'alert', primaryWasUp: false, syncComplete: false, keptWarm: true },
    fate: { demote: true, because: 'lossy' },
  },
];

describe('formerPrimaryFate', () => {
  for (const c of CASES) {
    test(c.name, () => assert.deepEqual(formerPrimaryFate(c.input), c.fate));
  }
});

describe('what the operator is told', () => {
  test('a candidate kept warm: no action', () => {
    const note = formerPrimaryNote('primary', 'sqlite', 'secondary1', 'kept-warm');
    assert.match(note, /^primary stays a failover candidate: WAL shipping keeps it up to date from secondary1$/);
  });
  test('a lossless PostgreSQL switchover: rebuild as a standby, then reinstate, or fail back', () => {
    const note = formerPrimaryNote('primary', 'postgresql', 'standby1', 'not-kept-warm');
    assert.match(note, /^primary is demoted: .*no longer a standby/);
    assert.match(note, /Rebuild it as a standby of standby1 \(pg_rewind, or pg_basebackup .*primary_conninfo pointing at standby1\)/);
    assert.match(note, /then run `disaster-recovery reinstate primary`/);
    assert.match(note, /`disaster-recovery failover primary`/);
  });
  test('a lossy failover: recover what it holds, then reinstate', () => {
    assert.match(formerPrimaryNote('primary', 'sqlite', 'secondary1', 'lossy'), /may hold writes the new primary lacks.*reinstate primary` \(a whole copy then overwrites it, and WAL shipping follows\)$/);
  });
  test('status: a demoted SQLite database was left by a lossy switch; a PostgreSQL one is rebuilt', () => {
    assert.match(demotedNote('secondary1', 'sqlite', 'primary'), /may hold writes the new primary lacks/);
    assert.match(demotedNote('primary', 'postgresql', 'standby1'), /Rebuild it as a standby of standby1.*If `history` says/);
  });
});
