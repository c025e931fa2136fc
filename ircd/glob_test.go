package ircd

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// refMatch is the textbook dynamic-programming glob match, slow and
// obviously right, to check compileGlob against.
func refMatch(pattern, s string) bool {
	s = strings.ToLower(s) // subjects here are ASCII
	prev := make([]bool, len(s)+1)
	prev[0] = true
	for i := 0; i < len(pattern); i++ {
		cur := make([]bool, len(s)+1)
		if pattern[i] == '*' {
			cur[0] = prev[0]
		}
		for j := 1; j <= len(s); j++ {
			switch pattern[i] {
			case '*':
				cur[j] = prev[j] || cur[j-1]
			case '?':
				cur[j] = prev[j-1]
			default:
				cur[j] = prev[j-1] && pattern[i] == s[j-1]
			}
		}
		prev = cur
	}
	return prev[len(s)]
}

func TestGlobMatchesReference(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"bob!*@*", "bob!bob@127.0.0.1", true},
		{"bob!*@*", "BOB!bob@127.0.0.1", true},
		{"bob!*@*", "bobby!bob@127.0.0.1", false},
		{"*!*@127.0.0.?", "x!y@127.0.0.1", true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"?", "", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"*a*a*a*a*a*a*a*b", strings.Repeat("a", 46), false},
		{"*?????????????????????????#n", "alice!alice@127.0.0.1", false},
		{"*?????????????????????????#n", strings.Repeat("x", 30) + "#N", true},
		{"*??*?", "ab", false},
		{"*??*?", "abc", true},
		{strings.Repeat("?", 70) + "*" + strings.Repeat("a", 70) + "*?", strings.Repeat("b", 70) + strings.Repeat("a", 80) + "c", true},
		{strings.Repeat("?*", 150) + "z", strings.Repeat("y", 200) + "z", true},
		{strings.Repeat("?*", 150) + "z", strings.Repeat("y", 100) + "z", false},
	}
	for _, c := range cases {
		g := compileGlob(c.pattern)
		if got := g.match(c.s); got != c.want || refMatch(c.pattern, c.s) != c.want {
			t.Errorf("match(%q, %q) = %v, reference %v, want %v", c.pattern, c.s, got, refMatch(c.pattern, c.s), c.want)
		}
	}
	// Random masks over a small alphabet, where backtracking and
	// overlapping fixed parts are common.
	r := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 200000 {
		p := word("ab*?", r.IntN(12))
		s := word("abAB", r.IntN(14))
		g := compileGlob(p)
		if got, want := g.match(s), refMatch(p, s); got != want {
			t.Fatalf("match(%q, %q) = %v, reference %v", p, s, got, want)
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("*a?b*", "xxaybzz")
	f.Add("*?????#n", "abcdefg#N")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 300 || len(s) > 300 {
			return
		}
		pattern = strings.ToLower(pattern)
		g := compileGlob(pattern)
		got := g.match(s)
		if len(pattern)+1 > globWords*64 && strings.ContainsAny(pattern, "?") {
			return // refused as too long for the automaton
		}
		if want := refMatch(pattern, s); got != want && strings.ToLower(s) == asciiLower(s) {
			t.Fatalf("match(%q, %q) = %v, reference %v", pattern, s, got, want)
		}
	})
}

// asciiLower folds only A-Z, as the server does; the reference uses
// strings.ToLower, so subjects where the two differ are skipped.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return string(b)
}

// One channel line's silence checks for a member holding 32 hostile
// masks; a line to 1,000 such members costs 1,000 of these.
func BenchmarkSilenceHostileMasks(b *testing.B) {
	masks := make([]string, 32)
	for i := range masks {
		masks[i] = "*" + strings.Repeat("?", 25) + "#" + strconv.Itoa(i)
	}
	l := newSilenceList(masks)
	prefix := "Mallory_the_attacker_long_nick!malloryxx@2001:db8:85a3:1234:5678:8a2e:370:7334"
	for b.Loop() {
		if l.matches(prefix) {
			b.Fatal("matched")
		}
	}
}

// The same masks crafted to get past the fixed head and tail of one
// sender, so every mask runs its automaton.
func BenchmarkSilenceHostileMasksAutomaton(b *testing.B) {
	prefix := "mallory_the_attacker_long_nick!malloryxx@2001:db8:85a3:1234:5678:8a2e:370:7331"
	masks := make([]string, 32)
	for i := range masks {
		masks[i] = "m*" + strings.Repeat("?", 5+i%10) + "*#" + strings.Repeat("?", 5) + "*1"
	}
	l := newSilenceList(masks)
	for b.Loop() {
		if l.matches(prefix) {
			b.Fatal("matched")
		}
	}
}
