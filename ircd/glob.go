package ircd

import "strings"

// glob is a compiled IRC mask: '*' matches any run of bytes, '?' any one
// byte, everything else itself, ASCII letters without regard to case.
//
// Masks come from users (SILENCE, WHO) and a SILENCE list is consulted
// for every channel line, so a match must cost the same whatever the
// mask: a backtracking matcher spent O(len(mask) × len(subject)) on masks
// like "*?????????????????????????#N", about 30 ms a line with 1,000
// members holding 32 of them. Here a match is a few comparisons against
// the mask's fixed head and tail (which reject nearly every subject at
// once), then, only if both fit, a run of the mask's automaton with one
// bit per position: O(len(subject)), never more.
type glob struct {
	head, tail string // literal bytes before the first and after the last wildcard
	min        int    // bytes a subject needs at least
	exact      bool   // no '*': the subject has exactly min bytes
	// The automaton over the whole (canonical) pattern; nil when the mask
	// is head and tail only (at most one '*' and no '?').
	nfa *globNFA
}

// globWords bounds the automaton to 255 positions; masks are at most 200
// bytes as typed, so a longer one is refused (matches nothing).
const globWords = 4

type globNFA struct {
	words int
	star  [globWords]uint64   // positions holding '*'
	any   [globWords]uint64   // positions holding '?'
	lit   [][globWords]uint64 // positions of each literal byte in use; lit[0] is empty
	slot  [256]uint8          // byte -> index in lit
	final int                 // the accepting position
}

// compileGlob compiles pattern, which must already be case-folded.
func compileGlob(pattern string) glob {
	// Canonical form: in a run of wildcards only the number of '?' and
	// whether there is a '*' matter, so "*?*?" becomes "??*".
	var b strings.Builder
	for i := 0; i < len(pattern); {
		if c := pattern[i]; c != '*' && c != '?' {
			b.WriteByte(c)
			i++
			continue
		}
		star := false
		for ; i < len(pattern) && (pattern[i] == '*' || pattern[i] == '?'); i++ {
			if pattern[i] == '*' {
				star = true
			} else {
				b.WriteByte('?')
			}
		}
		if star {
			b.WriteByte('*')
		}
	}
	p := b.String()
	g := glob{exact: strings.IndexByte(p, '*') < 0}
	g.min = len(p) - strings.Count(p, "*")
	first := strings.IndexAny(p, "*?")
	if first < 0 {
		g.head = p
		return g
	}
	last := strings.LastIndexAny(p, "*?")
	g.head, g.tail = p[:first], p[last+1:]
	if p[first:last+1] == "*" {
		return g // head*tail: the fixed parts decide
	}
	if len(p)+1 > globWords*64 {
		g.min = -1 // refused: matches nothing
		return g
	}
	n := &globNFA{words: len(p)/64 + 1, final: len(p), lit: make([][globWords]uint64, 1)}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			n.star[i/64] |= 1 << (i % 64)
		case '?':
			n.any[i/64] |= 1 << (i % 64)
		default:
			if n.slot[c] == 0 {
				n.slot[c] = uint8(len(n.lit))
				n.lit = append(n.lit, [globWords]uint64{})
			}
			n.lit[n.slot[c]][i/64] |= 1 << (i % 64)
		}
	}
	g.nfa = n
	return g
}

// match reports whether s matches; s need not be case-folded.
func (g *glob) match(s string) bool {
	if g.min < 0 || len(s) < g.min || g.exact && len(s) != g.min {
		return false
	}
	if !hasFoldedPrefix(s, g.head) || !hasFoldedPrefix(s[len(s)-len(g.tail):], g.tail) {
		return false
	}
	if g.nfa == nil {
		return true
	}
	return g.nfa.run(s)
}

// hasFoldedPrefix reports whether s starts with prefix (already folded),
// folding s's ASCII capitals.
func hasFoldedPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// run simulates the automaton: bit i set means the first i pattern bytes
// have matched a prefix of what was read. A '*' position keeps its bit
// (it takes the byte) and also passes it on (it may match nothing).
func (n *globNFA) run(s string) bool {
	if n.words == 1 {
		return n.run1(s)
	}
	var d [globWords]uint64
	d[0] = 1
	n.closeStars(&d)
	for i := 0; i < len(s); i++ {
		m := &n.lit[n.slot[foldByte(s[i])]]
		var carry uint64
		alive := uint64(0)
		for w := 0; w < n.words; w++ {
			adv := d[w] & (m[w] | n.any[w])
			stay := d[w] & n.star[w]
			d[w] = adv<<1 | carry | stay
			carry = adv >> 63
			alive |= d[w]
		}
		if alive == 0 {
			return false
		}
		n.closeStars(&d)
	}
	return d[n.final/64]&(1<<(n.final%64)) != 0
}

// run1 is run for masks of up to 63 bytes (nearly all), in one word.
func (n *globNFA) run1(s string) bool {
	star, anyb := n.star[0], n.any[0]
	d := uint64(1)
	d |= (d & star) << 1
	for i := 0; i < len(s); i++ {
		d = (d&(n.lit[n.slot[foldByte(s[i])]][0]|anyb))<<1 | d&star
		if d == 0 {
			return false
		}
		d |= (d & star) << 1
	}
	return d&(1<<n.final) != 0
}

// closeStars lets every active '*' also match nothing. The canonical form
// has no two '*' in a row, so one step suffices.
func (n *globNFA) closeStars(d *[globWords]uint64) {
	var carry uint64
	for w := 0; w < n.words; w++ {
		s := d[w] & n.star[w]
		d[w] |= s<<1 | carry
		carry = s >> 63
	}
}
