import test from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from '../static/js/conn.js';

// FakeWS stands in for the browser's WebSocket: the test plays the server.
class FakeWS {
  static OPEN = 1;
  static last = null;
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeWS.last = this;
  }
  send(line) {
    this.sent.push(line);
  }
  close() {
    this.readyState = 3;
    queueMicrotask(() => this.onclose && this.onclose({}));
  }
  open() {
    this.readyState = 1;
    this.onopen();
  }
  recv(...lines) {
    for (const l of lines) this.onmessage({ data: l });
  }
}
globalThis.WebSocket = FakeWS;

function start(account = 'alice', password = 'alicepw') {
  const events = { lines: [], registered: null, closed: null };
  const c = new Connection('ws://x/irc', account, password, {
    onLine: (m) => events.lines.push(m),
    onRegistered: (nick, caps) => (events.registered = { nick, caps: [...caps] }),
    onClose: (r) => (events.closed = r),
  });
  c.start();
  const ws = FakeWS.last;
  ws.open();
  return { c, ws, events };
}

const stop = (c) => {
  clearTimeout(c.regTimer);
  clearInterval(c.keepalive);
};

test('login: CAP, SASL PLAIN, registration', async () => {
  const { c, ws, events } = start();
  assert.deepEqual(ws.protocols, ['text.ircv3.net']);
  assert.deepEqual(ws.sent, ['CAP LS 302']);
  ws.recv(':irc.test CAP * LS * :account-tag away-notify batch', ':irc.test CAP * LS :echo-message sasl=PLAIN server-time message-tags draft/chathistory');
  assert.equal(ws.sent[1], 'CAP REQ :sasl server-time message-tags echo-message away-notify batch draft/chathistory account-tag');
  ws.recv(':irc.test CAP * ACK :sasl server-time message-tags echo-message away-notify batch draft/chathistory account-tag');
  assert.equal(ws.sent[2], 'AUTHENTICATE PLAIN');
  ws.recv('AUTHENTICATE +');
  assert.equal(ws.sent[3], 'AUTHENTICATE ' + Buffer.from('alice\0alice\0alicepw').toString('base64'));
  ws.recv(':irc.test 900 * alice!alice@h alice :You are now logged in as alice', ':irc.test 903 * :SASL authentication successful');
  assert.deepEqual(ws.sent.slice(4), ['CAP END', 'NICK alice', 'USER alice 0 * alice']);
  ws.recv('PING :tok');
  assert.equal(ws.sent.at(-1), 'PONG tok');
  ws.recv(':irc.test 001 alice :Welcome');
  assert.equal(events.registered.nick, 'alice');
  assert.ok(events.registered.caps.includes('echo-message'));
  assert.equal(c.password, '', 'the connection forgets the password once in');
  ws.recv(':bob!b@h PRIVMSG #lobby :hi');
  assert.equal(events.lines.at(-1).command, 'PRIVMSG');
  ws.recv('ERROR :Closing link: Logged in from elsewhere');
  ws.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(events.closed.registered, true);
  assert.equal(events.closed.error.kind, 'replaced');
  assert.equal(events.closed.error.retry, false);
  stop(c);
});

test('a refused login reports why and does not retry', async () => {
  const { c, ws, events } = start('alice', 'wrong');
  ws.recv(':irc.test CAP * LS :sasl server-time');
  ws.recv(':irc.test CAP * ACK :sasl server-time');
  ws.recv('AUTHENTICATE +');
  ws.recv(':irc.test 904 * :SASL authentication failed: too many failed logins, retry in 42s');
  assert.deepEqual(ws.sent.slice(-3), ['CAP END', 'NICK alice', 'USER alice 0 * alice']);
  // The server closes without an ERROR: the 904 text is enough.
  ws.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(events.registered, null);
  assert.equal(events.closed.error.kind, 'lockout');
  assert.equal(events.closed.error.retryIn, 42);
  assert.equal(events.closed.error.retry, false);
  stop(c);
});

test('a dropped connection may be retried; a quit may not', async () => {
  const a = start();
  a.ws.recv(':irc.test CAP * LS :sasl', ':irc.test CAP * ACK :sasl', 'AUTHENTICATE +', ':irc.test 903 * :ok', ':irc.test 001 alice :Welcome');
  a.ws.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.events.closed.error.retry, true);
  stop(a.c);

  const b = start();
  b.ws.recv(':irc.test CAP * LS :sasl', ':irc.test CAP * ACK :sasl', 'AUTHENTICATE +', ':irc.test 903 * :ok', ':irc.test 001 alice :Welcome');
  b.c.quit('bye');
  assert.equal(b.ws.sent.at(-1), 'QUIT bye');
  b.ws.recv('ERROR :Closing link: Quit: bye');
  b.ws.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(b.events.closed.error.kind, 'quit');
  assert.equal(b.events.closed.error.retry, false);
  stop(b.c);
});
