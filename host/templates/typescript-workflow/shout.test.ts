import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shout } from './shout.js';

test('shout names the workflow', () => {
  assert.equal(shout('Hello, Ada!'), 'Hello, Ada! (from {{name}})');
});
