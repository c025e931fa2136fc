import test from 'node:test';
import assert from 'node:assert/strict';
import { parseLine, buildLine, unescapeTagValue, escapeTagValue, parsePrefix, fold, splitText, utf8Length, saslPlainChunks, base64UTF8, parseCTCP, parseTime } from '../static/js/irc.js';

test('parseLine: tags, prefix, params, trailing', () => {
  const m = parseLine('@time=2026-12-02T06:53:34.389Z;msgid=abc;account=alice :alice!x@127.0.0.1 PRIVMSG #lobby :hello there :)\r\n');
  assert.equal(m.tags.time, '2026-12-02T06:53:34.389Z');
  assert.equal(m.tags.msgid, 'abc');
  assert.equal(m.prefix, 'alice!x@127.0.0.1');
  assert.equal(m.nick, 'alice');
  assert.equal(m.user, 'x');
  assert.equal(m.host, '127.0.0.1');
  assert.equal(m.command, 'PRIVMSG');
  assert.deepEqual(m.params, ['#lobby', 'hello there :)']);
});

test('parseLine: no prefix, no trailing, numerics, empty trailing', () => {
  assert.deepEqual(parseLine('PING :tok').params, ['tok']);
  const n = parseLine(':irc.lobby.local 353 alice = #lobby :alice bob');
  assert.equal(n.command, '353');
  assert.ok(n.isServer);
  assert.deepEqual(n.params, ['alice', '=', '#lobby', 'alice bob']);
  assert.deepEqual(parseLine(':a!b@c AWAY :').params, ['']);
  assert.deepEqual(parseLine(':a!b@c AWAY').params, []);
  assert.deepEqual(parseLine('CAP  *   LS   :a b').params, ['*', 'LS', 'a b']);
  assert.equal(parseLine(''), null);
  assert.equal(parseLine('privmsg x y').command, 'PRIVMSG');
});

test('tag escapes', () => {
  assert.equal(unescapeTagValue('a\\sb\\:c\\\\d\\re\\nf'), 'a b;c\\d\re\nf');
  assert.equal(unescapeTagValue('x\\qy'), 'xqy');
  assert.equal(unescapeTagValue('trailing\\'), 'trailing');
  const v = 'semi;colon space\\back\r\n';
  assert.equal(unescapeTagValue(escapeTagValue(v)), v);
  const m = parseLine('@a=1\\s2;b;c= :n!u@h TAGMSG #x');
  assert.deepEqual(m.tags, { a: '1 2', b: '', c: '' });
});

test('parsePrefix', () => {
  assert.deepEqual(parsePrefix('irc.example.com'), { nick: 'irc.example.com', user: '', host: '', isServer: true });
  assert.equal(parsePrefix('nick@host').nick, 'nick');
  assert.equal(parsePrefix('nick@host').host, 'host');
  assert.equal(parsePrefix('bob').isServer, false);
});

test('buildLine', () => {
  assert.equal(buildLine('PRIVMSG', '#lobby', 'hi there'), 'PRIVMSG #lobby :hi there');
  assert.equal(buildLine('PRIVMSG', 'bob', 'hi'), 'PRIVMSG bob hi');
  assert.equal(buildLine('PRIVMSG', 'bob', ':)'), 'PRIVMSG bob ::)');
  assert.equal(buildLine('AWAY', ''), 'AWAY :');
  assert.equal(buildLine('AWAY'), 'AWAY');
  assert.equal(buildLine('PRIVMSG', 'bob', 'a\r\nQUIT :x'), 'PRIVMSG bob :a  QUIT :x');
});

test('fold is ASCII only', () => {
  assert.equal(fold('AlIcE[]'), 'alice[]');
  assert.equal(fold('ÉLAN'), 'Élan');
});

test('splitText keeps pieces under the byte limit and characters whole', () => {
  const long = 'word '.repeat(200).trim();
  const parts = splitText(long, 100);
  assert.ok(parts.length > 1);
  for (const p of parts) assert.ok(utf8Length(p) <= 100, p);
  assert.equal(parts.join(' '), long);
  const emoji = '😀'.repeat(60); // 4 bytes each
  const ep = splitText(emoji, 50);
  for (const p of ep) {
    assert.ok(utf8Length(p) <= 50);
    assert.ok(!/[\uD800-\uDBFF]$/.test(p), 'no half surrogate');
  }
  assert.equal(ep.join(''), emoji);
  assert.deepEqual(splitText('short', 100), ['short']);
});

test('SASL PLAIN payload is UTF-8 base64, chunked at 400', () => {
  assert.deepEqual(saslPlainChunks('alice', 'alicepw'), [Buffer.from('alice\0alice\0alicepw').toString('base64')]);
  assert.equal(base64UTF8('pässwörd✓'), Buffer.from('pässwörd✓', 'utf8').toString('base64'));
  const long = saslPlainChunks('a', 'x'.repeat(600));
  assert.equal(long[0].length, 400);
  assert.equal(long.join(''), Buffer.from('a\0a\0' + 'x'.repeat(600)).toString('base64'));
  // 300 bytes of payload = exactly 400 base64 characters: a "+" follows.
  const exact = saslPlainChunks('ab', 'y'.repeat(294));
  assert.deepEqual(exact.map((c) => c.length), [400, 1]);
  assert.equal(exact[1], '+');
});

test('parseCTCP and parseTime', () => {
  assert.deepEqual(parseCTCP('\x01ACTION waves\x01'), { verb: 'ACTION', arg: 'waves' });
  assert.deepEqual(parseCTCP('\x01VERSION\x01'), { verb: 'VERSION', arg: '' });
  assert.equal(parseCTCP('plain'), null);
  assert.equal(parseTime('2026-12-02T06:53:34.389Z').toISOString(), '2026-12-02T06:53:34.389Z');
  assert.equal(parseTime('nonsense'), null);
  assert.equal(parseTime(undefined), null);
});
