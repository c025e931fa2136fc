// The chat page: login, conversations, people, blocks. All user text
// reaches the DOM through textContent; links are built as elements.

import { Connection } from './conn.js';
import { buildLine, fold, isChannel, parseCTCP, parseTime, splitText } from './irc.js';
import { mentions, parseFormatting, splitLinks, stripFormatting, styleClasses } from './format.js';
import { backoffDelay } from './backoff.js';
import { nickFromMask, parseInput, parseWhoNotice } from './protocol.js';
import { completeNick, InputHistory } from './complete.js';
import { dayKey, dayLabel, hhmm } from './time.js';

const LOBBY = '#lobby';
const MAX_LINES = 2000; // per conversation; older lines are dropped
const TEXT_BYTES = 400; // of a PRIVMSG's text, leaving room for the prefix

const $ = (sel) => document.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const ui = {
  login: $('#login'),
  nick: $('#nick'),
  password: $('#password'),
  loginError: $('#login-error'),
  loginSubmit: $('#login-submit'),
  status: $('#status'),
  chat: $('#chat'),
  tabs: $('#tabs'),
  logs: $('#logs'),
  convName: $('#conv-name'),
  convTopic: $('#conv-topic'),
  closeConv: $('#btn-close-conv'),
  send: $('#send'),
  input: $('#input'),
  nicklist: $('#nicklist'),
  memberCount: $('#member-count'),
  memberCountBtn: $('#member-count-btn'),
  blocks: $('#blocks'),
  sidebar: $('#sidebar'),
  backdrop: $('#backdrop'),
  membersBtn: $('#btn-members'),
  awayBtn: $('#btn-away'),
  whoPanel: $('#who-panel'),
  whoTitle: $('#who-title'),
  whoSummary: $('#who-summary'),
  whoList: $('#who-list'),
  themeToggle: $('#theme-toggle'),
  reconnectNow: $('#reconnect-now'),
};

const state = {
  conn: null,
  nick: '',
  account: '', // whose conversations are on the page
  serverName: '',
  caps: new Set(),
  online: false, // registered on the current connection
  attempt: 0,
  reconnectAt: 0,
  reconnectTimer: 0,
  countdownTimer: 0,
  convs: new Map(), // fold(target) -> conversation
  active: fold(LOBBY),
  members: new Map(), // fold(nick) -> {nick, away}
  pendingNames: null,
  blocks: [], // masks
  pendingBlocks: null,
  batches: new Map(), // id -> {type, target, added}
  historyAsked: [], // per CHATHISTORY sent, in order: null or an older-lines request
  who: null, // {kind, items}
  away: false,
  topic: '',
  seen: new Set(), // msgids shown anywhere
  complete: null,
  history: new InputHistory(),
};
window.lobby = { state };

// The login, kept for reconnecting: in memory only, and outside state so
// that window.lobby does not show the password.
let creds = null;

// ---------- theme ----------

const THEMES = ['auto', 'dark', 'light'];
function applyTheme(t) {
  if (t === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
  const label = 'Colour theme: ' + (t === 'auto' ? 'automatic' : t);
  ui.themeToggle.setAttribute('aria-label', label);
  ui.themeToggle.title = label;
  ui.themeToggle.textContent = t === 'dark' ? '☾' : t === 'light' ? '☀' : '◐';
}
function storedTheme() {
  try {
    const t = localStorage.getItem('lobby.theme');
    return THEMES.includes(t) ? t : 'auto';
  } catch {
    return 'auto';
  }
}
applyTheme(storedTheme());
ui.themeToggle.addEventListener('click', () => {
  const next = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
  try {
    localStorage.setItem('lobby.theme', next);
  } catch {
    /* private mode: the choice lasts this page only */
  }
  applyTheme(next);
});

// ---------- status ----------

function setStatus(text, kind) {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind || '';
  ui.reconnectNow.hidden = kind !== 'warn';
}

// ---------- conversations ----------

let logSeq = 0;

function nickColour(nick) {
  let h = 0;
  for (const c of fold(nick)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 'nick-c' + (h % 8);
}

function getConv(target, create = true) {
  const key = fold(target);
  let conv = state.convs.get(key);
  if (conv || !create) return conv;
  const isLobby = isChannel(target);
  const id = 'log-' + ++logSeq;
  const tab = el('button', 'tab');
  tab.type = 'button';
  tab.setAttribute('role', 'tab');
  tab.dataset.target = target;
  tab.setAttribute('aria-selected', 'false');
  tab.setAttribute('aria-controls', id);
  tab.tabIndex = -1;
  const label = el('span', 'tab-label', target);
  if (!isLobby) {
    const dot = el('span', 'presence');
    dot.setAttribute('aria-hidden', 'true');
    tab.append(dot);
  }
  const unread = el('span', 'unread');
  tab.append(label, unread);
  const log = el('div', 'log');
  log.id = id;
  log.setAttribute('role', 'log');
  log.setAttribute('aria-live', 'polite');
  log.setAttribute('aria-label', isLobby ? 'Messages in ' + target : 'Conversation with ' + target);
  log.dataset.target = target;
  log.tabIndex = 0;
  log.hidden = true;
  conv = { key, target, isLobby, tab, unreadEl: unread, log, unread: 0, mentions: 0, lastDay: '', stick: true, awayNote: '' };
  log.addEventListener('scroll', () => {
    conv.stick = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    if (log.scrollTop < 64) loadOlder(conv);
  });
  tab.addEventListener('click', () => activate(key));
  state.convs.set(key, conv);
  ui.tabs.append(tab);
  ui.logs.append(log);
  updatePresence(conv);
  if (state.convs.size === 1 || key === state.active) activate(key);
  return conv;
}

function updatePresence(conv) {
  if (conv.isLobby) return;
  const m = state.members.get(conv.key);
  conv.tab.classList.toggle('offline', !m);
  conv.tab.classList.toggle('away', !!(m && m.away));
  if (m && m.nick !== conv.target) renameConv(conv, m.nick);
}

function renameConv(conv, nick) {
  conv.target = nick;
  conv.tab.dataset.target = nick;
  conv.log.dataset.target = nick;
  conv.tab.querySelector('.tab-label').textContent = nick;
  if (conv.key === state.active) updateHeader();
}

function activate(key, { focus = false } = {}) {
  const conv = state.convs.get(key);
  if (!conv) return;
  state.active = key;
  for (const c of state.convs.values()) {
    const on = c === conv;
    c.tab.setAttribute('aria-selected', on ? 'true' : 'false');
    c.tab.tabIndex = on ? 0 : -1;
    c.tab.classList.toggle('active', on);
    c.log.hidden = !on;
  }
  if (conv.stick) conv.log.scrollTop = conv.log.scrollHeight;
  if (conv.unread) {
    // Unread lines above the fold: start at the marker instead.
    const marker = conv.log.querySelector('.new-marker');
    if (marker) marker.scrollIntoView({ block: 'nearest' });
  }
  conv.tab.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  markRead(conv);
  updateHeader();
  state.complete = null;
  if (focus) ui.input.focus();
}

function markRead(conv) {
  if (document.hidden || conv.key !== state.active) return;
  conv.unread = 0;
  conv.mentions = 0;
  renderUnread(conv);
}

function renderUnread(conv) {
  conv.unreadEl.textContent = conv.unread ? String(conv.unread) : '';
  conv.tab.classList.toggle('has-unread', conv.unread > 0);
  conv.tab.classList.toggle('has-mention', conv.mentions > 0);
  const label = conv.target + (conv.unread ? `, ${conv.unread} unread` : '');
  conv.tab.setAttribute('aria-label', label);
  updateTitle();
}

function updateTitle() {
  let n = 0;
  for (const c of state.convs.values()) n += c.mentions;
  const conv = state.convs.get(state.active);
  const where = conv && state.online ? conv.target + ' · ' : '';
  document.title = (n ? `(${n}) ` : '') + where + 'Lobby';
}

function updateHeader() {
  const conv = state.convs.get(state.active);
  if (!conv) return;
  ui.convName.textContent = conv.target;
  if (conv.isLobby) {
    ui.convTopic.textContent = state.topic;
  } else {
    const m = state.members.get(conv.key);
    ui.convTopic.textContent = !m ? 'Offline: messages are delivered when they log in' : m.away ? 'Away' + (m.awayText ? ': ' + m.awayText : '') : 'Online';
  }
  ui.closeConv.hidden = conv.isLobby;
  ui.input.placeholder = 'Message ' + conv.target;
  updateTitle();
}

function closeConv(key) {
  const conv = state.convs.get(key);
  if (!conv || conv.isLobby) return;
  const tabs = [...state.convs.keys()];
  const i = tabs.indexOf(key);
  conv.tab.remove();
  conv.log.remove();
  state.convs.delete(key);
  if (state.active === key) activate(tabs[i - 1] || fold(LOBBY), { focus: true });
  updateTitle();
}

function resetConversations() {
  for (const c of state.convs.values()) {
    c.tab.remove();
    c.log.remove();
  }
  state.convs.clear();
  state.seen.clear();
  state.members.clear();
  state.blocks = [];
  state.active = fold(LOBBY);
  state.topic = '';
  renderMembers();
  renderBlocks();
}

// ---------- lines ----------

function renderText(container, text) {
  for (const seg of parseFormatting(text)) {
    const cls = styleClasses(seg.style);
    for (const part of splitLinks(seg.text)) {
      let node;
      if (part.href) {
        node = el('a', cls.join(' '), part.text);
        node.href = part.href;
        node.target = '_blank';
        node.rel = 'noopener noreferrer';
      } else if (cls.length) {
        node = el('span', cls.join(' '), part.text);
      } else {
        node = document.createTextNode(part.text);
      }
      container.append(node);
    }
  }
}

function daySep(d) {
  const sep = el('div', 'day-sep');
  sep.setAttribute('role', 'separator');
  sep.dataset.day = dayKey(d);
  sep.append(el('span', '', dayLabel(d)));
  return sep;
}

// "Today" becomes "Yesterday" at midnight: relabel when the day turns.
let today = dayKey(new Date());
setInterval(() => {
  const now = new Date();
  if (dayKey(now) === today) return;
  today = dayKey(now);
  for (const sep of document.querySelectorAll('.day-sep')) {
    const [y, m, d] = sep.dataset.day.split('-').map(Number);
    sep.firstElementChild.textContent = dayLabel(new Date(y, m - 1, d), now);
  }
}, 60000);

// loadOlder asks for the lines before the oldest shown, when the reader
// scrolls to the top of the lobby.
function loadOlder(conv) {
  if (!conv.isLobby || conv.olderPending || conv.noOlder || !state.online || !state.caps.has('draft/chathistory')) return;
  const oldest = conv.log.querySelector('.line[data-msgid]');
  if (!oldest) return;
  conv.olderPending = true;
  state.historyAsked.push({ conv, height: conv.log.scrollHeight, top: conv.log.scrollTop });
  state.conn.send(buildLine('CHATHISTORY', 'BEFORE', conv.target, 'msgid=' + oldest.dataset.msgid, '50'));
}

// historyDone ends a chathistory batch: after an older-lines request,
// the view stays where the reader was.
function historyDone(batch) {
  const req = state.historyAsked.shift();
  if (!req) return;
  const { conv, height, top } = req;
  conv.olderPending = false;
  if (batch.added === 0) conv.noOlder = true; // the server has nothing older
  conv.log.scrollTop = top + (conv.log.scrollHeight - height);
}

// rebuildDays puts day separators back after a line landed out of order.
function rebuildDays(conv) {
  for (const s of conv.log.querySelectorAll('.day-sep')) s.remove();
  let last = '';
  for (const line of conv.log.querySelectorAll('.line')) {
    const d = new Date(Number(line.dataset.ts));
    if (dayKey(d) !== last) {
      last = dayKey(d);
      line.before(daySep(d));
    }
  }
  conv.lastDay = last;
}

// addLine shows a line in a conversation. opts: kind, from, text, time
// (Date), msgid, history (from CHATHISTORY: no unread, no alert), after
// (the line of the same history batch before this one).
function addLine(conv, { kind, from = '', text = '', time, msgid = '', history = false, after = null }) {
  if (msgid) {
    if (state.seen.has(msgid)) return null;
    state.seen.add(msgid);
  }
  const t = time || new Date();
  const self = from !== '' && fold(from) === fold(state.nick);
  const line = el('div', 'line kind-' + kind);
  line.dataset.from = from;
  if (msgid) line.dataset.msgid = msgid;
  line.dataset.kind = kind;
  line.dataset.ts = String(t.getTime());
  if (self) line.classList.add('self');
  const timeEl = el('time', 'ts', hhmm(t));
  timeEl.dateTime = t.toISOString();
  timeEl.title = t.toLocaleString();
  const nickEl = el('span', 'nick');
  const textEl = el('span', 'text');
  const chatty = kind === 'privmsg' || kind === 'action' || kind === 'notice';
  if (chatty) nickEl.title = from; // the column may cut a long nick
  if (kind === 'privmsg' || kind === 'notice') {
    nickEl.textContent = from;
    if (from) nickEl.classList.add(nickColour(from));
  } else if (kind === 'action') {
    nickEl.textContent = '* ' + from;
    if (from) nickEl.classList.add(nickColour(from));
  } else {
    nickEl.textContent = kind === 'join' ? '→' : kind === 'quit' ? '←' : '•';
    nickEl.setAttribute('aria-hidden', 'true');
  }
  if (kind === 'join' || kind === 'quit') {
    const who = el('span', 'who ' + nickColour(from), from);
    textEl.append(who, document.createTextNode(' ' + text));
  } else {
    renderText(textEl, text);
  }
  // History shows mentions too, but only live ones count and alert.
  const mentioned = chatty && !self && mentions(text, state.nick);
  const mention = mentioned && !history;
  if (mentioned) line.classList.add('mention');
  line.append(timeEl, nickEl, textEl);

  // Where: in time order. Live lines come in order; history and stored
  // messages may be older than what is shown.
  const log = conv.log;
  const lines = log.getElementsByClassName('line');
  const lastLine = lines[lines.length - 1];
  const wasStuck = conv.stick;
  const unseen = chatty && !self && !history && (document.hidden || conv.key !== state.active);
  const tms = t.getTime();
  const lastTs = lastLine ? Number(lastLine.dataset.ts) : -Infinity;
  // Lines of one millisecond keep their order: a history line goes
  // before shown lines of its time, the next of its batch after it.
  const later = (ts) => (history ? ts >= tms : ts > tms);
  if (after && after.parentNode === log) {
    after.after(line);
    rebuildDays(conv);
  } else if (!later(lastTs)) {
    if (dayKey(t) !== conv.lastDay) {
      log.append(daySep(t));
      conv.lastDay = dayKey(t);
    }
    if (unseen && conv.unread === 0) {
      // The marker moves to the first line not seen since the last visit.
      const old = log.querySelector('.new-marker');
      if (old) old.remove();
      const marker = el('div', 'new-marker');
      marker.setAttribute('role', 'separator');
      marker.append(el('span', '', 'New messages'));
      log.append(marker);
    }
    // A run of messages from one sender shows the name once.
    const prev = log.lastElementChild;
    if (kind === 'privmsg' && prev && prev.classList.contains('line') && prev.dataset.kind === 'privmsg' && prev.dataset.from === from && t.getTime() - Number(prev.dataset.ts) < 5 * 60000) {
      line.classList.add('cont');
    }
    log.append(line);
  } else {
    let before = null;
    for (let i = lines.length - 1; i >= 0; i--) {
      if (!later(Number(lines[i].dataset.ts))) break;
      before = lines[i];
    }
    // Keep a day separator or new-messages marker above the line it heads.
    let anchor = before;
    while (anchor.previousElementSibling && !anchor.previousElementSibling.classList.contains('line')) anchor = anchor.previousElementSibling;
    if (history) anchor.before(line);
    else before.before(line);
    rebuildDays(conv);
  }
  if (unseen) {
    conv.unread++;
    if (mention || !conv.isLobby) conv.mentions++;
    renderUnread(conv);
    if (document.hidden && (mention || !conv.isLobby)) notify(conv, from, text, kind);
  }
  while (!history && lines.length > MAX_LINES) {
    const first = lines[0];
    while (first.previousElementSibling) first.previousElementSibling.remove();
    first.remove();
  }
  if (wasStuck || (self && !history)) {
    log.scrollTop = log.scrollHeight;
    conv.stick = true;
  }
  return line;
}

function system(text, conv = state.convs.get(state.active) || getConv(LOBBY)) {
  return addLine(conv, { kind: 'system', from: '', text });
}

// ---------- notifications ----------

let lastNotify = 0;
function notify(conv, from, text, kind) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const now = Date.now();
  if (now - lastNotify < 1500) return; // a burst (stored messages) makes one
  lastNotify = now;
  const body = (kind === 'action' ? '* ' + from + ' ' : '') + stripFormatting(text);
  try {
    const n = new Notification(conv.isLobby ? `${from} in ${conv.target}` : `${from}`, { body: body.slice(0, 200), tag: 'lobby-' + conv.key, icon: 'favicon.svg' });
    n.onclick = () => {
      window.focus();
      activate(conv.key, { focus: true });
      n.close();
    };
  } catch {
    /* some browsers allow notifications only from a service worker */
  }
}

// ---------- people ----------

function renderMembers() {
  const list = [...state.members.values()].sort((a, b) => fold(a.nick).localeCompare(fold(b.nick)));
  const frag = document.createDocumentFragment();
  const blocked = new Set(state.blocks.map((m) => nickFromMask(m)).filter(Boolean));
  for (const m of list) {
    const li = el('li', 'member');
    li.dataset.nick = m.nick;
    const self = fold(m.nick) === fold(state.nick);
    if (m.away) li.classList.add('away');
    if (self) li.classList.add('self');
    const open = el('button', 'member-open');
    open.type = 'button';
    open.dataset.nick = m.nick;
    open.title = self ? 'You' : m.away ? `${m.nick} is away${m.awayText ? ': ' + m.awayText : ''}` : `Message ${m.nick}`;
    const dot = el('span', 'presence');
    dot.setAttribute('aria-hidden', 'true');
    open.append(dot, el('span', 'member-nick ' + nickColour(m.nick), m.nick));
    if (self) open.append(' ', el('span', 'tag', 'you'));
    if (m.away) open.append(' ', el('span', 'tag', 'away'));
    li.append(open);
    if (!self) {
      const isBlocked = blocked.has(fold(m.nick));
      if (isBlocked) li.classList.add('blocked');
      const b = el('button', 'block', isBlocked ? 'Unblock' : 'Block');
      b.type = 'button';
      b.dataset.nick = m.nick;
      b.setAttribute('aria-label', (isBlocked ? 'Unblock ' : 'Block ') + m.nick);
      li.append(b);
    }
    frag.append(li);
  }
  // A rebuild must not throw the keyboard user's focus away.
  const f = document.activeElement;
  const refocus = f && ui.nicklist.contains(f) ? `button.${f.classList[0]}[data-nick="${CSS.escape(f.dataset.nick || '')}"]` : null;
  ui.nicklist.replaceChildren(frag);
  if (refocus) {
    const again = ui.nicklist.querySelector(refocus);
    if (again) again.focus();
  }
  const n = String(list.length || '');
  ui.memberCount.textContent = n;
  ui.memberCountBtn.textContent = n;
  for (const c of state.convs.values()) updatePresence(c);
  updateHeader();
}

ui.nicklist.addEventListener('click', (e) => {
  const li = e.target.closest('li[data-nick]');
  if (!li) return;
  const nick = li.dataset.nick;
  const blockBtn = e.target.closest('button.block');
  if (blockBtn) {
    if (li.classList.contains('blocked')) unblock(nick);
    else block(nick);
    return;
  }
  if (fold(nick) === fold(state.nick)) return;
  const conv = getConv(nick);
  activate(conv.key, { focus: true });
  closeDrawer();
});

function renderBlocks() {
  const frag = document.createDocumentFragment();
  for (const mask of state.blocks) {
    const n = nickFromMask(mask);
    const known = n && state.members.get(fold(n));
    const name = known ? known.nick : n || mask;
    const li = el('li', 'blocked-item');
    li.dataset.nick = name;
    li.dataset.mask = mask;
    li.append(el('span', 'blocked-nick', name), ' ');
    const b = el('button', 'unblock', 'Unblock');
    b.type = 'button';
    b.dataset.nick = name;
    b.setAttribute('aria-label', 'Unblock ' + name);
    li.append(b);
    frag.append(li);
  }
  if (!state.blocks.length) frag.append(el('li', 'empty', 'Nobody'));
  ui.blocks.replaceChildren(frag);
}

ui.blocks.addEventListener('click', (e) => {
  const b = e.target.closest('button.unblock');
  if (!b) return;
  const li = b.closest('li');
  send('SILENCE', '-' + li.dataset.mask);
  send('SILENCE');
});

function block(nick) {
  if (send('SILENCE', '+' + nick)) send('SILENCE');
}

function unblock(nick) {
  const mask = state.blocks.find((m) => fold(nickFromMask(m) || '') === fold(nick)) || nick;
  if (send('SILENCE', '-' + mask)) send('SILENCE');
}

// ---------- who panel ----------

function showWho(kind) {
  state.who = { kind, items: [] };
  send(kind === 'whoelse' ? 'WHOELSE' : 'WHOLASTHR');
}

function whoNotice(parsed) {
  if (!state.who || state.who.kind !== (parsed.list || parsed.end)) state.who = { kind: parsed.list || parsed.end, items: [] };
  if (parsed.list) {
    state.who.items.push(...parsed.items);
    return;
  }
  const { kind, items } = state.who;
  state.who = null;
  ui.whoTitle.textContent = kind === 'whoelse' ? 'Online now' : `Here in the last ${parsed.window}`;
  ui.whoSummary.textContent =
    parsed.count === 0 ? (kind === 'whoelse' ? 'Nobody else is online.' : `Nobody else in the last ${parsed.window}.`) : `${parsed.count} other ${parsed.count === 1 ? 'person' : 'people'}`;
  const frag = document.createDocumentFragment();
  for (const it of items) {
    const li = el('li', 'who-item');
    li.dataset.nick = it.nick;
    const b = el('button', 'who-nick ' + nickColour(it.nick), it.nick);
    b.type = 'button';
    b.dataset.nick = it.nick;
    b.title = 'Message ' + it.nick;
    // The space keeps the nick a word of the item's text.
    li.append(b, document.createTextNode(' '), el('span', 'who-detail' + (/online/.test(it.detail) ? ' is-online' : ''), it.detail));
    frag.append(li);
  }
  ui.whoList.replaceChildren(frag);
  ui.whoPanel.hidden = false;
  ui.whoPanel.focus();
}

function closeWho() {
  if (ui.whoPanel.hidden) return false;
  ui.whoPanel.hidden = true;
  ui.input.focus();
  return true;
}

$('#btn-whoelse').addEventListener('click', () => showWho('whoelse'));
$('#btn-wholasthr').addEventListener('click', () => showWho('wholasthr'));
$('#who-close').addEventListener('click', closeWho);
ui.whoList.addEventListener('click', (e) => {
  const b = e.target.closest('button.who-nick');
  if (!b || fold(b.dataset.nick) === fold(state.nick)) return;
  closeWho();
  activate(getConv(b.dataset.nick).key, { focus: true });
});

// ---------- drawer (narrow screens) ----------

function openDrawer() {
  ui.sidebar.classList.add('open');
  ui.backdrop.hidden = false;
  ui.membersBtn.setAttribute('aria-expanded', 'true');
  const first = ui.sidebar.querySelector('button');
  if (first) first.focus();
}

function closeDrawer() {
  if (!ui.sidebar.classList.contains('open')) return false;
  ui.sidebar.classList.remove('open');
  ui.backdrop.hidden = true;
  ui.membersBtn.setAttribute('aria-expanded', 'false');
  return true;
}

ui.membersBtn.addEventListener('click', () => (ui.sidebar.classList.contains('open') ? closeDrawer() : openDrawer()));
ui.backdrop.addEventListener('click', closeDrawer);

// ---------- sending ----------

function send(command, ...params) {
  if (!state.conn || !state.online) {
    system('Not connected: nothing was sent.');
    return false;
  }
  return state.conn.send(buildLine(command, ...params));
}

function sayTo(target, text, action = false) {
  if (!state.conn || !state.online) {
    system('Not connected: your message was not sent.');
    return false;
  }
  const overhead = action ? '\x01ACTION \x01'.length : 0;
  for (const piece of splitText(text, TEXT_BYTES - overhead)) {
    const body = action ? `\x01ACTION ${piece}\x01` : piece;
    state.conn.send(buildLine('PRIVMSG', target, body));
    if (!state.caps.has('echo-message')) {
      showMessage({ from: state.nick, target, text: body, time: new Date(), msgid: '', history: false, command: 'PRIVMSG' });
    }
  }
  return true;
}

const HELP = [
  '/me <action> · /msg <nick> <text> · /query <nick> · /close',
  '/away [text] · /back · /block <nick> · /unblock <nick>',
  '/whoelse · /wholasthr · /quote <raw line> · /clear · /logout',
  'Keys: Tab completes nicks · Up/Down recall · Alt+1…9 or Ctrl+↑/↓ switch tabs · Esc closes panels',
];

function runInput(text) {
  const conv = state.convs.get(state.active);
  const a = parseInput(text);
  switch (a.type) {
    case 'none':
      return true;
    case 'say':
      return sayTo(conv.target, a.text);
    case 'action':
      return sayTo(conv.target, a.text, true);
    case 'msg':
    case 'query': {
      if (isChannel(a.target) && fold(a.target) !== fold(LOBBY)) {
        system('There is only one room: ' + LOBBY);
        return false;
      }
      const c = getConv(a.target);
      activate(c.key);
      return a.text ? sayTo(c.target, a.text) : true;
    }
    case 'raw':
      if (!state.conn || !state.online) {
        system('Not connected: nothing was sent.');
        return false;
      }
      state.conn.send(a.line);
      return true;
    case 'block':
      block(a.target);
      return true;
    case 'unblock':
      unblock(a.target);
      return true;
    case 'away':
      return a.text ? send('AWAY', a.text) : send('AWAY');
    case 'whoelse':
    case 'wholasthr':
      showWho(a.type);
      return true;
    case 'close':
      if (conv.isLobby) system('The lobby stays open; /close closes a private conversation.');
      else closeConv(conv.key);
      return true;
    case 'clear':
      conv.log.replaceChildren();
      conv.lastDay = '';
      return true;
    case 'logout':
      logout();
      return true;
    case 'help':
      for (const l of HELP) system(l);
      return true;
    case 'error':
      system(a.message);
      return false;
  }
  return false;
}

ui.send.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.input.value;
  if (!text.trim()) return;
  if (runInput(text)) {
    state.history.push(text);
    ui.input.value = '';
  }
  state.complete = null;
});

ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Tab' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
    const cursor = ui.input.selectionStart ?? ui.input.value.length;
    const word = ui.input.value.slice(0, cursor).split(/\s/).pop();
    if (!word && !state.complete) return; // let Tab move focus
    const names = [...state.members.values()].map((m) => m.nick).filter((n) => fold(n) !== fold(state.nick));
    for (const c of state.convs.values()) if (!c.isLobby) names.push(c.target);
    const r = completeNick(ui.input.value, cursor, names, state.complete);
    if (!r) return;
    e.preventDefault();
    ui.input.value = r.text;
    ui.input.setSelectionRange(r.cursor, r.cursor);
    state.complete = r.state;
    return;
  }
  if (e.key !== 'Shift') state.complete = null;
  if (e.key === 'ArrowUp' && !e.altKey && !e.ctrlKey && !e.metaKey) {
    const v = state.history.up(ui.input.value);
    if (v !== null) {
      e.preventDefault();
      ui.input.value = v;
      ui.input.setSelectionRange(v.length, v.length);
    }
  } else if (e.key === 'ArrowDown' && !e.altKey && !e.ctrlKey && !e.metaKey) {
    const v = state.history.down();
    if (v !== null) {
      e.preventDefault();
      ui.input.value = v;
      ui.input.setSelectionRange(v.length, v.length);
    }
  }
});

ui.closeConv.addEventListener('click', () => closeConv(state.active));
ui.awayBtn.addEventListener('click', () => (state.away ? send('AWAY') : send('AWAY', 'Away')));
$('#logout').addEventListener('click', logout);

// ---------- keyboard ----------

function tabKeys() {
  return [...state.convs.keys()];
}

document.addEventListener('keydown', (e) => {
  if (ui.chat.hidden) return;
  if (e.key === 'Escape') {
    if (closeWho() || closeDrawer()) e.preventDefault();
    return;
  }
  const keys = tabKeys();
  const i = keys.indexOf(state.active);
  const inInput = document.activeElement === ui.input;
  if (e.altKey && !e.ctrlKey && !e.metaKey && /^Digit[1-9]$/.test(e.code)) {
    const k = keys[Number(e.code.slice(5)) - 1];
    if (k) {
      e.preventDefault();
      activate(k, { focus: inInput });
    }
  } else if ((e.ctrlKey || e.altKey) && !e.metaKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
    e.preventDefault();
    const step = e.key === 'ArrowUp' ? -1 : 1;
    activate(keys[(i + step + keys.length) % keys.length], { focus: inInput });
  }
});

// Arrow keys move along the tab list, as ARIA tabs do.
ui.tabs.addEventListener('keydown', (e) => {
  const keys = tabKeys();
  const i = keys.indexOf(state.active);
  let k = null;
  if (e.key === 'ArrowRight') k = keys[(i + 1) % keys.length];
  else if (e.key === 'ArrowLeft') k = keys[(i - 1 + keys.length) % keys.length];
  else if (e.key === 'Home') k = keys[0];
  else if (e.key === 'End') k = keys[keys.length - 1];
  else if (e.key === 'Delete' && !state.convs.get(state.active).isLobby) {
    closeConv(state.active);
    state.convs.get(state.active).tab.focus();
    return;
  }
  if (k === null) return;
  e.preventDefault();
  activate(k);
  state.convs.get(k).tab.focus();
});

ui.tabs.addEventListener('auxclick', (e) => {
  const tab = e.target.closest('button.tab');
  if (e.button === 1 && tab) closeConv(fold(tab.dataset.target));
});

document.addEventListener('visibilitychange', () => {
  const conv = state.convs.get(state.active);
  if (!document.hidden && conv) markRead(conv);
});

// ---------- incoming ----------

function memberAdd(nick) {
  const k = fold(nick);
  if (!state.members.has(k)) state.members.set(k, { nick, away: false, awayText: '' });
}

function showMessage({ from, target, text, time, msgid, history, command, after = null }) {
  const selfSent = fold(from) === fold(state.nick);
  let convTarget;
  if (isChannel(target)) convTarget = target;
  else convTarget = selfSent ? target : from;
  const conv = getConv(convTarget);
  let kind = command === 'NOTICE' ? 'notice' : 'privmsg';
  const ctcp = parseCTCP(text);
  if (ctcp) {
    if (ctcp.verb !== 'ACTION') return; // other CTCPs are not for people
    kind = 'action';
    text = ctcp.arg;
  }
  return addLine(conv, { kind, from, text, time, msgid, history, after });
}

function onLine(msg) {
  const p = msg.params;
  const time = parseTime(msg.tags.time);
  const batch = msg.tags.batch ? state.batches.get(msg.tags.batch) : null;
  const history = !!(batch && batch.type === 'chathistory');
  const fromServer = !msg.prefix || msg.isServer || msg.prefix === state.serverName;
  switch (msg.command) {
    case 'PRIVMSG':
    case 'NOTICE': {
      const target = p[0] || '';
      const text = p[1] || '';
      if (fromServer) {
        const who = parseWhoNotice(text);
        if (who) {
          whoNotice(who);
          return;
        }
        system(text);
        return;
      }
      const shown = showMessage({ from: msg.nick, target, text, time, msgid: msg.tags.msgid || '', history, command: msg.command, after: history ? batch.last : null });
      if (shown && batch) {
        batch.added++;
        batch.last = shown;
      }
      return;
    }
    case 'BATCH': {
      const id = (p[0] || '').slice(1);
      if ((p[0] || '').startsWith('+')) {
        state.batches.set(id, { type: p[1], target: p[2], added: 0, last: null });
      } else {
        const b = state.batches.get(id);
        state.batches.delete(id);
        if (b && b.type === 'chathistory') historyDone(b);
      }
      return;
    }
    case 'JOIN': {
      const chan = p[0];
      const conv = getConv(chan);
      if (fold(msg.nick) === fold(state.nick)) {
        state.pendingNames = null;
        return;
      }
      memberAdd(msg.nick);
      renderMembers();
      addLine(conv, { kind: 'join', from: msg.nick, text: 'joined', time, msgid: msg.tags.msgid || '' });
      const pm = getConv(msg.nick, false);
      if (pm) addLine(pm, { kind: 'join', from: msg.nick, text: 'is online', time });
      return;
    }
    case 'QUIT':
    case 'PART': {
      const k = fold(msg.nick);
      if (k === fold(state.nick)) return;
      state.members.delete(k);
      renderMembers();
      const reason = msg.command === 'QUIT' ? p[0] || '' : p[1] || '';
      const text = 'left' + (reason && !/^(Quit: ?)?$/.test(reason) ? ` (${stripFormatting(reason.replace(/^Quit: /, ''))})` : '');
      addLine(getConv(LOBBY), { kind: 'quit', from: msg.nick, text, time, msgid: msg.tags.msgid || '' });
      const pm = getConv(msg.nick, false);
      if (pm) addLine(pm, { kind: 'quit', from: msg.nick, text: 'went offline', time });
      return;
    }
    case 'NICK': {
      const old = fold(msg.nick);
      const m = state.members.get(old);
      if (old === fold(state.nick)) state.nick = p[0];
      if (m) {
        state.members.delete(old);
        m.nick = p[0];
        state.members.set(fold(p[0]), m);
      }
      const conv = getConv(msg.nick, false);
      if (conv) {
        state.convs.delete(conv.key);
        conv.key = fold(p[0]);
        state.convs.set(conv.key, conv);
        if (state.active === old) state.active = conv.key;
        renameConv(conv, p[0]);
      }
      renderMembers();
      return;
    }
    case 'AWAY': {
      const m = state.members.get(fold(msg.nick));
      if (m) {
        m.away = !!p[0];
        m.awayText = p[0] || '';
        renderMembers();
      }
      return;
    }
    case 'TOPIC':
      state.topic = p[1] || '';
      updateHeader();
      return;
    case 'SILENCE': {
      // The server's echo of a change; the list that follows confirms it.
      const mask = p[0] || '';
      const n = nickFromMask(mask.slice(1)) || mask.slice(1);
      system(mask.startsWith('+') ? `Blocked ${n}: you will not see their messages.` : `Unblocked ${n}.`);
      return;
    }
    case 'FAIL':
      if (p[0] === 'CHATHISTORY') {
        // No batch follows a refusal: this request is over.
        const req = state.historyAsked.shift();
        if (req) {
          req.conv.olderPending = false;
          req.conv.noOlder = true;
        }
      }
      return;
    case 'PONG':
    case 'CAP':
    case 'WARN':
      return;
    case 'ERROR':
      return;
  }
  if (/^\d{3}$/.test(msg.command)) numeric(msg, p, time);
}

function numeric(msg, p, time) {
  const text = p[p.length - 1] || '';
  switch (msg.command) {
    case '332':
      state.topic = text;
      updateHeader();
      return;
    case '331':
      state.topic = '';
      updateHeader();
      return;
    case '353': {
      if (!state.pendingNames) state.pendingNames = new Map();
      for (const raw of text.split(' ')) {
        const nick = raw.replace(/^[~&@%+]+/, '').split('!')[0];
        if (!nick) continue;
        const old = state.members.get(fold(nick));
        state.pendingNames.set(fold(nick), { nick, away: old ? old.away : false, awayText: old ? old.awayText : '' });
      }
      return;
    }
    case '366': {
      state.members = state.pendingNames || new Map();
      state.pendingNames = null;
      memberAdd(state.nick);
      renderMembers();
      renderBlocks();
      if (!state.joinedOnce) {
        // After our JOIN: who is away, the recent room, our block list.
        state.joinedOnce = true;
        state.conn.send('WHO ' + LOBBY);
        if (state.caps.has('draft/chathistory')) {
          state.historyAsked.push(null);
          state.conn.send(`CHATHISTORY LATEST ${LOBBY} * 50`);
        }
        state.conn.send('SILENCE');
      }
      return;
    }
    case '352': {
      const m = state.members.get(fold(p[5] || ''));
      if (m) {
        m.away = (p[6] || '').startsWith('G');
        renderMembersSoon();
      }
      return;
    }
    case '315':
      return;
    case '271': {
      if (!state.pendingBlocks) state.pendingBlocks = [];
      state.pendingBlocks.push(p[p.length - 1]);
      return;
    }
    case '272':
      state.blocks = state.pendingBlocks || [];
      state.pendingBlocks = null;
      renderBlocks();
      renderMembers();
      return;
    case '301': {
      // To a private message: the peer is away or offline.
      const nick = p[1] || '';
      const conv = getConv(nick, false);
      if (!conv) return;
      const note = text.toLowerCase().startsWith(fold(nick) + ' is ') ? text : `${nick} is away: ${text}`;
      if (conv.awayNote === note) return; // said once is enough
      conv.awayNote = note;
      addLine(conv, { kind: 'system', text: note, time });
      return;
    }
    case '305':
    case '306':
      state.away = msg.command === '306';
      ui.awayBtn.textContent = state.away ? 'Back' : 'Set away';
      ui.awayBtn.setAttribute('aria-pressed', state.away ? 'true' : 'false');
      document.body.classList.toggle('is-away', state.away);
      system(state.away ? 'You are marked as away.' : 'You are back.');
      {
        const me = state.members.get(fold(state.nick));
        if (me) {
          me.away = state.away;
          renderMembers();
        }
      }
      return;
    case '375':
    case '372':
    case '376':
    case '422':
      // The MOTD speaks to IRC clients ("try /quote ..."); the page
      // does not show it.
      return;
    case '401':
    case '406': {
      const conv = getConv(p[1] || '', false) || state.convs.get(state.active);
      addLine(conv, { kind: 'system', text: `${p[1]}: no such user.`, time });
      return;
    }
  }
  const n = Number(msg.command);
  if (n >= 400 && n < 600) {
    const subject = p.length > 2 ? p[1] + ': ' : '';
    system(subject + text);
  } else if (!QUIET_NUMERICS.has(msg.command)) {
    // Replies to /quote (WHOIS and the like): shown as they come.
    system(p.slice(1).join(' '));
  }
}

// Numerics of the login and of what the page asks by itself.
const QUIET_NUMERICS = new Set(['002', '003', '004', '005', '250', '251', '252', '253', '254', '255', '265', '266', '333', '329', '324', '900', '901', '902', '903', '904', '905', '906', '907', '908']);

let membersTimer = 0;
function renderMembersSoon() {
  if (!membersTimer) {
    membersTimer = setTimeout(() => {
      membersTimer = 0;
      renderMembers();
    }, 30);
  }
}

// ---------- connection lifecycle ----------

function wsURL() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/irc';
}

function connect() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  state.reconnectTimer = state.countdownTimer = 0;
  const { account, password } = creds;
  const conn = new Connection(wsURL(), account, password, {
    onLine: (m) => {
      if (state.conn === conn) onLine(m);
    },
    onRegistered: (nick, caps, msg) => {
      if (state.conn === conn) onRegistered(nick, caps, msg);
    },
    onClose: (r) => {
      if (state.conn === conn) onClose(r);
    },
  });
  state.conn = conn;
  state.online = false;
  state.joinedOnce = false;
  state.batches.clear();
  state.historyAsked = [];
  setStatus(state.account ? 'Reconnecting…' : 'Connecting…', 'busy');
  conn.start();
}

function onRegistered(nick, caps, msg) {
  const reconnect = state.account !== '' && fold(state.account) === fold(nick);
  if (state.account && !reconnect) resetConversations();
  state.account = nick;
  state.nick = nick;
  state.caps = caps;
  state.online = true;
  state.attempt = 0;
  state.serverName = msg.prefix;
  state.away = false;
  ui.awayBtn.textContent = 'Set away';
  ui.awayBtn.setAttribute('aria-pressed', 'false');
  document.body.classList.remove('is-away');
  setStatus('Connected as ' + nick, 'ok');
  document.body.classList.remove('disconnected');
  ui.loginError.textContent = '';
  setLoginBusy(false);
  const firstShow = ui.chat.hidden;
  ui.login.hidden = true;
  ui.chat.hidden = false;
  document.body.classList.add('signed-in');
  ui.password.value = '';
  const lobby = getConv(LOBBY);
  if (firstShow) activate(state.convs.has(state.active) ? state.active : lobby.key);
  if (reconnect) system('Reconnected.', lobby);
  if (firstShow) ui.input.focus();
  updateTitle();
}

function onClose({ registered, error }) {
  state.conn = null;
  const wasOnline = state.online;
  state.online = false;
  const signedIn = state.account !== '' && !ui.chat.hidden;
  if (!signedIn) {
    // The first login failed: say why and stop.
    creds = null;
    setLoginBusy(false);
    let message = error.message;
    if (error.network) message = 'Could not reach the server. Check your connection and try again.';
    else if (error.kind === 'other') message = 'The server closed the connection: ' + error.message;
    ui.loginError.textContent = message;
    setStatus('Not signed in', 'idle');
    if (error.kind === 'auth') {
      ui.password.value = '';
      ui.password.focus();
    }
    return;
  }
  if (!error.retry) {
    stopSession(error.message);
    return;
  }
  if (wasOnline || registered) system(`Disconnected: ${error.message}`, getConv(LOBBY));
  document.body.classList.add('disconnected');
  scheduleReconnect();
}

function scheduleReconnect() {
  const delay = backoffDelay(state.attempt++);
  state.reconnectAt = Date.now() + delay;
  const tick = () => {
    const s = Math.max(1, Math.ceil((state.reconnectAt - Date.now()) / 1000));
    setStatus(`Connection lost — reconnecting in ${s} s`, 'warn');
  };
  tick();
  clearInterval(state.countdownTimer);
  state.countdownTimer = setInterval(tick, 1000);
  state.reconnectTimer = setTimeout(connect, delay);
}

ui.reconnectNow.addEventListener('click', () => {
  if (state.reconnectTimer && creds) connect();
});

// A network coming back is worth trying at once.
window.addEventListener('online', () => {
  if (state.reconnectTimer && creds) connect();
});

// stopSession ends for good (signed out, replaced, refused): back to the
// login form with the reason. The password is forgotten.
function stopSession(reason, { clear = false } = {}) {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  state.reconnectTimer = state.countdownTimer = 0;
  creds = null;
  state.online = false;
  if (clear) {
    resetConversations();
    state.account = '';
    state.nick = '';
  }
  closeWho();
  closeDrawer();
  ui.chat.hidden = true;
  ui.login.hidden = false;
  document.body.classList.remove('signed-in', 'disconnected');
  setLoginBusy(false);
  ui.loginError.textContent = clear ? '' : reason;
  setStatus(clear ? 'Signed out' : 'Signed out: ' + reason, clear ? 'idle' : 'error');
  ui.nick.value = ui.nick.value || state.account;
  ui.password.value = '';
  ui.password.focus();
  updateTitle();
}

function logout() {
  const conn = state.conn;
  state.conn = null;
  if (conn) conn.quit('Signed out');
  stopSession('', { clear: true });
}

function setLoginBusy(busy) {
  ui.loginSubmit.disabled = busy;
  ui.loginSubmit.textContent = busy ? 'Signing in…' : 'Sign in';
}

ui.login.addEventListener('submit', (e) => {
  e.preventDefault();
  const account = ui.nick.value.trim();
  const password = ui.password.value;
  if (!account || !password) {
    ui.loginError.textContent = 'Enter your name and password.';
    (account ? ui.password : ui.nick).focus();
    return;
  }
  if (state.conn) return; // a login is under way
  ui.loginError.textContent = '';
  setLoginBusy(true);
  if (state.account && fold(state.account) !== fold(account)) {
    resetConversations();
    state.account = '';
  }
  creds = { account, password };
  state.attempt = 0;
  // Asked here because browsers allow it only after a user's action.
  if ('Notification' in window && Notification.permission === 'default') {
    try {
      Notification.requestPermission().catch(() => {});
    } catch {
      /* old Safari takes a callback; not worth it */
    }
  }
  connect();
});

ui.nick.focus();
