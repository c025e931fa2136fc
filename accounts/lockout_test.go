package accounts

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (l *Lockout) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// newTestAccounts has a bcrypt and a plaintext account and locks after 3
// failures for a minute.
func newTestAccounts(t *testing.T) (*Accounts, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	db := mustParse(t, "Alice "+mustHash(t, "right", bcrypt.MinCost)+"\nBob plain\n")
	return New(db, NewLockout(3, time.Minute, clk.now)), clk
}

func auth(t *testing.T, a *Accounts, name, pw string, wantRes Result, wantRetry time.Duration) {
	t.Helper()
	_, res, retry := a.Authenticate(name, pw)
	if res != wantRes || retry != wantRetry {
		t.Fatalf("Authenticate(%q, %q) = %v, %v; want %v, %v", name, pw, res, retry, wantRes, wantRetry)
	}
}

func TestLockoutLocksAndExpires(t *testing.T) {
	a, clk := newTestAccounts(t)
	auth(t, a, "alice", "x1", BadCredentials, 0)
	auth(t, a, "alice", "x2", BadCredentials, 0)
	auth(t, a, "alice", "x3", BadCredentials, 0) // starts the lock, still BadCredentials
	auth(t, a, "alice", "right", LockedOut, time.Minute)

	// Attempts while locked, right or wrong, must not extend the lock.
	clk.advance(59 * time.Second)
	auth(t, a, "alice", "x", LockedOut, time.Second)
	auth(t, a, "alice", "right", LockedOut, time.Second)
	clk.advance(2 * time.Second)
	if name, res, _ := a.Authenticate("ALICE", "right"); res != OK || name != "Alice" {
		t.Fatalf("after lock expiry: %q, %v; want Alice, OK", name, res)
	}
	if n := a.Lockout().size(); n != 0 {
		t.Errorf("%d lockout entries after success, want 0", n)
	}
}

func TestLockoutUnlocksExactlyAtDuration(t *testing.T) {
	clk := newFakeClock()
	l := NewLockout(3, time.Minute, clk.now)
	for i := 0; i < 3; i++ {
		if started := l.Fail("bob"); started != (i == 2) {
			t.Fatalf("Fail #%d startedLock = %v", i+1, started)
		}
	}
	clk.advance(time.Minute - time.Nanosecond)
	if rem, locked := l.Locked("bob"); !locked || rem != time.Nanosecond {
		t.Fatalf("Locked = %v, %v; want 1ns, true", rem, locked)
	}
	if l.Fail("bob") {
		t.Error("Fail while locked reported starting a lock")
	}
	clk.advance(time.Nanosecond)
	if _, locked := l.Locked("bob"); locked {
		t.Fatal("still locked after duration")
	}
	if l.size() != 0 {
		t.Error("expired lock not dropped")
	}
	// The count starts over after a lock expires.
	if l.Fail("bob") || l.Fail("bob") {
		t.Error("lock restarted before maxFailures new failures")
	}
}

func TestLockoutSuccessResets(t *testing.T) {
	a, _ := newTestAccounts(t)
	auth(t, a, "bob", "x", BadCredentials, 0)
	auth(t, a, "bob", "x", BadCredentials, 0)
	auth(t, a, "bob", "plain", OK, 0)
	auth(t, a, "bob", "x", BadCredentials, 0)
	auth(t, a, "bob", "x", BadCredentials, 0)
	auth(t, a, "bob", "plain", OK, 0)
}

func TestLockoutCaseInsensitive(t *testing.T) {
	a, _ := newTestAccounts(t)
	auth(t, a, "alice", "x1", BadCredentials, 0)
	auth(t, a, "ALICE", "x2", BadCredentials, 0)
	auth(t, a, "Alice", "x3", BadCredentials, 0)
	auth(t, a, "aLiCe", "right", LockedOut, time.Minute)
	if _, locked := a.Lockout().Locked("alice"); !locked {
		t.Error("Locked(alice) = false")
	}
	// Other names are unaffected.
	auth(t, a, "bob", "plain", OK, 0)
}

func TestLockoutUnknownNames(t *testing.T) {
	a, _ := newTestAccounts(t)
	for i := 0; i < 3; i++ {
		auth(t, a, "Nobody", "x"+strconv.Itoa(i), BadCredentials, 0)
	}
	auth(t, a, "nobody", "x", LockedOut, time.Minute)
}

func TestLockoutSubLimitCountExpires(t *testing.T) {
	clk := newFakeClock()
	l := NewLockout(3, time.Minute, clk.now)
	l.Fail("bob")
	l.Fail("bob")
	clk.advance(time.Minute)
	if l.Fail("bob") {
		t.Error("stale failures still counted after duration")
	}
	// Failures less than duration apart keep accumulating.
	clk.advance(time.Minute - time.Second)
	if l.Fail("bob") || !l.Fail("bob") {
		t.Error("third failure within duration of the previous did not lock")
	}
}

func TestLockoutSetPolicy(t *testing.T) {
	clk := newFakeClock()
	l := NewLockout(5, time.Minute, clk.now)
	l.Fail("bob")
	l.SetPolicy(2, 10*time.Second)
	if !l.Fail("bob") {
		t.Fatal("existing count not kept across SetPolicy")
	}
	if rem, _ := l.Locked("bob"); rem != 10*time.Second {
		t.Errorf("remaining = %v, want 10s", rem)
	}

	l.SetPolicy(0, time.Minute)
	for i := 0; i < 10; i++ {
		if l.Fail("carol") {
			t.Fatal("disabled lockout started a lock")
		}
	}
	if _, locked := l.Locked("carol"); locked {
		t.Error("disabled lockout locked a name")
	}
}

func TestLockoutPrunes(t *testing.T) {
	clk := newFakeClock()
	l := NewLockout(3, time.Minute, clk.now)
	const n = 1000
	for i := 0; i < n; i++ {
		l.Fail("old" + strconv.Itoa(i))
	}
	clk.advance(time.Minute)
	for i := 0; i < n; i++ {
		l.Fail("new" + strconv.Itoa(i))
	}
	if got := l.size(); got > n {
		t.Errorf("%d entries tracked, want at most %d once the old ones expired", got, n)
	}
	if _, locked := l.Locked("new1"); locked {
		t.Error("single failure locked")
	}
	l.Succeed("new1")
	l.Fail("new2")
	l.Fail("new2")
	if _, locked := l.Locked("new2"); !locked {
		t.Error("recent entry was pruned")
	}
}

// A client reconnecting with the same saved wrong password must not lock
// the account; distinct guesses still do.
func TestLockoutRepeatedWrongPasswordCountsOnce(t *testing.T) {
	a, clk := newTestAccounts(t)
	for range 10 {
		auth(t, a, "alice", "saved-typo", BadCredentials, 0)
		clk.advance(10 * time.Second)
	}
	auth(t, a, "alice", "right", OK, 0)

	// Two distinct wrong passwords, repeated, plus a third distinct one lock.
	auth(t, a, "alice", "a", BadCredentials, 0)
	auth(t, a, "alice", "b", BadCredentials, 0)
	auth(t, a, "alice", "a", BadCredentials, 0)
	auth(t, a, "alice", "b", BadCredentials, 0)
	auth(t, a, "alice", "c", BadCredentials, 0)
	auth(t, a, "alice", "right", LockedOut, time.Minute)
}

func TestFailPasswordReportsCounting(t *testing.T) {
	l := NewLockout(3, time.Minute, newFakeClock().now)
	if _, counted := l.FailPassword("bob", "p"); !counted {
		t.Fatal("first wrong password not counted")
	}
	if _, counted := l.FailPassword("BOB", "p"); counted {
		t.Fatal("repeat counted")
	}
	if _, counted := l.FailPassword("bob", "q"); !counted {
		t.Fatal("new wrong password not counted")
	}
}
