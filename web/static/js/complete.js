// Nick completion (Tab) and input history (Up/Down). Pure.

// completeNick completes the word before the cursor from candidates.
// state is what the previous call returned, so repeated Tabs cycle
// through the matches; pass null after any other key. Returns
// {text, cursor, state} or null when nothing matches.
export function completeNick(text, cursor, candidates, state) {
  let prefix, start, matches, index;
  if (state && state.text === text && state.cursor === cursor) {
    ({ prefix, start, matches } = state);
    index = (state.index + 1) % matches.length;
  } else {
    start = cursor;
    while (start > 0 && !/\s/.test(text[start - 1])) start--;
    prefix = text.slice(start, cursor);
    if (prefix.startsWith('@')) {
      start++;
      prefix = prefix.slice(1);
    }
    const p = prefix.toLowerCase();
    matches = [...new Set(candidates)].filter((n) => n.toLowerCase().startsWith(p)).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    if (matches.length === 0) return null;
    index = 0;
  }
  const end = state && state.text === text && state.cursor === cursor ? state.end : cursor;
  // At the start of the line a nick addresses someone: "alice: ".
  const suffix = start === 0 ? ': ' : ' ';
  const insert = matches[index] + suffix;
  const rest = text.slice(end).replace(/^ /, '');
  const newText = text.slice(0, start) + insert + rest;
  const newCursor = start + insert.length;
  return { text: newText, cursor: newCursor, state: { text: newText, cursor: newCursor, prefix, start, end: newCursor, matches, index } };
}

// InputHistory keeps what was sent; up/down walk it, keeping the line
// being typed as the newest entry.
export class InputHistory {
  constructor(limit = 100) {
    this.limit = limit;
    this.items = [];
    this.pos = 0;
    this.draft = '';
  }

  push(line) {
    if (line && this.items[this.items.length - 1] !== line) this.items.push(line);
    if (this.items.length > this.limit) this.items.shift();
    this.pos = this.items.length;
    this.draft = '';
  }

  // up returns the older line, or null at the oldest.
  up(current) {
    if (this.pos === 0) return null;
    if (this.pos === this.items.length) this.draft = current;
    this.pos--;
    return this.items[this.pos];
  }

  // down returns the newer line (the draft after the newest), or null.
  down() {
    if (this.pos >= this.items.length) return null;
    this.pos++;
    return this.pos === this.items.length ? this.draft : this.items[this.pos];
  }
}
