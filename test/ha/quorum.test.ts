import assert from 'node:assert/strict';
import { test } from 'node:test';
import { primaryDownByMajority, type PrimarySighting } from '../../src/ha/quorum.js';

const cases: Array<{ name: string; others: PrimarySighting[]; agreed: boolean; down: number; alive: number }> = [
  { name: 'one sidecar: itself', others: [], agreed: true, down: 1, alive: 1 },
  { name: 'two, the other reaches the primary', others: ['up'], agreed: false, down: 1, alive: 2 },
  { name: 'two, both see it down', others: ['down'], agreed: true, down: 2, alive: 2 },
  { name: 'three, the leader alone cut off from the primary', others: ['up', 'up'], agreed: false, down: 1, alive: 3 },
  { name: 'three, one other agrees', others: ['down', 'up'], agreed: true, down: 2, alive: 3 },
  { name: 'three, one other has not probed yet', others: ['down', 'unknown'], agreed: true, down: 2, alive: 3 },
  { name: 'three, neither other has a view', others: ['unknown', 'unknown'], agreed: false, down: 1, alive: 3 },
  { name: 'four, half is not a majority', others: ['down', 'up', 'up'], agreed: false, down: 2, alive: 4 },
  { name: 'four, three agree', others: ['down', 'down', 'up'], agreed: true, down: 3, alive: 4 },
  { name: 'five, all agree', others: ['down', 'down', 'down', 'down'], agreed: true, down: 5, alive: 5 },
];

for (const c of cases) {
  test(`quorum: ${c.name}`, () => {
    const d = primaryDownByMajority({ self: { member: 'a', sees: 'down' }, others: c.others.map((sees, i) => ({ member: `m${i}`, sees })) });
    assert.equal(d.agreed, c.agreed, d.why);
    assert.equal(d.down, c.down);
    assert.equal(d.alive, c.alive);
  });
}

test("quorum: the leader's own published record is not counted twice", () => {
  const d = primaryDownByMajority({ self: { member: 'a', sees: 'down' }, others: [{ member: 'a', sees: 'down' }, { member: 'b', sees: 'up' }] });
  assert.equal(d.alive, 2);
  assert.equal(d.agreed, false);
  assert.match(d.why, /only 1 of 2 live members see the primary down \(2 needed\); not down for b \(up\)/);
});
