package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// recentWrong is how many distinct wrong passwords per name are
// remembered, so a repeat of one of them is not counted again.
const recentWrong = 3

// minSweep is the map size below which pruning is not worth the scan.
const minSweep = 64

// busyRetry is the retry time given to an attempt refused only because
// checks already running use up the rest of a budget: they end within one
// password check, after which the answer is known.
const busyRetry = time.Second

type fingerprint [16]byte

// LimiterPolicy sets a LoginLimiter's limits.
type LimiterPolicy struct {
	// MaxFailures consecutive failed logins for one name, from any
	// address, lock that name for Lockout. Either < 1 disables new locks.
	MaxFailures int
	Lockout     time.Duration
	// AddrFailures counted failures from one address within AddrWindow
	// (from the first of them) refuse that address until the window ends.
	// Either < 1 disables the per-address throttle.
	AddrFailures int
	AddrWindow   time.Duration
}

func (p LimiterPolicy) namesOn() bool { return p.MaxFailures > 0 && p.Lockout > 0 }
func (p LimiterPolicy) addrsOn() bool { return p.AddrFailures > 0 && p.AddrWindow > 0 }

// LoginLimiter rate-limits password checks: a lockout per folded account
// name (whether or not the account exists, so locking reveals nothing)
// and a throttle per client address, so that one address cannot lock
// every account.
//
// A check is reserved with Begin before the password is looked at and
// resolved with Done after. A check in flight counts toward its name's and
// its address's budget, so however many connections try at once, no more
// than MaxFailures wrong passwords for one name are ever evaluated before
// the lock begins.
//
// A run of failures that never reached the limit is forgotten after
// Lockout with no further failures; this keeps the maps bounded by recent
// activity and means a slow guesser is held to MaxFailures-1 guesses per
// Lockout.
type LoginLimiter struct {
	mu        sync.Mutex
	p         LimiterPolicy
	now       func() time.Time
	names     map[string]*nameState // keyed by Fold(name)
	addrs     map[string]*addrState
	nameSweep int // sweep names once the map reaches this size
	addrSweep int
	key       [32]byte // HMAC key for password fingerprints; never leaves memory
}

type nameState struct {
	failures int
	inflight int       // checks begun and not yet done; the entry stays while > 0
	last     time.Time // time of the last counted failure
	until    time.Time // zero unless a lock was started
	wrong    [recentWrong]fingerprint
	nWrong   int // how many of wrong are set (ring index = nWrong % recentWrong)
}

func (s *nameState) seen(fp fingerprint) bool {
	for i := range min(s.nWrong, recentWrong) {
		if hmac.Equal(s.wrong[i][:], fp[:]) {
			return true
		}
	}
	return false
}

type addrState struct {
	start    time.Time // first counted failure of the current window
	failures int
	inflight int // the entry stays while > 0
}

// NewLoginLimiter returns a LoginLimiter with policy p. now is the clock
// (time.Now if nil), injectable for tests.
func NewLoginLimiter(p LimiterPolicy, now func() time.Time) *LoginLimiter {
	if now == nil {
		now = time.Now
	}
	l := &LoginLimiter{
		p: p, now: now,
		names: make(map[string]*nameState), addrs: make(map[string]*addrState),
		nameSweep: minSweep, addrSweep: minSweep,
	}
	rand.Read(l.key[:])
	return l
}

// SetPolicy changes the limits (config reload), keeping counts, checks in
// flight and locks already in place (existing locks keep their expiry).
func (l *LoginLimiter) SetPolicy(p LimiterPolicy) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.p = p
}

func (l *LoginLimiter) fingerprint(password string) fingerprint {
	h := hmac.New(sha256.New, l.key[:])
	h.Write([]byte(password))
	var fp fingerprint
	copy(fp[:], h.Sum(nil))
	return fp
}

// Verdict is Begin's answer.
type Verdict struct {
	// Result is OK if the password may be checked (then call Done), or
	// the refusal: LockedOut (the name is locked, or checks in flight
	// already use up its remaining failures), AddressThrottled, or
	// BadCredentials for a repeat of one of the name's recent wrong
	// passwords, refused without a check and counted nowhere.
	Result  Result
	RetryIn time.Duration // for LockedOut and AddressThrottled
}

// Limiter rate-limits password checks; LoginLimiter is the in-process
// one, and a cluster keeps one that all its nodes share. A check is
// reserved with Begin before the password is looked at and resolved with
// the Attempt's Done after, so checks in flight count toward the limits.
type Limiter interface {
	Begin(name, password, addr string) (Attempt, Verdict)
	Locked(name string) (remaining time.Duration, locked bool)
	SetPolicy(p LimiterPolicy)
}

// Attempt is a password check reserved by Begin. Call Done exactly once;
// lockStarted reports that this failure started the name's lock, which
// happens once per lockout.
type Attempt interface {
	Done(ok bool) (lockStarted bool)
}

// reservation is LoginLimiter's Attempt.
type reservation struct {
	l        *LoginLimiter
	key      string // Fold(name)
	addr     string
	fp       fingerprint
	nameHeld bool // counted in names[key].inflight
	addrHeld bool // counted in addrs[addr].inflight
	done     bool // guarded by l.mu
}

// Begin decides whether a login for name from addr may have its password
// checked. A throttled address is refused before anything else; then a
// locked name (not extending the lock); then a recent wrong password.
// Otherwise the check is reserved against both budgets, or refused if
// failures plus checks in flight already reach either limit.
func (l *LoginLimiter) Begin(name, password, addr string) (Attempt, Verdict) {
	fp := l.fingerprint(password)
	key := Fold(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()

	a := l.liveAddr(addr, now)
	if l.p.addrsOn() && a != nil && a.failures+a.inflight >= l.p.AddrFailures {
		retry := busyRetry
		if a.failures >= l.p.AddrFailures {
			retry = a.start.Add(l.p.AddrWindow).Sub(now)
		}
		return nil, Verdict{Result: AddressThrottled, RetryIn: retry}
	}
	n := l.liveName(key, now)
	if n != nil && !n.until.IsZero() {
		return nil, Verdict{Result: LockedOut, RetryIn: n.until.Sub(now)}
	}
	if n != nil && n.seen(fp) {
		return nil, Verdict{Result: BadCredentials}
	}
	if l.p.namesOn() && n != nil && n.failures+n.inflight >= l.p.MaxFailures {
		return nil, Verdict{Result: LockedOut, RetryIn: busyRetry}
	}

	at := &reservation{l: l, key: key, addr: addr, fp: fp}
	if l.p.namesOn() {
		if n == nil {
			l.maybeSweepNames(now)
			n = &nameState{}
			l.names[key] = n
		}
		n.inflight++
		at.nameHeld = true
	}
	if l.p.addrsOn() {
		if a == nil {
			l.maybeSweepAddrs(now)
			a = &addrState{}
			l.addrs[addr] = a
		}
		a.inflight++
		at.addrHeld = true
	}
	return at, Verdict{Result: OK}
}

// Done resolves the check: ok means the password was right. A success
// clears the name's failures; a failure counts toward the name and the
// address unless it repeats a recent wrong password (one checked at the
// same time resolved first). lockStarted reports that this failure started
// the name's lock, which happens once per lockout.
func (at *reservation) Done(ok bool) (lockStarted bool) {
	l := at.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.done {
		return false
	}
	at.done = true
	now := l.now()

	counted := !ok
	if at.nameHeld {
		n := l.names[at.key] // never dropped while held
		n.inflight--
		l.refreshName(n, now)
		switch {
		case ok:
			*n = nameState{inflight: n.inflight}
		case !n.until.IsZero() || n.seen(at.fp):
			// Locked meanwhile (only a lower limit from SetPolicy does
			// that) or a repeat: tells a guesser nothing new.
			counted = false
		case l.p.namesOn():
			n.wrong[n.nWrong%recentWrong] = at.fp
			n.nWrong++
			n.failures++
			n.last = now
			if n.failures >= l.p.MaxFailures {
				n.until = now.Add(l.p.Lockout)
				lockStarted = true
			}
		}
		if n.inflight == 0 && n.idle() {
			delete(l.names, at.key)
		}
	}
	if at.addrHeld {
		a := l.addrs[at.addr]
		a.inflight--
		l.refreshAddr(a, now)
		if counted && l.p.addrsOn() {
			if a.failures == 0 {
				a.start = now
			}
			a.failures++
		}
		if a.inflight == 0 && a.failures == 0 {
			delete(l.addrs, at.addr)
		}
	}
	return lockStarted
}

// Locked reports whether name is locked now and for how much longer.
func (l *LoginLimiter) Locked(name string) (remaining time.Duration, locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if n := l.liveName(Fold(name), now); n != nil && !n.until.IsZero() {
		return n.until.Sub(now), true
	}
	return 0, false
}

func (n *nameState) idle() bool { return n.failures == 0 && n.until.IsZero() }

// refreshName forgets an expired lock, or a run of failures with none for
// Lockout.
func (l *LoginLimiter) refreshName(n *nameState, now time.Time) {
	var expired bool
	if !n.until.IsZero() {
		expired = !now.Before(n.until)
	} else {
		expired = n.failures > 0 && now.Sub(n.last) >= l.p.Lockout
	}
	if expired {
		*n = nameState{inflight: n.inflight}
	}
}

func (l *LoginLimiter) refreshAddr(a *addrState, now time.Time) {
	if a.failures > 0 && now.Sub(a.start) >= l.p.AddrWindow {
		a.failures, a.start = 0, time.Time{}
	}
}

// liveName returns the state for key with expired parts forgotten, or nil
// if nothing is left of it.
func (l *LoginLimiter) liveName(key string, now time.Time) *nameState {
	n := l.names[key]
	if n == nil {
		return nil
	}
	l.refreshName(n, now)
	if n.inflight == 0 && n.idle() {
		delete(l.names, key)
		return nil
	}
	return n
}

func (l *LoginLimiter) liveAddr(addr string, now time.Time) *addrState {
	a := l.addrs[addr]
	if a == nil {
		return nil
	}
	l.refreshAddr(a, now)
	if a.inflight == 0 && a.failures == 0 {
		delete(l.addrs, addr)
		return nil
	}
	return a
}

// maybeSweepNames prunes expired entries once the map has doubled since
// the last sweep, so names that are never tried again still get dropped at
// an amortised O(1) cost per insert. The map is bounded by names with
// failures within Lockout plus checks in flight.
func (l *LoginLimiter) maybeSweepNames(now time.Time) {
	if len(l.names) < l.nameSweep {
		return
	}
	for k := range l.names {
		l.liveName(k, now)
	}
	l.nameSweep = max(2*len(l.names), minSweep)
}

// maybeSweepAddrs is maybeSweepNames for addresses: bounded by those with
// failures within AddrWindow plus checks in flight.
func (l *LoginLimiter) maybeSweepAddrs(now time.Time) {
	if len(l.addrs) < l.addrSweep {
		return
	}
	for a := range l.addrs {
		l.liveAddr(a, now)
	}
	l.addrSweep = max(2*len(l.addrs), minSweep)
}
