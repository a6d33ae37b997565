/** Candidate choice (plain function): a table of situations, the winner and why each other one was passed over. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseCandidate, describeRejections, type CandidateInput, type CandidateRules } from '../../src/failover/candidates.js';

const db = (name: string, priority: number, extra: Partial<CandidateInput> = {}): CandidateInput => ({
  name,
  priority,
  enabled: true,
  engine: 'sqlite',
  up: true,
  lagSeconds: 1,
  ...extra,
});

const rules = (extra: Partial<CandidateRules> = {}): CandidateRules => ({
  from: 'primary',
  fromEngine: 'sqlite',
  demoted: [],
  maxLagSeconds: undefined,
  ...extra,
});

interface Case {
  name: string;
  databases: CandidateInput[];
  rules?: Partial<CandidateRules>;
  /** The winner, or null when none is eligible. */
  chosen: string | null;
  /** name -> a pattern of why it was passed over. */
  passedOver: Record<string, RegExp>;
}

const CASES: Case[] = [
  {
    name: 'lowest priority number wins, whatever the order given',
    databases: [db('secondary2', 2), db('primary', 0), db('secondary1', 1)],
    chosen: 'secondary1',
    passedOver: {},
  },
  {
    name: 'the primary being replaced is never its own successor, nor listed as passed over',
    databases: [db('primary', 0), db('secondary1', 1)],
    chosen: 'secondary1',
    passedOver: {},
  },
  {
    name: 'disabled is skipped',
    databases: [db('primary', 0), db('secondary1', 1, { enabled: false }), db('secondary2', 2)],
    chosen: 'secondary2',
    passedOver: { secondary1: /^disabled$/ },
  },
  {
    name: 'demoted former primary is skipped',
    databases: [db('primary', 0), db('old', 1), db('secondary2', 2)],
    rules: { demoted: ['old'] },
    chosen: 'secondary2',
    passedOver: { old: /demoted .*reinstate/ },
  },
  {
    name: 'down is skipped',
    databases: [db('primary', 0), db('secondary1', 1, { up: false }), db('secondary2', 2)],
    chosen: 'secondary2',
    passedOver: { secondary1: /^down$/ },
  },
  {
    name: 'a database of another engine is skipped',
    databases: [db('primary', 0), db('pg', 1, { engine: 'postgresql' }), db('secondary2', 2)],
    chosen: 'secondary2',
    passedOver: { pg: /engine postgresql differs from the primary's sqlite/ },
  },
  {
    name: 'lag over max_lag_on_failover is skipped',
    databases: [db('primary', 0), db('secondary1', 1, { lagSeconds: 45 }), db('secondary2', 2, { lagSeconds: 5 })],
    rules: { maxLagSeconds: 30 },
    chosen: 'secondary2',
    passedOver: { secondary1: /lags 45\.0 s, more than max_lag_on_failover 30 s/ },
  },
  {
    name: 'lag exactly at max_lag_on_failover is allowed',
    databases: [db('primary', 0), db('secondary1', 1, { lagSeconds: 30 })],
    rules: { maxLagSeconds: 30 },
    chosen: 'secondary1',
    passedOver: {},
  },
  {
    name: 'unknown lag is not held against a candidate',
    databases: [db('primary', 0), db('secondary1', 1, { lagSeconds: undefined })],
    rules: { maxLagSeconds: 1 },
    chosen: 'secondary1',
    passedOver: {},
  },
  {
    name: 'no max_lag_on_failover: any lag is allowed',
    databases: [db('primary', 0), db('secondary1', 1, { lagSeconds: 86_400 })],
    chosen: 'secondary1',
    passedOver: {},
  },
  {
    name: 'none eligible: every one says why',
    databases: [
      db('primary', 0),
      db('secondary1', 1, { up: false }),
      db('secondary2', 2, { enabled: false }),
      db('old', 3),
      db('far', 4, { lagSeconds: 100 }),
      db('pg', 5, { engine: 'postgresql' }),
    ],
    rules: { demoted: ['old'], maxLagSeconds: 10 },
    chosen: null,
    passedOver: { secondary1: /down/, secondary2: /disabled/, old: /demoted/, far: /lags 100\.0 s/, pg: /engine/ },
  },
  {
    name: 'no secondary at all',
    databases: [db('primary', 0)],
    chosen: null,
    passedOver: {},
  },
  {
    name: 'no known previous primary (first switch): every enabled healthy one is a candidate',
    databases: [db('a', 3, { engine: 'postgresql' }), db('b', 1, { engine: 'postgresql' })],
    rules: { from: undefined, fromEngine: undefined },
    chosen: 'b',
    passedOver: {},
  },
];

describe('chooseCandidate', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const choice = chooseCandidate(c.databases, rules(c.rules));
      if (c.chosen === null) assert.equal(choice.kind, 'none');
      else {
        assert.equal(choice.kind, 'chosen');
        assert.equal(choice.kind === 'chosen' && choice.target, c.chosen);
      }
      const why = Object.fromEntries(choice.passedOver.map((r) => [r.name, r.why]));
      assert.deepEqual(Object.keys(why).sort(), Object.keys(c.passedOver).sort(), `passed over: ${JSON.stringify(why)}`);
      for (const [name, pattern] of Object.entries(c.passedOver)) assert.match(why[name]!, pattern, name);
    });
  }

  test('the winner carries its lag (recorded in the history)', () => {
    const choice = chooseCandidate([db('primary', 0), db('secondary1', 1, { lagSeconds: 2.5 })], rules());
    assert.equal(choice.kind === 'chosen' ? choice.lagSeconds : null, 2.5);
  });
});

describe('describeRejections', () => {
  test('one clause per database, in priority order', () => {
    const choice = chooseCandidate([db('primary', 0), db('s2', 2, { enabled: false }), db('s1', 1, { up: false })], rules());
    assert.equal(describeRejections(choice.passedOver), 's1: down; s2: disabled');
  });
  test('nothing to pass over: no secondary is configured', () => {
    assert.equal(describeRejections([]), 'no secondary is configured');
  });
});
