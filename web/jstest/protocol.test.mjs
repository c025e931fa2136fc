import test from 'node:test';
import assert from 'node:assert/strict';
import { classifyError, parseWhoNotice, nickFromMask, parseInput } from '../static/js/protocol.js';

test('classifyError: the server texts', () => {
  const wrong = classifyError('Closing link: Unauthorized (bad account or password)');
  assert.equal(wrong.kind, 'auth');
  assert.equal(wrong.retry, false);
  assert.match(wrong.message, /wrong name or password/i);

  const lock = classifyError('Closing link: Unauthorized (too many failed logins, retry in 57s)');
  assert.equal(lock.kind, 'lockout');
  assert.equal(lock.retryIn, 57);
  assert.match(lock.message, /retry in 57 s/i);

  const addr = classifyError('Closing link: Unauthorized (too many failed logins from your address, retry in 599s)');
  assert.equal(addr.kind, 'lockout');
  assert.match(addr.message, /from your address/);
  assert.match(addr.message, /retry in 599 s/i);

  // The 904 text carries the same news.
  assert.match(classifyError('SASL authentication failed: too many failed logins, retry in 3s').message, /retry in 3 s/i);
  assert.equal(classifyError('SASL authentication failed').kind, 'auth');

  const dup = classifyError('Closing link: account alice is already logged in');
  assert.equal(dup.kind, 'duplicate');
  assert.equal(dup.retry, false);
  assert.match(dup.message, /already logged in/i);

  const rep = classifyError('Closing link: Logged in from elsewhere');
  assert.equal(rep.kind, 'replaced');
  assert.equal(rep.retry, false);
  assert.match(rep.message, /logged in from elsewhere/i);

  assert.equal(classifyError('Closing link: Unauthorized (account removed)').retry, false);
  assert.equal(classifyError('Closing link: Quit: bye').retry, false);
  for (const t of ['Closing link: Ping timeout', 'Closing link: Service temporarily unavailable, please try again later', 'Closing link: SendQ exceeded', '']) {
    assert.equal(classifyError(t).retry, true, t);
  }
});

test('parseWhoNotice: WHOELSE', () => {
  assert.deepEqual(parseWhoNotice('Online: bob carol'), { list: 'whoelse', items: [{ nick: 'bob', detail: 'online' }, { nick: 'carol', detail: 'online' }] });
  assert.deepEqual(parseWhoNotice('2 other users online'), { end: 'whoelse', count: 2 });
  assert.deepEqual(parseWhoNotice('1 other user online'), { end: 'whoelse', count: 1 });
  assert.deepEqual(parseWhoNotice('0 other users online'), { end: 'whoelse', count: 0 });
});

test('parseWhoNotice: WHOLASTHR', () => {
  const r = parseWhoNotice('Last hour: bob (online now), carol (left 14:03 UTC, 5m ago), dave (left 14:10 UTC, 30s ago)');
  assert.equal(r.list, 'wholasthr');
  assert.deepEqual(r.items, [
    { nick: 'bob', detail: 'online now' },
    { nick: 'carol', detail: 'left 14:03 UTC, 5m ago' },
    { nick: 'dave', detail: 'left 14:10 UTC, 30s ago' },
  ]);
  assert.deepEqual(parseWhoNotice('3 other users connected in the last hour'), { end: 'wholasthr', count: 3, window: 'hour' });
  assert.equal(parseWhoNotice('Last 2 hours: x (online now)').window, '2 hours');
  assert.equal(parseWhoNotice('Blocked bob!*@*: their private messages are hidden'), null);
});

test('nickFromMask', () => {
  assert.equal(nickFromMask('carol!*@*'), 'carol');
  assert.equal(nickFromMask('*!*@host'), null);
  assert.equal(nickFromMask('ca*!*@*'), null);
});

test('parseInput: text and commands', () => {
  assert.deepEqual(parseInput('hello'), { type: 'say', text: 'hello' });
  assert.deepEqual(parseInput('//not a command'), { type: 'say', text: '/not a command' });
  assert.deepEqual(parseInput('   '), { type: 'none' });
  assert.deepEqual(parseInput('/me waves hello'), { type: 'action', text: 'waves hello' });
  assert.deepEqual(parseInput('/msg bob hi  there'), { type: 'msg', target: 'bob', text: 'hi  there' });
  assert.equal(parseInput('/msg bob').type, 'error');
  assert.deepEqual(parseInput('/query bob'), { type: 'query', target: 'bob', text: '' });
  assert.deepEqual(parseInput('/quote PRIVMSG bob :x'), { type: 'raw', line: 'PRIVMSG bob :x' });
  assert.deepEqual(parseInput('/block carol'), { type: 'block', target: 'carol' });
  assert.deepEqual(parseInput('/unblock carol'), { type: 'unblock', target: 'carol' });
  assert.deepEqual(parseInput('/away lunch break'), { type: 'away', text: 'lunch break' });
  assert.deepEqual(parseInput('/away'), { type: 'away', text: '' });
  assert.deepEqual(parseInput('/back'), { type: 'away', text: '' });
  for (const c of ['whoelse', 'wholasthr', 'close', 'logout', 'help']) assert.deepEqual(parseInput('/' + c.toUpperCase()), { type: c });
  assert.equal(parseInput('/frobnicate').type, 'error');
});
