import test from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, BASE_MS, MAX_MS } from '../static/js/backoff.js';

test('backoff doubles, with the jitter within half a step', () => {
  for (let a = 0; a < 10; a++) {
    const step = Math.min(MAX_MS, BASE_MS * 2 ** a);
    assert.equal(backoffDelay(a, { random: () => 0 }), step / 2);
    assert.equal(backoffDelay(a, { random: () => 0.999999 }), Math.round(step / 2 + 0.999999 * (step / 2)));
    const d = backoffDelay(a);
    assert.ok(d >= step / 2 && d <= step, `attempt ${a}: ${d}`);
  }
});

test('backoff is capped and takes odd input', () => {
  assert.equal(backoffDelay(1000, { random: () => 1 }), MAX_MS);
  assert.equal(backoffDelay(-5, { random: () => 0 }), BASE_MS / 2);
  assert.equal(backoffDelay(3, { base: 100, max: 500, random: () => 1 }), 500);
});

test('jitter spreads clients', () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(4));
  assert.ok(seen.size > 10);
});
