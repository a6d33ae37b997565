import assert from 'node:assert/strict';
import { test } from 'node:test';
import { printable } from '../../src/cli/format.js';

test('printable: controls, DEL, C1, line separators and bidi overrides become escapes; letters of any script stay', () => {
  assert.equal(printable('维护升级 café ok'), '维护升级 café ok');
  assert.equal(printable('a\nb\r\tc'), 'a\\nb\\r\\tc');
  assert.equal(printable('\x1b[2J\x1b]0;title\x07'), '\\u001b[2J\\u001b]0;title\\u0007');
  assert.equal(printable('x\x7f\x9by\u2028\u202e\u2066'), 'x\\u007f\\u009by\\u2028\\u202e\\u2066');
  assert.equal(printable('line1\nline2').includes('\n'), false);
});
