import test from 'node:test';
import assert from 'node:assert/strict';
import { parseFormatting, stripFormatting, styleClasses, splitLinks, safeHref, mentions } from '../static/js/format.js';

test('stripFormatting removes every code', () => {
  assert.equal(stripFormatting('\x02bold\x02 \x1ditalic\x1d \x1funder\x1f \x1estrike\x1e \x11mono\x11 \x16rev\x16 \x0f'), 'bold italic under strike mono rev ');
  assert.equal(stripFormatting('\x0304red\x03 \x034,12both\x03 \x0399x \x03,5comma'), 'red both x ,5comma');
  assert.equal(stripFormatting('\x04ff0000hex\x04'), 'hex');
  assert.equal(stripFormatting('a\x01b\x07c'), 'abc');
  assert.equal(stripFormatting('keep\nlines'), 'keep\nlines');
});

test('parseFormatting styles', () => {
  const segs = parseFormatting('a\x02b\x1dc\x0fd');
  assert.deepEqual(segs.map((s) => s.text), ['a', 'b', 'c', 'd']);
  assert.equal(segs[1].style.bold, true);
  assert.equal(segs[2].style.bold && segs[2].style.italic, true);
  assert.deepEqual(styleClasses(segs[3].style), []);
  const col = parseFormatting('\x0304,01red on black\x03plain');
  assert.deepEqual(styleClasses(col[0].style), ['fg-4', 'bg-1']);
  assert.deepEqual(styleClasses(col[1].style), []);
  // Two digits at most: "\x03123" is colour 12, then "3".
  const two = parseFormatting('\x03123');
  assert.equal(two[0].text, '3');
  assert.equal(two[0].style.fg, 12);
  assert.equal(parseFormatting('\x0399x')[0].style.fg, null);
});

test('splitLinks makes only http(s) links and trims punctuation', () => {
  assert.deepEqual(splitLinks('see https://example.com/a?b=1. ok'), [
    { text: 'see ' },
    { text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
    { text: '. ok' },
  ]);
  assert.deepEqual(splitLinks('(http://x.org/wiki/A_(b))'), [
    { text: '(' },
    { text: 'http://x.org/wiki/A_(b)', href: 'http://x.org/wiki/A_(b)' },
    { text: ')' },
  ]);
  for (const bad of ['javascript:alert(1)', 'data:text/html,<b>', 'ftp://x.org', 'vbscript:x']) {
    assert.ok(splitLinks(bad).every((p) => !p.href), bad);
  }
  assert.deepEqual(splitLinks('JaVaScRiPt:alert(1)//http://'), [{ text: 'JaVaScRiPt:alert(1)//http://' }]);
  assert.equal(safeHref('javascript:alert(1)'), null);
  assert.equal(safeHref('https://a.b/<x>'), 'https://a.b/%3Cx%3E');
  assert.deepEqual(splitLinks('no links'), [{ text: 'no links' }]);
  const two = splitLinks('http://a.io and https://b.io');
  assert.deepEqual(two.filter((p) => p.href).map((p) => p.href), ['http://a.io/', 'https://b.io/']);
});

test('mentions is a whole-word, case-insensitive match', () => {
  assert.ok(mentions('hey Bob!', 'bob'));
  assert.ok(mentions('bob: hi', 'bob'));
  assert.ok(mentions('\x02bob\x02', 'bob'));
  assert.ok(!mentions('bobby', 'bob'));
  assert.ok(!mentions('kebob', 'bob'));
  assert.ok(mentions('[a]', '[a]'));
  assert.ok(!mentions('anything', ''));
});
