// IRC message parsing and building (IRCv3 message tags). Pure: no DOM, no
// network, so node's test runner can import it.

const tagUnescapes = { ':': ';', s: ' ', '\\': '\\', r: '\r', n: '\n' };

// unescapeTagValue undoes IRCv3 tag escaping; an unknown escape drops the
// backslash and a trailing lone backslash is dropped, as the spec says.
export function unescapeTagValue(v) {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    i++;
    if (i >= v.length) break;
    out += tagUnescapes[v[i]] ?? v[i];
  }
  return out;
}

export function escapeTagValue(v) {
  return v.replace(/[\\; \r\n]/g, (c) => ({ '\\': '\\\\', ';': '\\:', ' ': '\\s', '\r': '\\r', '\n': '\\n' })[c]);
}

// parsePrefix splits nick!user@host; a server name has no '!' or '@'.
export function parsePrefix(prefix) {
  if (!prefix) return { nick: '', user: '', host: '', isServer: false };
  const bang = prefix.indexOf('!');
  const at = prefix.indexOf('@', bang + 1);
  if (bang < 0 && at < 0) {
    // "irc.example.com" is a server, "alice" a bare nick.
    return { nick: prefix, user: '', host: '', isServer: prefix.includes('.') };
  }
  const nickEnd = bang >= 0 ? bang : at;
  return {
    nick: prefix.slice(0, nickEnd),
    user: bang >= 0 ? prefix.slice(bang + 1, at >= 0 ? at : undefined) : '',
    host: at >= 0 ? prefix.slice(at + 1) : '',
    isServer: false,
  };
}

// parseLine reads one IRC line (with or without CRLF). It returns null
// for an empty line.
export function parseLine(line) {
  line = line.replace(/[\r\n]+$/, '');
  let i = 0;
  const skipSpaces = () => {
    while (line[i] === ' ') i++;
  };
  const word = () => {
    const end = line.indexOf(' ', i);
    const w = end < 0 ? line.slice(i) : line.slice(i, end);
    i = end < 0 ? line.length : end;
    return w;
  };
  const tags = {};
  if (line[i] === '@') {
    i++;
    for (const part of word().split(';')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      if (eq < 0) tags[part] = '';
      else tags[part.slice(0, eq)] = unescapeTagValue(part.slice(eq + 1));
    }
    skipSpaces();
  }
  let prefix = '';
  if (line[i] === ':') {
    i++;
    prefix = word();
    skipSpaces();
  }
  const command = word().toUpperCase();
  if (!command) return null;
  const params = [];
  for (;;) {
    skipSpaces();
    if (i >= line.length) break;
    if (line[i] === ':') {
      params.push(line.slice(i + 1));
      break;
    }
    params.push(word());
  }
  return { tags, prefix, ...parsePrefix(prefix), command, params };
}

// buildLine makes a line to send (no CRLF: the WebSocket binding frames
// each line). The last parameter gets a ':' when it needs one. CR, LF
// and NUL are removed: they would split or end the line.
export function buildLine(command, ...params) {
  const clean = params.map((p) => String(p).replace(/[\r\n\0]/g, ' '));
  const out = [command];
  clean.forEach((p, idx) => {
    const last = idx === clean.length - 1;
    if (last && (p === '' || p.includes(' ') || p.startsWith(':'))) out.push(':' + p);
    else out.push(p);
  });
  return out.join(' ');
}

// fold is the server's CASEMAPPING=ascii.
export function fold(s) {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

export function isChannel(target) {
  return target.startsWith('#') || target.startsWith('&');
}

const encoder = new TextEncoder();

export function utf8Length(s) {
  return encoder.encode(s).length;
}

// splitText cuts text into pieces of at most maxBytes UTF-8 bytes, at a
// space when one is near, never inside a character (surrogate pairs
// stay whole).
export function splitText(text, maxBytes) {
  const pieces = [];
  let rest = text;
  while (utf8Length(rest) > maxBytes) {
    let bytes = 0;
    let cut = 0; // index in UTF-16 units
    for (const ch of rest) {
      const n = utf8Length(ch);
      if (bytes + n > maxBytes) break;
      bytes += n;
      cut += ch.length;
    }
    const space = rest.lastIndexOf(' ', cut);
    if (space > cut * 0.6) {
      pieces.push(rest.slice(0, space));
      rest = rest.slice(space + 1);
    } else {
      pieces.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
  }
  if (rest !== '' || pieces.length === 0) pieces.push(rest);
  return pieces;
}

// base64 of UTF-8 bytes (btoa alone takes Latin-1 only).
export function base64UTF8(s) {
  let bin = '';
  for (const b of encoder.encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

// saslPlainChunks is the AUTHENTICATE arguments for SASL PLAIN: the
// base64 payload in 400-byte chunks, with a "+" after a final chunk of
// exactly 400 so the server knows it ended.
export function saslPlainChunks(account, password) {
  const b64 = base64UTF8(account + '\0' + account + '\0' + password);
  const chunks = [];
  for (let i = 0; i < b64.length; i += 400) chunks.push(b64.slice(i, i + 400));
  if (chunks.length === 0 || chunks[chunks.length - 1].length === 400) chunks.push('+');
  return chunks;
}

// parseTime reads a server-time tag; null when absent or invalid.
export function parseTime(tag) {
  if (!tag) return null;
  const d = new Date(tag);
  return Number.isNaN(d.getTime()) ? null : d;
}

// ctcp splits "\x01ACTION text\x01" into its verb and argument.
export function parseCTCP(text) {
  if (!text.startsWith('\x01')) return null;
  const body = text.slice(1).replace(/\x01$/, '');
  const sp = body.indexOf(' ');
  return sp < 0 ? { verb: body.toUpperCase(), arg: '' } : { verb: body.slice(0, sp).toUpperCase(), arg: body.slice(sp + 1) };
}
