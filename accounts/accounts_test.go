package accounts

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func mustHash(t *testing.T, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func mustParse(t *testing.T, text string) *DB {
	t.Helper()
	db, err := Parse(strings.NewReader(text), "users.txt")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return db
}

func TestFoldAndValidName(t *testing.T) {
	for in, want := range map[string]string{
		"Alice": "alice", "alice": "alice", "[Foo]-BAR^": "[foo]-bar^", "ÅB": "Åb", "": "",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
	good := []string{"a", "Alice", "[x]", "`_^{|}\\", "a-1", "Z9", strings.Repeat("x", 30)}
	bad := []string{"", "1a", "-a", "a b", "a.b", "a!", "Ålice", "a\x00", strings.Repeat("x", 31)}
	for _, s := range good {
		if !ValidName(s) {
			t.Errorf("ValidName(%q) = false, want true", s)
		}
	}
	for _, s := range bad {
		if ValidName(s) {
			t.Errorf("ValidName(%q) = true, want false", s)
		}
	}
}

func TestParseGood(t *testing.T) {
	hb := mustHash(t, "bobpw", bcrypt.MinCost)
	hy := "$2y$" + strings.TrimPrefix(mustHash(t, "carolpw", bcrypt.MinCost), "$2a$")
	text := "\uFEFF# users\n" +
		"   # indented comment\n" +
		"\n" +
		"Alice   secret1  \n" +
		"\tbob\t" + hb + "\r\n" +
		"Carol " + hy + "\n" +
		"[Zed]-x pl4in\n"
	db := mustParse(t, text)

	if db.Len() != 4 {
		t.Fatalf("Len = %d, want 4", db.Len())
	}
	if got, want := db.Names(), []string{"[Zed]-x", "Alice", "bob", "Carol"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	if got, want := db.Plaintext(), []string{"[Zed]-x", "Alice"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Plaintext = %q, want %q", got, want)
	}
	for in, want := range map[string]string{"alice": "Alice", "ALICE": "Alice", "BOB": "bob", "carol": "Carol", "[zed]-X": "[Zed]-x"} {
		if got, ok := db.Lookup(in); !ok || got != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q, true", in, got, ok, want)
		}
	}
	if _, ok := db.Lookup("nobody"); ok {
		t.Error("Lookup(nobody) found an account")
	}
	if !db.Check("ALICE", "secret1") || !db.Check("bob", "bobpw") || !db.Check("carol", "carolpw") {
		t.Error("Check rejected a right password")
	}
}

func TestParseBad(t *testing.T) {
	valid := mustHash(t, "x", bcrypt.MinCost)
	tests := []struct {
		name, text string
		line       int
		want       string
	}{
		{"bad first char", "# c\n\n1abc pw\n", 3, "invalid account name"},
		{"bad char", "ok pw\nal.ice pw\n", 2, "invalid account name"},
		{"non-ascii", "Ålice pw\n", 1, "invalid account name"},
		{"too long", strings.Repeat("a", 31) + " pw\n", 1, "invalid account name"},
		{"missing password", "ok pw\n  alice  \n", 2, "missing password"},
		{"space in password", "alice foo bar\n", 1, "contains whitespace"},
		{"duplicate", "ok pw\nAlice a\n\nalice b\n", 4, `duplicate account "alice" (first on line 2)`},
		{"duplicate case", "Alice a\nALICE b\n", 2, `duplicate account "ALICE" (first on line 1)`},
		{"short hash", "ok pw\nalice $2a$04$short\n", 2, "malformed bcrypt"},
		{"bad cost", "alice $2b$99$" + valid[7:] + "\n", 1, "malformed bcrypt"},
		{"long hash", "a x\nb x\nalice " + valid + "x\n", 3, "malformed bcrypt"},
		{"bad hash chars", "alice " + valid[:59] + "!\n", 1, "malformed bcrypt"},
		{"line too long", "ok pw\nalice " + strings.Repeat("x", 2<<20) + "\n", 2, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Parse(strings.NewReader(tc.text), "users.txt")
			if err == nil {
				t.Fatalf("Parse succeeded (%d accounts), want error", db.Len())
			}
			prefix := "users.txt:" + strconv.Itoa(tc.line) + ": "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want prefix %q containing %q", err, prefix, tc.want)
			}
		})
	}
}

// withCost returns a copy of a bcrypt hash claiming another cost; it no
// longer matches its password, which parsing does not look at.
func withCost(hash string, cost int) string {
	return hash[:4] + fmt.Sprintf("%02d", cost) + hash[6:]
}

// A huge cost must be refused before anything is hashed: a $2a$31$ line
// once hung startup, 'ircd check' and SIGHUP reloads for days of CPU
// (the dummy hash for unknown names is generated at the file's cost).
func TestParseRefusesHighCost(t *testing.T) {
	h := mustHash(t, "x", bcrypt.MinCost)
	for text, want := range map[string]string{
		// Alone, it would also set the dummy hash's cost.
		"alice " + withCost(h, 31) + "\n":                           `users.txt:1: bcrypt cost 31 for account "alice" is above the maximum 14`,
		"a " + h + "\nb " + h + "\nalice " + withCost(h, 15) + "\n": `users.txt:3: bcrypt cost 15 for account "alice" is above the maximum 14`,
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Parse(strings.NewReader(text), "users.txt")
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %q", err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse still running after 10s, want %q", want)
		}
	}

	// The maximum itself loads (the dummy hash takes the commoner cost 4).
	db := mustParse(t, "a "+h+"\nb "+h+"\nalice "+withCost(h, maxCost)+"\n")
	if db.Len() != 3 {
		t.Fatalf("Len = %d", db.Len())
	}
	if bcrypt.DefaultCost > maxCost {
		t.Fatal("'ircd passwd' hashes above the cost a users file may use")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.txt")
	if err := os.WriteFile(path, []byte("alice pw\nbad! pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load error = %v, want prefix %q", err, path+":2: ")
	}
	if err := os.WriteFile(path, []byte("alice pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Load(path)
	if err != nil || db.Len() != 1 {
		t.Fatalf("Load = %v, %v", db, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("Load of missing file succeeded")
	}
}

func TestCheck(t *testing.T) {
	db := mustParse(t, "alice "+mustHash(t, "rightpw", bcrypt.MinCost)+"\nbob plainpw\n")
	cases := []struct {
		name, pw string
		want     bool
	}{
		{"alice", "rightpw", true},
		{"Alice", "rightpw", true},
		{"alice", "wrongpw", false},
		{"alice", "", false},
		{"bob", "plainpw", true},
		{"BOB", "plainpw", true},
		{"bob", "plainpW", false},
		{"bob", "plainpw2", false},
		{"bob", "", false},
		{"nobody", "rightpw", false},
		{"nobody", "", false},
	}
	for _, c := range cases {
		if got := db.Check(c.name, c.pw); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.name, c.pw, got, c.want)
		}
	}
}

// Timing is not asserted; instead check that unknown names have a bcrypt
// hash to be compared against, at the cost most used in the file.
func TestDummyHash(t *testing.T) {
	db := mustParse(t, "a "+mustHash(t, "x", bcrypt.MinCost)+
		"\nb "+mustHash(t, "x", bcrypt.MinCost+1)+
		"\nc "+mustHash(t, "x", bcrypt.MinCost)+"\nd plain\n")
	if len(db.dummyHash) == 0 {
		t.Fatal("no dummy hash on a DB with bcrypt entries")
	}
	if cost, err := bcrypt.Cost(db.dummyHash); err != nil || cost != bcrypt.MinCost {
		t.Errorf("dummy hash cost = %d, %v; want %d", cost, err, bcrypt.MinCost)
	}
	if db.Check("nobody", dummyPlaintext) {
		t.Error("unknown name accepted with the dummy password")
	}

	plain := mustParse(t, "a plain\n")
	if plain.dummyHash != nil {
		t.Error("plaintext-only DB generated a dummy hash")
	}
	if plain.Check("nobody", dummyPlaintext) {
		t.Error("unknown name accepted with the dummy password")
	}

	var nilDB *DB
	if nilDB.Check("a", "plain") || nilDB.Len() != 0 || nilDB.Names() != nil {
		t.Error("nil DB is not empty")
	}
}

// With any bcrypt entry in the file, every check does the same work, one
// bcrypt compare at the file's cost, whether the name is unknown, stored in
// plaintext (as README's "append a hash" leaves the demo accounts) or
// hashed: a known plaintext name once answered in 0.5 ms, an unknown one in
// 64 ms. Work is counted, not timed.
func TestEqualWorkPerName(t *testing.T) {
	db := mustParse(t, "alice "+mustHash(t, "alicepw", bcrypt.MinCost)+"\nbob bobpw\n")
	var costs []int
	db.onCompare = func(hash []byte) {
		c, _ := bcrypt.Cost(hash)
		costs = append(costs, c)
	}
	for _, c := range []struct {
		name, pw string
		want     bool
	}{
		{"alice", "alicepw", true},
		{"alice", "wrong", false},
		{"bob", "bobpw", true},
		{"BOB", "wrong", false},
		{"bob", "", false},
		{"nobody", "bobpw", false},
		{"nobody", "", false},
	} {
		costs = nil
		if got := db.Check(c.name, c.pw); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.name, c.pw, got, c.want)
		}
		if len(costs) != 1 || costs[0] != bcrypt.MinCost {
			t.Errorf("Check(%q, %q): bcrypt compares at costs %v, want one at %d", c.name, c.pw, costs, bcrypt.MinCost)
		}
	}

	// A plaintext-only file has no hash to spend time on.
	plain := mustParse(t, "bob bobpw\n")
	plain.onCompare = func([]byte) { t.Error("bcrypt compare in a plaintext-only file") }
	if !plain.Check("bob", "bobpw") || plain.Check("nobody", "x") {
		t.Error("plaintext-only Check wrong")
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret!")
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(h)); cost != bcrypt.DefaultCost {
		t.Errorf("cost = %d, want %d", cost, bcrypt.DefaultCost)
	}
	db := mustParse(t, "alice "+h+"\n")
	if !db.Check("alice", "s3cret!") || db.Check("alice", "s3cret") {
		t.Error("HashPassword output does not round-trip through Check")
	}
	if len(db.Plaintext()) != 0 {
		t.Error("hashed entry listed as plaintext")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("HashPassword accepted an empty password")
	}
}

func TestSwap(t *testing.T) {
	a := New(mustParse(t, "alice old\n"), nil)
	if r := a.AuthenticateFrom("alice", "old", testAddr); r.Result != OK {
		t.Fatalf("res = %v, want OK", r.Result)
	}
	a.Swap(mustParse(t, "Alice new\n"))
	if r := a.AuthenticateFrom("alice", "old", testAddr); r.Result != BadCredentials {
		t.Errorf("old password after swap: res = %v, want BadCredentials", r.Result)
	}
	if r := a.AuthenticateFrom("alice", "new", testAddr); r.Result != OK || r.Canonical != "Alice" {
		t.Errorf("new password after swap: %q, %v", r.Canonical, r.Result)
	}

	// Exercised under -race: reloads concurrent with logins.
	fresh := mustParse(t, "Alice new\n")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				a.AuthenticateFrom("alice", "new", testAddr)
				a.AuthenticateFrom("nobody", "x", testAddr)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				a.Swap(fresh)
			}
		}()
	}
	wg.Wait()
}

// Password checks run at most one fewer than the CPUs at once (at least
// one), so a burst of bcrypt logins leaves a CPU to chat: with every slot
// held by a compare that waits, one more login waits for a slot, and
// goes on when one is freed.
func TestChecksAtOnceAreBounded(t *testing.T) {
	db := mustParse(t, "alice "+mustHash(t, "alicepw", bcrypt.MinCost)+"\n")
	slots := max(1, runtime.GOMAXPROCS(0)-1)
	var inside, most atomic.Int32
	gate := make(chan struct{})
	db.onCompare = func([]byte) {
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-gate
		inside.Add(-1)
	}
	a := New(db, NewLoginLimiter(LimiterPolicy{}, nil))
	results := make(chan Result, slots+1)
	for i := range slots + 1 {
		go func() { results <- a.AuthenticateFrom("alice", "alicepw", fmt.Sprintf("10.0.0.%d", i)).Result }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inside.Load() < int32(slots) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d slots in use", inside.Load(), slots)
		}
		runtime.Gosched()
	}
	// The extra login must be waiting for a slot, not comparing: give it
	// a moment in which it could enter.
	time.Sleep(50 * time.Millisecond)
	if n := inside.Load(); n != int32(slots) {
		t.Fatalf("%d compares at once, want %d", n, slots)
	}
	close(gate)
	for range slots + 1 {
		select {
		case r := <-results:
			if r != OK {
				t.Fatalf("result %v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a login never got a slot")
		}
	}
	if m := most.Load(); m != int32(slots) {
		t.Fatalf("at most %d compares at once, want %d", m, slots)
	}
}
