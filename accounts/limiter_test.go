package accounts

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const testAddr = "192.0.2.1"

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (l *LoginLimiter) sizes() (names, addrs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.names), len(l.addrs)
}

var lockPolicy = LimiterPolicy{MaxFailures: 3, Lockout: time.Minute}

// newTestAccounts has a bcrypt and a plaintext account and locks after 3
// failures for a minute; the per-address throttle is off.
func newTestAccounts(t *testing.T) (*Accounts, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	db := mustParse(t, "Alice "+mustHash(t, "right", bcrypt.MinCost)+"\nBob plain\n")
	return New(db, NewLoginLimiter(lockPolicy, clk.now)), clk
}

func auth(t *testing.T, a *Accounts, name, pw string, wantRes Result, wantRetry time.Duration) AuthResult {
	t.Helper()
	r := a.AuthenticateFrom(name, pw, testAddr)
	if r.Result != wantRes || r.RetryIn != wantRetry {
		t.Fatalf("AuthenticateFrom(%q, %q) = %v, %v; want %v, %v", name, pw, r.Result, r.RetryIn, wantRes, wantRetry)
	}
	return r
}

// guesser records failures with passwords never used before.
type guesser struct {
	l *LoginLimiter
	n int
}

// fail records one wrong guess for name unless it is refused unchecked
// (a locked name), and reports whether it started a lock.
func (g *guesser) fail(name string) (lockStarted bool) {
	g.n++
	at, v := g.l.Begin(name, "guess"+strconv.Itoa(g.n), testAddr)
	if v.Result != OK {
		return false
	}
	return at.Done(false)
}

func TestLockoutLocksAndExpires(t *testing.T) {
	a, clk := newTestAccounts(t)
	auth(t, a, "alice", "x1", BadCredentials, 0)
	auth(t, a, "alice", "x2", BadCredentials, 0)
	if r := auth(t, a, "alice", "x3", BadCredentials, 0); !r.LockStarted { // still BadCredentials
		t.Fatal("third failure did not report the lock it started")
	}
	auth(t, a, "alice", "right", LockedOut, time.Minute)

	// Attempts while locked, right or wrong, must not extend the lock.
	clk.advance(59 * time.Second)
	auth(t, a, "alice", "x", LockedOut, time.Second)
	auth(t, a, "alice", "right", LockedOut, time.Second)
	clk.advance(2 * time.Second)
	if r := a.AuthenticateFrom("ALICE", "right", testAddr); r.Result != OK || r.Canonical != "Alice" {
		t.Fatalf("after lock expiry: %q, %v; want Alice, OK", r.Canonical, r.Result)
	}
	if n, _ := a.Limiter().(*LoginLimiter).sizes(); n != 0 {
		t.Errorf("%d lockout entries after success, want 0", n)
	}
}

func TestLockoutUnlocksExactlyAtDuration(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(lockPolicy, clk.now)
	g := &guesser{l: l}
	for i := 0; i < 3; i++ {
		if started := g.fail("bob"); started != (i == 2) {
			t.Fatalf("failure #%d lockStarted = %v", i+1, started)
		}
	}
	clk.advance(time.Minute - time.Nanosecond)
	if rem, locked := l.Locked("bob"); !locked || rem != time.Nanosecond {
		t.Fatalf("Locked = %v, %v; want 1ns, true", rem, locked)
	}
	if g.fail("bob") {
		t.Error("failure while locked reported starting a lock")
	}
	clk.advance(time.Nanosecond)
	if _, locked := l.Locked("bob"); locked {
		t.Fatal("still locked after duration")
	}
	if n, _ := l.sizes(); n != 0 {
		t.Error("expired lock not dropped")
	}
	// The count starts over after a lock expires, and the next lock is
	// reported again, once.
	if g.fail("bob") || g.fail("bob") || !g.fail("bob") {
		t.Error("second lock not reported on exactly its third failure")
	}
}

func TestLockoutSuccessResets(t *testing.T) {
	a, _ := newTestAccounts(t)
	auth(t, a, "bob", "x", BadCredentials, 0)
	auth(t, a, "bob", "y", BadCredentials, 0)
	auth(t, a, "bob", "plain", OK, 0)
	auth(t, a, "bob", "x", BadCredentials, 0)
	auth(t, a, "bob", "y", BadCredentials, 0)
	auth(t, a, "bob", "plain", OK, 0)
}

func TestLockoutCaseInsensitive(t *testing.T) {
	a, _ := newTestAccounts(t)
	auth(t, a, "alice", "x1", BadCredentials, 0)
	auth(t, a, "ALICE", "x2", BadCredentials, 0)
	auth(t, a, "Alice", "x3", BadCredentials, 0)
	auth(t, a, "aLiCe", "right", LockedOut, time.Minute)
	if _, locked := a.Limiter().Locked("alice"); !locked {
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
	g := &guesser{l: NewLoginLimiter(lockPolicy, clk.now)}
	g.fail("bob")
	g.fail("bob")
	clk.advance(time.Minute)
	if g.fail("bob") {
		t.Error("stale failures still counted after duration")
	}
	// Failures less than duration apart keep accumulating.
	clk.advance(time.Minute - time.Second)
	if g.fail("bob") || !g.fail("bob") {
		t.Error("third failure within duration of the previous did not lock")
	}
}

func TestLimiterSetPolicy(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(LimiterPolicy{MaxFailures: 5, Lockout: time.Minute}, clk.now)
	g := &guesser{l: l}
	g.fail("bob")
	l.SetPolicy(LimiterPolicy{MaxFailures: 2, Lockout: 10 * time.Second})
	if !g.fail("bob") {
		t.Fatal("existing count not kept across SetPolicy")
	}
	if rem, _ := l.Locked("bob"); rem != 10*time.Second {
		t.Errorf("remaining = %v, want 10s", rem)
	}

	l.SetPolicy(LimiterPolicy{MaxFailures: 0, Lockout: time.Minute})
	for i := 0; i < 10; i++ {
		if g.fail("carol") {
			t.Fatal("disabled lockout started a lock")
		}
	}
	if _, locked := l.Locked("carol"); locked {
		t.Error("disabled lockout locked a name")
	}
	if _, locked := l.Locked("bob"); !locked {
		t.Error("a lock in place did not survive SetPolicy")
	}

	// The address throttle turns on with counts from then on.
	l.SetPolicy(LimiterPolicy{AddrFailures: 2, AddrWindow: time.Minute})
	g.fail("dave")
	g.fail("erin")
	if _, v := l.Begin("frank", "x", testAddr); v.Result != AddressThrottled || v.RetryIn != time.Minute {
		t.Errorf("after 2 failures with AddrFailures 2: %+v", v)
	}
}

// Both maps hold only recent failures (and checks in flight): names and
// addresses never seen again are dropped.
func TestLimiterPrunes(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 3, AddrWindow: time.Minute}, clk.now)
	fail := func(name, addr string) {
		if at, v := l.Begin(name, "pw-"+addr, addr); v.Result == OK {
			at.Done(false)
		}
	}
	const n = 1000
	for i := 0; i < n; i++ {
		fail("old"+strconv.Itoa(i), "10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	clk.advance(time.Minute)
	for i := 0; i < n; i++ {
		fail("new"+strconv.Itoa(i), "10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	if names, addrs := l.sizes(); names > n || addrs > n {
		t.Errorf("%d names and %d addresses tracked, want at most %d each once the old ones expired", names, addrs, n)
	}
	if _, locked := l.Locked("new1"); locked {
		t.Error("single failure locked")
	}
	fail("new2", "10.2.0.1")
	at, _ := l.Begin("new2", "pw", "10.2.0.2")
	if !at.Done(false) {
		t.Error("recent entry was pruned")
	}
}

// An entry with a check in flight is never pruned, even when everything
// else about it has expired, so its Done always finds it.
func TestLimiterKeepsEntriesInFlight(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 3, AddrWindow: time.Minute}, clk.now)
	g := &guesser{l: l}
	g.fail("bob")
	g.fail("bob")
	held, v := l.Begin("bob", "slow", testAddr)
	if v.Result != OK {
		t.Fatal(v)
	}
	clk.advance(time.Hour)
	for i := range 3 * minSweep { // several sweeps of both maps
		at, _ := l.Begin("x"+strconv.Itoa(i), "pw", "10.9.0."+strconv.Itoa(i))
		at.Done(true)
	}
	if held.Done(false) {
		t.Error("stale failures from an hour ago counted toward a lock")
	}
	if names, addrs := l.sizes(); names != 1 || addrs != 1 {
		t.Errorf("%d names, %d addresses after the held check ended; want bob's one failure and its address", names, addrs)
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

// A repeat is refused without a password check: it can only be wrong,
// and an unthrottled repeat must not buy bcrypt work.
func TestRepeatRefusedUnchecked(t *testing.T) {
	a, _ := newTestAccounts(t)
	var compares int
	a.DB().onCompare = func([]byte) { compares++ }
	for range 5 {
		auth(t, a, "alice", "typo", BadCredentials, 0)
	}
	if compares != 1 {
		t.Errorf("%d bcrypt compares for 5 tries of one wrong password, want 1", compares)
	}
	l := a.Limiter()
	if _, v := l.Begin("ALICE", "typo", "10.0.0.9"); v.Result != BadCredentials {
		t.Errorf("repeat from another address: %+v", v)
	}
	if at, v := l.Begin("alice", "other", testAddr); v.Result != OK {
		t.Errorf("new wrong password refused: %+v", v)
	} else {
		at.Done(false)
	}
}

// A check in flight holds one of its name's remaining failures and one of
// its address's: it may be the wrong guess that ends the budget.
func TestInFlightChecksCountTowardBudgets(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 4, AddrWindow: time.Minute}, clk.now)
	g := &guesser{l: l}
	g.fail("alice")
	a1, _ := l.Begin("alice", "p1", "10.0.0.1")
	a2, _ := l.Begin("alice", "p2", "10.0.0.2")
	if _, v := l.Begin("alice", "p3", "10.0.0.3"); v.Result != LockedOut || v.RetryIn != busyRetry {
		t.Fatalf("1 failure + 2 in flight, max 3: %+v, want LockedOut in %v", v, busyRetry)
	}
	if a1.Done(false) || !a2.Done(false) {
		t.Fatal("the lock was not reported by the failure that reached 3")
	}
	if a1.Done(false) || a2.Done(false) {
		t.Fatal("a second Done counted again")
	}
	if rem, locked := l.Locked("alice"); !locked || rem != time.Minute {
		t.Fatalf("Locked = %v, %v", rem, locked)
	}

	// A success while others are in flight clears the failures but not
	// the reservations.
	g.fail("bob")
	b1, _ := l.Begin("bob", "w1", "10.0.0.5")
	right, _ := l.Begin("bob", "right", "10.0.0.6")
	right.Done(true)
	b2, _ := l.Begin("bob", "w2", "10.0.0.7")
	b3, v := l.Begin("bob", "w3", "10.0.0.8")
	if v.Result != OK {
		t.Fatalf("after a success, 2 in flight: %+v", v)
	}
	if _, v := l.Begin("bob", "w4", "10.0.0.9"); v.Result != LockedOut {
		t.Fatalf("3 in flight: %+v", v)
	}
	if b1.Done(false) || b2.Done(false) || !b3.Done(false) {
		t.Fatal("the three failures after the success did not lock exactly once")
	}

	// An address with 1 counted failure + 3 checks in flight.
	const addr = "10.1.1.1"
	u0, _ := l.Begin("u0", "pw", addr)
	u0.Done(false)
	var held []Attempt
	for _, name := range []string{"u1", "u2", "u3"} {
		at, v := l.Begin(name, "pw", addr)
		if v.Result != OK {
			t.Fatalf("%s: %+v", name, v)
		}
		held = append(held, at)
	}
	if _, v := l.Begin("u4", "pw", addr); v.Result != AddressThrottled || v.RetryIn != busyRetry {
		t.Fatalf("address with 1 failure + 3 in flight, max 4: %+v", v)
	}
	for _, at := range held {
		at.Done(true) // successes count toward no limit
	}
	if at, v := l.Begin("u4", "pw", addr); v.Result != OK {
		t.Fatalf("address after its checks succeeded: %+v", v)
	} else {
		at.Done(true)
	}
}

// gate holds every bcrypt compare of a DB until opened, so a test can see
// how many password checks run at once.
type gate struct {
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	compares atomic.Int32
}

func newGate(t *testing.T, db *DB) *gate {
	g := &gate{entered: make(chan struct{}, 1000), release: make(chan struct{})}
	db.onCompare = func([]byte) {
		g.compares.Add(1)
		g.entered <- struct{}{}
		<-g.release
	}
	t.Cleanup(g.open) // a failing test leaves no check blocked
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// settle waits until each of n attempts is either being checked (held at
// the gate) or answered.
func (g *gate) settle(t *testing.T, results <-chan AuthResult, n int) (checking int, answered []AuthResult) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for checking+len(answered) < n {
		select {
		case <-g.entered:
			checking++
		case r := <-results:
			answered = append(answered, r)
		case <-timeout:
			t.Fatalf("after 10s: %d checking, %d answered of %d", checking, len(answered), n)
		}
	}
	return checking, answered
}

// 100 simultaneous logins for one bcrypt account from 6 addresses cannot
// outrun the lockout: 60 at once once had 59 wrong passwords checked and
// the right 60th let in. Checks are held at a gate so that every attempt
// arrives while the first ones are still running, the worst case.
func TestParallelAttemptsCannotOutrunLockout(t *testing.T) {
	clk := newFakeClock()
	db := mustParse(t, "alice "+mustHash(t, "right", bcrypt.MinCost)+"\n")
	g := newGate(t, db)
	a := New(db, NewLoginLimiter(lockPolicy, clk.now))
	a.checks = make(chan struct{}, 100) // the limiter's budget is under test, not the CPU slots

	const n = 100
	results := make(chan AuthResult, n)
	start := make(chan struct{})
	for i := range n - 1 {
		go func() {
			<-start
			results <- a.AuthenticateFrom("alice", "wrong"+strconv.Itoa(i), "10.0.0."+strconv.Itoa(i%6))
		}()
	}
	close(start)
	checking, refused := g.settle(t, results, n-1)
	if checking != 3 {
		t.Fatalf("%d wrong guesses checked at once, want max_failures = 3", checking)
	}
	for _, r := range refused {
		if r.Result != LockedOut || r.RetryIn != busyRetry || r.LockStarted {
			t.Fatalf("attempt beyond the budget: %+v", r)
		}
	}
	// The right password, the 100th, arrives now: it is not checked.
	go func() { results <- a.AuthenticateFrom("alice", "right", "10.0.0.7") }()
	if checking, answered := g.settle(t, results, 1); checking != 0 || answered[0].Result != LockedOut {
		t.Fatalf("right password during the checks: checked %d, answered %+v", checking, answered)
	}

	g.open()
	lockStarts := 0
	for range 3 {
		r := <-results
		if r.Result != BadCredentials {
			t.Fatalf("checked wrong guess: %+v", r)
		}
		if r.LockStarted {
			lockStarts++
		}
	}
	if lockStarts != 1 {
		t.Fatalf("%d lockouts reported, want 1", lockStarts)
	}
	auth(t, a, "alice", "right", LockedOut, time.Minute)
	auth(t, a, "alice", "wrong-again", LockedOut, time.Minute)
	if c := g.compares.Load(); c != 3 {
		t.Fatalf("%d password checks while the lock holds, want 3", c)
	}
	clk.advance(time.Minute)
	auth(t, a, "alice", "right", OK, 0)
}

// The same without a gate, the right password at a random place in the
// burst: whatever the order, no more than max_failures wrong guesses are
// checked since the last success, and there is at most one lockout.
func TestParallelAttemptsAnyOrder(t *testing.T) {
	for round := range 3 {
		clk := newFakeClock()
		db := mustParse(t, "alice "+mustHash(t, "right", bcrypt.MinCost)+"\n")
		var compares atomic.Int32
		db.onCompare = func([]byte) { compares.Add(1) }
		a := New(db, NewLoginLimiter(lockPolicy, clk.now))

		const n = 100
		rightAt := rand.IntN(n)
		results := make([]AuthResult, n)
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				pw := "wrong" + strconv.Itoa(i)
				if i == rightAt {
					pw = "right"
				}
				ready.Done()
				<-start
				results[i] = a.AuthenticateFrom("alice", pw, "10.0.0."+strconv.Itoa(i%6))
			}()
		}
		ready.Wait()
		close(start)
		done.Wait()

		rightIn := results[rightAt].Result == OK
		wrongChecked, lockStarts := 0, 0
		for i, r := range results {
			if i != rightAt && r.Result == BadCredentials {
				wrongChecked++ // distinct passwords: each is one check
			}
			if r.LockStarted {
				lockStarts++
			}
		}
		if c := int(compares.Load()); c != wrongChecked+btoi(rightIn) {
			t.Fatalf("round %d: %d compares for %d wrong answers", round, c, wrongChecked)
		}
		if rightIn {
			// At most 2 wrong ones alongside the right one, 3 after it.
			if wrongChecked > 5 || lockStarts > 1 {
				t.Fatalf("round %d, right one in: %d wrong checked, %d lockouts", round, wrongChecked, lockStarts)
			}
		} else if wrongChecked != 3 || lockStarts != 1 || results[rightAt].Result != LockedOut {
			t.Fatalf("round %d: %d wrong checked, %d lockouts, right one %+v; want 3, 1, LockedOut",
				round, wrongChecked, lockStarts, results[rightAt])
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// One address checking many names at once is held to its budget too.
func TestParallelAttemptsFromOneAddress(t *testing.T) {
	clk := newFakeClock()
	db := mustParse(t, "alice "+mustHash(t, "right", bcrypt.MinCost)+"\n")
	g := newGate(t, db)
	a := New(db, NewLoginLimiter(LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 10, AddrWindow: 10 * time.Minute}, clk.now))
	a.checks = make(chan struct{}, 100) // the limiter's budget is under test, not the CPU slots

	const n = 100
	results := make(chan AuthResult, n)
	for i := range n {
		go func() { results <- a.AuthenticateFrom("user"+strconv.Itoa(i), "guess", "10.0.0.1") }()
	}
	checking, refused := g.settle(t, results, n)
	if checking != 10 {
		t.Fatalf("%d checks at once from one address, want ip_login_failures = 10", checking)
	}
	for _, r := range refused {
		if r.Result != AddressThrottled || r.RetryIn != busyRetry {
			t.Fatalf("attempt beyond the address's budget: %+v", r)
		}
	}
	g.open()
	for range checking {
		if r := <-results; r.Result != BadCredentials {
			t.Fatalf("checked guess: %+v", r)
		}
	}
	if r := a.AuthenticateFrom("alice", "right", "10.0.0.1"); r.Result != AddressThrottled || r.RetryIn != 10*time.Minute {
		t.Fatalf("address after 10 failures: %+v", r)
	}
	if c := g.compares.Load(); c != 10 {
		t.Fatalf("%d password checks, want 10", c)
	}
	auth(t, a, "alice", "right", OK, 0) // from another address
}

func TestThrottleBlocksAddressNotAccounts(t *testing.T) {
	a, clk := newTestAccounts(t)
	a.Limiter().SetPolicy(LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 4, AddrWindow: time.Minute})
	// One address guesses across many names: after 4 counted failures the
	// address is refused, and the accounts it did not reach stay usable.
	for i := range 4 {
		if r := a.AuthenticateFrom("user"+strconv.Itoa(i), "guess", "10.0.0.1"); r.Result != BadCredentials {
			t.Fatalf("attempt %d: %v", i, r.Result)
		}
	}
	if r := a.AuthenticateFrom("alice", "right", "10.0.0.1"); r.Result != AddressThrottled || r.RetryIn != time.Minute {
		t.Fatalf("throttled address: %v %v", r.Result, r.RetryIn)
	}
	if _, locked := a.Limiter().Locked("alice"); locked {
		t.Fatal("a throttled attempt counted toward alice's lockout")
	}
	if r := a.AuthenticateFrom("alice", "right", "10.0.0.2"); r.Result != OK || r.Canonical != "Alice" {
		t.Fatalf("other address: %v", r.Result)
	}
	clk.advance(time.Minute)
	if r := a.AuthenticateFrom("alice", "right", "10.0.0.1"); r.Result != OK {
		t.Fatalf("after the window: %v", r.Result)
	}
}

func TestThrottleIgnoresRepeatedWrongPassword(t *testing.T) {
	a, _ := newTestAccounts(t)
	a.Limiter().SetPolicy(LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 2, AddrWindow: time.Minute})
	for range 5 {
		a.AuthenticateFrom("alice", "saved-typo", "10.0.0.1")
	}
	if r := a.AuthenticateFrom("alice", "right", "10.0.0.1"); r.Result != OK {
		t.Fatalf("repeats throttled the address: %v", r.Result)
	}
}

func TestThrottleDisabled(t *testing.T) {
	l := NewLoginLimiter(LimiterPolicy{AddrFailures: 0, AddrWindow: time.Minute}, nil)
	for i := range 100 {
		at, v := l.Begin("u"+strconv.Itoa(i), "pw", "x")
		if v.Result != OK {
			t.Fatalf("disabled throttle refused: %+v", v)
		}
		at.Done(false)
	}
	if _, addrs := l.sizes(); addrs != 0 {
		t.Errorf("disabled throttle tracks %d addresses", addrs)
	}
}
