import test from 'node:test';
import assert from 'node:assert/strict';
import { completeNick, InputHistory } from '../static/js/complete.js';
import { dayKey, dayLabel, hhmm } from '../static/js/time.js';

test('completeNick at line start adds ": " and cycles', () => {
  const nicks = ['bob', 'Bobby', 'carol'];
  const r1 = completeNick('bo', 2, nicks, null);
  assert.equal(r1.text, 'bob: ');
  assert.equal(r1.cursor, 5);
  const r2 = completeNick(r1.text, r1.cursor, nicks, r1.state);
  assert.equal(r2.text, 'Bobby: ');
  const r3 = completeNick(r2.text, r2.cursor, nicks, r2.state);
  assert.equal(r3.text, 'bob: ');
});

test('completeNick mid-line and before other text', () => {
  const r = completeNick('hi ca how', 5, ['carol'], null);
  assert.equal(r.text, 'hi carol how');
  assert.equal(r.cursor, 9);
  assert.equal(completeNick('hi @ca', 6, ['carol'], null).text, 'hi @carol ');
  assert.equal(completeNick('zz', 2, ['carol'], null), null);
});

test('InputHistory walks and keeps the draft', () => {
  const h = new InputHistory(3);
  h.push('one');
  h.push('two');
  h.push('two');
  assert.equal(h.up('draft'), 'two');
  assert.equal(h.up('two'), 'one');
  assert.equal(h.up('one'), null);
  assert.equal(h.down(), 'two');
  assert.equal(h.down(), 'draft');
  assert.equal(h.down(), null);
  h.push('3');
  h.push('4');
  assert.deepEqual(h.items, ['two', '3', '4']);
});

test('time helpers', () => {
  const d = new Date(2026, 11, 2, 7, 5);
  assert.equal(hhmm(d), '07:05');
  assert.equal(dayKey(d), '2026-12-02');
  assert.equal(dayLabel(d, new Date(2026, 11, 2, 23, 0)), 'Today');
  assert.equal(dayLabel(d, new Date(2026, 11, 3, 1, 0)), 'Yesterday');
  assert.match(dayLabel(d, new Date(2026, 11, 20), 'en-US'), /December/);
  assert.match(dayLabel(d, new Date(2027, 1, 1), 'en-US'), /2026/);
});
