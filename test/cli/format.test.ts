import assert from 'node:assert/strict';
import { test } from 'node:test';
import { displayWidth, printable, table } from '../../src/cli/format.js';

test('printable: controls, DEL, C1, line separators and bidi overrides become escapes; letters of any script stay', () => {
  assert.equal(printable('维护升级 café ok'), '维护升级 café ok');
  assert.equal(printable('a\nb\r\tc'), 'a\\nb\\r\\tc');
  assert.equal(printable('\x1b[2J\x1b]0;title\x07'), '\\u001b[2J\\u001b]0;title\\u0007');
  assert.equal(printable('x\x7f\x9by\u2028\u202e\u2066'), 'x\\u007f\\u009by\\u2028\\u202e\\u2066');
  assert.equal(printable('line1\nline2').includes('\n'), false);
});

test('table: columns line up on a terminal with Chinese names (two columns per character)', () => {
  assert.equal(displayWidth('主库'), 4);
  assert.equal(displayWidth('primary'), 7);
  const text = table(['DATABASE', 'STATUS'], [['主库 *', 'up'], ['secondary1', 'down']]);
  assert.deepEqual(text.split('\n'), ['DATABASE    STATUS', '主库 *      up', 'secondary1  down']);
  for (const line of text.split('\n')) assert.equal(displayWidth(line.slice(0, line.lastIndexOf('  ') + 2)), 12, line);
});
