// What the server's texts mean for the page: closing ERRORs, the
// WHOELSE/WHOLASTHR notices, silence masks. Pure.

// classifyError reads an ERROR (or a 904) text. kind is one of "auth",
// "lockout", "duplicate", "replaced", "removed", "quit" or "other";
// retry tells whether reconnecting could help; message is for people.
export function classifyError(text) {
  const t = (text || '').replace(/^Closing link:\s*/i, '');
  let m = /too many failed logins( from your address)?,? retry in (\d+)\s*s/i.exec(t);
  if (m) {
    const who = m[1] ? ' from your address' : '';
    return { kind: 'lockout', retry: false, retryIn: Number(m[2]), message: `Too many failed logins${who}. Retry in ${m[2]} s.` };
  }
  if (/too many failed logins/i.test(t)) {
    return { kind: 'lockout', retry: false, message: 'Too many failed logins. Try again later.' };
  }
  if (/bad account or password|password incorrect|^SASL authentication failed$/i.test(t)) {
    return { kind: 'auth', retry: false, message: 'Wrong name or password.' };
  }
  m = /account (\S+) is already logged in/i.exec(t);
  if (m || /already logged in/i.test(t)) {
    return { kind: 'duplicate', retry: false, message: `${m ? m[1] : 'This account'} is already logged in (in another window or device).` };
  }
  if (/logged in from elsewhere/i.test(t)) {
    return { kind: 'replaced', retry: false, message: 'Logged in from elsewhere: this session was ended.' };
  }
  if (/account removed/i.test(t)) {
    return { kind: 'removed', retry: false, message: 'This account was removed.' };
  }
  if (/login required/i.test(t)) {
    return { kind: 'auth', retry: false, message: 'Wrong name or password.' };
  }
  if (/^Quit:/i.test(t)) {
    return { kind: 'quit', retry: false, message: 'Signed out.' };
  }
  return { kind: 'other', retry: true, message: t || 'Connection closed.' };
}

// parseWhoNotice reads one server NOTICE of WHOELSE or WHOLASTHR:
//   "Online: a b c"                       -> {list: "whoelse", items}
//   "N other users online"                -> {end: "whoelse", count}
//   "Last hour: x (online now), y (left 14:03 UTC, 5m ago)"
//                                         -> {list: "wholasthr", items, window}
//   "N other users connected in the last hour" -> {end: "wholasthr", count}
// and returns null for any other text. Items are {nick, detail}.
export function parseWhoNotice(text) {
  let m = /^Online: (.*)$/.exec(text);
  if (m) {
    return { list: 'whoelse', items: m[1].split(/[\s,]+/).filter(Boolean).map((nick) => ({ nick, detail: 'online' })) };
  }
  m = /^(\d+) other users? online$/.exec(text);
  if (m) return { end: 'whoelse', count: Number(m[1]) };
  m = /^Last ([^:]+): (.*)$/.exec(text);
  if (m) {
    const items = [];
    for (const it of m[2].matchAll(/(\S+) \(([^)]*)\),?/g)) items.push({ nick: it[1], detail: it[2] });
    return { list: 'wholasthr', window: m[1], items };
  }
  m = /^(\d+) other users? connected in the last (.+)$/.exec(text);
  if (m) return { end: 'wholasthr', count: Number(m[1]), window: m[2] };
  return null;
}

// nickFromMask gives the nick a "nick!*@*" silence mask stands for, or
// null when the mask is about more than a nick.
export function nickFromMask(mask) {
  const m = /^([^!@*?]+)!\*@\*$/.exec(mask);
  return m ? m[1] : null;
}

// parseInput turns what the user typed into an action:
//   {type: "say", text} for plain text (and "//text", sent as "/text"),
//   {type: <command>, ...} for a /command, {type: "error", message}.
export function parseInput(input) {
  const text = input.replace(/[\r\n]+/g, ' ');
  if (!text.startsWith('/') || text.startsWith('//')) {
    const t = text.startsWith('//') ? text.slice(1) : text;
    return t.trim() === '' ? { type: 'none' } : { type: 'say', text: t };
  }
  const sp = text.indexOf(' ');
  const cmd = (sp < 0 ? text.slice(1) : text.slice(1, sp)).toLowerCase();
  const rest = sp < 0 ? '' : text.slice(sp + 1);
  const [first = '', ...more] = rest.trim().split(/\s+/);
  const afterFirst = rest.trim().slice(first.length).replace(/^\s/, '');
  switch (cmd) {
    case 'me':
      return rest.trim() ? { type: 'action', text: rest } : { type: 'error', message: 'Usage: /me <action>' };
    case 'msg':
    case 'query':
    case 'q':
      if (!first) return { type: 'error', message: `Usage: /${cmd} <nick>${cmd === 'msg' ? ' <message>' : ' [message]'}` };
      if (cmd === 'msg' && !afterFirst.trim()) return { type: 'error', message: 'Usage: /msg <nick> <message>' };
      return { type: cmd === 'msg' ? 'msg' : 'query', target: first, text: afterFirst };
    case 'quote':
    case 'raw':
      return rest.trim() ? { type: 'raw', line: rest.trim() } : { type: 'error', message: 'Usage: /quote <raw IRC line>' };
    case 'block':
    case 'unblock':
      return first && more.length === 0 ? { type: cmd, target: first } : { type: 'error', message: `Usage: /${cmd} <nick>` };
    case 'away':
      return { type: 'away', text: rest.trim() };
    case 'back':
      return { type: 'away', text: '' };
    case 'whoelse':
    case 'wholasthr':
    case 'close':
    case 'logout':
    case 'help':
    case 'clear':
      return { type: cmd };
    default:
      return { type: 'error', message: `Unknown command /${cmd}. Type /help for the list.` };
  }
}
