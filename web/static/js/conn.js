// One IRC connection over WebSocket: capability negotiation, SASL PLAIN,
// PING/PONG and a keepalive. It knows nothing of the page; the page gets
// events through the handlers given to the constructor.

import { buildLine, parseLine, saslPlainChunks } from './irc.js';
import { classifyError } from './protocol.js';

export const WANTED_CAPS = ['sasl', 'server-time', 'message-tags', 'echo-message', 'away-notify', 'batch', 'draft/chathistory', 'account-tag', 'cap-notify'];

const REGISTER_TIMEOUT_MS = 30000;
const IDLE_PING_MS = 60000; // quiet this long: ask the server something
const PING_TIMEOUT_MS = 30000; // no answer this long: the link is dead

export class Connection {
  // handlers: onLine(msg), onRegistered(nick, caps), onClose(result)
  // where result is {registered, error: classifyError(...)}.
  constructor(url, account, password, handlers) {
    this.url = url;
    this.account = account;
    this.password = password;
    this.h = handlers;
    this.caps = new Set();
    this.offered = [];
    this.registered = false;
    this.errorText = '';
    this.saslFail = '';
    this.quitting = false;
    this.closed = false;
  }

  start() {
    let ws;
    try {
      ws = new WebSocket(this.url, ['text.ircv3.net']);
    } catch (e) {
      queueMicrotask(() => this.finish());
      return;
    }
    this.ws = ws;
    this.lastRx = Date.now();
    ws.onopen = () => {
      this.send('CAP LS 302');
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      this.lastRx = Date.now();
      this.pingSent = 0;
      // One line per message, but tolerate a sender that batches lines.
      for (const raw of ev.data.split(/\r?\n/)) {
        const msg = parseLine(raw);
        if (msg) this.handle(msg);
      }
    };
    ws.onclose = () => this.finish();
    ws.onerror = () => {}; // onclose follows with what we need
    this.regTimer = setTimeout(() => {
      if (!this.registered) this.abort();
    }, REGISTER_TIMEOUT_MS);
    this.keepalive = setInterval(() => this.tick(), 5000);
  }

  tick() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (this.pingSent && now - this.pingSent > PING_TIMEOUT_MS) {
      this.abort();
    } else if (!this.pingSent && now - this.lastRx > IDLE_PING_MS) {
      this.pingSent = now;
      this.send('PING :keepalive');
    }
  }

  send(line) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(line);
      return true;
    }
    return false;
  }

  // quit ends the session on purpose: no reconnect follows.
  quit(reason) {
    this.quitting = true;
    if (!this.send(buildLine('QUIT', reason))) this.abort();
    // The server closes after its ERROR; do not wait on a dead link.
    setTimeout(() => this.abort(), 2000);
  }

  abort() {
    if (this.ws) {
      try {
        this.ws.close();
      } catch {
        /* already closing */
      }
    }
    // A socket that never opened may not fire onclose soon; finish anyway.
    setTimeout(() => this.finish(), 1000);
  }

  finish() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.regTimer);
    clearInterval(this.keepalive);
    if (this.ws) this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
    this.password = '';
    let error;
    if (this.quitting) error = { kind: 'quit', retry: false, message: 'Signed out.' };
    else if (this.errorText) error = classifyError(this.errorText);
    else if (this.saslFail) error = classifyError(this.saslFail);
    else error = { kind: 'other', retry: true, message: this.registered ? 'Connection lost.' : 'Could not reach the server.', network: true };
    this.h.onClose({ registered: this.registered, error });
  }

  handle(msg) {
    const p = msg.params;
    switch (msg.command) {
      case 'PING':
        this.send(buildLine('PONG', ...p));
        return;
      case 'ERROR':
        this.errorText = p[0] || '';
        break;
      case 'CAP':
        if (this.capMessage(p)) return;
        break;
      case 'AUTHENTICATE':
        if (p[0] === '+') {
          for (const chunk of saslPlainChunks(this.account, this.password)) this.send('AUTHENTICATE ' + chunk);
        }
        return;
      case '903':
        this.endRegistration();
        return;
      case '904':
      case '905':
        // The server closes with the full reason once registration ends.
        this.saslFail = p[p.length - 1] || 'SASL authentication failed';
        this.endRegistration();
        return;
      case '001':
        this.registered = true;
        clearTimeout(this.regTimer);
        this.password = ''; // the page keeps it for reconnecting, not us
        this.h.onRegistered(p[0], this.caps, msg);
        return;
    }
    this.h.onLine(msg);
  }

  endRegistration() {
    if (this.endSent) return;
    this.endSent = true;
    this.send('CAP END');
    this.send(buildLine('NICK', this.account));
    this.send(buildLine('USER', this.account, '0', '*', this.account));
  }

  // capMessage handles CAP LS/ACK/NAK/NEW/DEL; true when consumed.
  capMessage(p) {
    const sub = (p[1] || '').toUpperCase();
    const more = p[2] === '*';
    const list = (p[more ? 3 : 2] || '').split(' ').filter(Boolean);
    switch (sub) {
      case 'LS': {
        this.offered.push(...list.map((c) => c.split('=')[0]));
        if (more) return true;
        const req = WANTED_CAPS.filter((c) => this.offered.includes(c));
        if (!req.includes('sasl')) {
          this.saslFail = 'The server does not offer SASL login.';
          this.endRegistration();
          return true;
        }
        this.send('CAP REQ :' + req.join(' '));
        return true;
      }
      case 'ACK':
        for (const c of list) {
          if (c.startsWith('-')) this.caps.delete(c.slice(1));
          else this.caps.add(c);
        }
        if (!this.registered && !this.saslStarted && this.caps.has('sasl')) {
          this.saslStarted = true;
          this.send('AUTHENTICATE PLAIN');
        }
        return true;
      case 'NAK':
        // Some cap was refused: ask for SASL alone, which we need.
        if (!this.registered && !this.caps.has('sasl')) {
          if (list.length === 1 && list[0] === 'sasl') {
            this.saslFail = 'The server refused SASL login.';
            this.endRegistration();
          } else this.send('CAP REQ :sasl');
        }
        return true;
      case 'NEW': {
        const req = WANTED_CAPS.filter((c) => c !== 'sasl' && list.some((l) => l.split('=')[0] === c));
        if (req.length) this.send('CAP REQ :' + req.join(' '));
        return true;
      }
      case 'DEL':
        for (const c of list) this.caps.delete(c);
        return true;
    }
    return true;
  }
}
