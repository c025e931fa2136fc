// IRC formatting codes and links. Pure: turns text into plain segments
// with styles; the page builds DOM from them with textContent only.

const BOLD = '\x02', COLOR = '\x03', HEX = '\x04', RESET = '\x0f', MONO = '\x11',
  REVERSE = '\x16', ITALIC = '\x1d', STRIKE = '\x1e', UNDERLINE = '\x1f';

const toggles = { [BOLD]: 'bold', [ITALIC]: 'italic', [UNDERLINE]: 'underline', [STRIKE]: 'strike', [MONO]: 'mono', [REVERSE]: 'reverse' };

function emptyStyle() {
  return { bold: false, italic: false, underline: false, strike: false, mono: false, reverse: false, fg: null, bg: null };
}

// parseFormatting returns [{text, style}] with consecutive runs of one
// style merged. Colours are the 16 standard ones (0-15); other numbers
// and hex colours (\x04) are consumed and ignored.
export function parseFormatting(text) {
  const out = [];
  let style = emptyStyle();
  let buf = '';
  const flush = () => {
    if (buf) out.push({ text: buf, style: { ...style } });
    buf = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (toggles[c]) {
      flush();
      style[toggles[c]] = !style[toggles[c]];
    } else if (c === RESET) {
      flush();
      style = emptyStyle();
    } else if (c === COLOR) {
      flush();
      const m = /^(\d{1,2})(?:,(\d{1,2}))?/.exec(text.slice(i + 1, i + 6));
      if (!m) {
        style.fg = style.bg = null;
        continue;
      }
      i += m[0].length;
      style.fg = colour(m[1]);
      if (m[2] !== undefined) style.bg = colour(m[2]);
    } else if (c === HEX) {
      flush();
      const m = /^[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?/.exec(text.slice(i + 1, i + 15));
      if (m) i += m[0].length;
    } else if (c < ' ' && c !== '\t' && c !== '\n') {
      // Other control characters (CTCP's \x01 and the like) show nothing.
    } else {
      buf += c;
    }
  }
  flush();
  return out;
}

function colour(s) {
  const n = parseInt(s, 10);
  return n >= 0 && n <= 15 ? n : null;
}

export function stripFormatting(text) {
  return parseFormatting(text).map((s) => s.text).join('');
}

// styleClasses names the CSS classes of a style.
export function styleClasses(style) {
  const cls = [];
  for (const k of ['bold', 'italic', 'underline', 'strike', 'mono', 'reverse']) if (style[k]) cls.push('f-' + k);
  if (style.fg !== null) cls.push('fg-' + style.fg);
  if (style.bg !== null) cls.push('bg-' + style.bg);
  return cls;
}

const urlRe = /\bhttps?:\/\/[^\s<>"'`]+/gi;

// trimURL drops trailing punctuation that ends a sentence rather than the
// link, and a closing bracket without its opening one.
function trimURL(u) {
  for (;;) {
    const last = u[u.length - 1];
    if (/[.,;:!?*'"]/.test(last)) {
      u = u.slice(0, -1);
      continue;
    }
    const pairs = { ')': '(', ']': '[', '}': '{', '>': '<' };
    if (pairs[last]) {
      const open = u.split(pairs[last]).length - 1;
      const close = u.split(last).length - 1;
      if (close > open) {
        u = u.slice(0, -1);
        continue;
      }
    }
    return u;
  }
}

// safeHref returns the normalised URL when it is http(s), else null.
export function safeHref(u) {
  try {
    const url = new URL(u);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.href;
  } catch {
    return null;
  }
}

// splitLinks cuts text into [{text}] and [{text, href}] parts; only
// http and https links are made.
export function splitLinks(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(urlRe)) {
    const raw = trimURL(m[0]);
    const href = safeHref(raw);
    if (!href || raw.length <= 'https://'.length) continue;
    if (m.index > last) out.push({ text: text.slice(last, m.index) });
    out.push({ text: raw, href });
    last = m.index + raw.length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// mentions reports whether text names nick as a word (case-insensitive;
// nick characters around it make it another word: "bob" is not in
// "bobby").
export function mentions(text, nick) {
  if (!nick) return false;
  const re = new RegExp('(^|[^A-Za-z0-9_\\-\\[\\]\\\\`^{}|])' + escapeRe(nick) + '($|[^A-Za-z0-9_\\-\\[\\]\\\\`^{}|])', 'i');
  return re.test(stripFormatting(text));
}
