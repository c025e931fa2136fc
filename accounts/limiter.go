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

// Fingerprint is a keyed hash of a wrong password, so that a repeat can
// be told without keeping the password.
type Fingerprint [16]byte

// NewFingerprint hashes password with key (HMAC-SHA-256, cut to 16 bytes).
func NewFingerprint(key []byte, password string) Fingerprint {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(password))
	var fp Fingerprint
	copy(fp[:], h.Sum(nil))
	return fp
}

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
	names     map[string]*NameRecord // keyed by Fold(name)
	addrs     map[string]*AddrRecord
	nameSweep int // sweep names once the map reaches this size
	addrSweep int
	key       [32]byte // HMAC key for password fingerprints; never leaves memory
}

// NameRecord is what a limiter knows of one account name, and AddrRecord
// of one client address. LoginLimiter keeps them in memory; a cluster
// keeps them in a shared store and changes them with compare-and-set. The
// rules that read and change them are LimiterPolicy's methods, the same
// for both.
type NameRecord struct {
	Failures int
	Inflight int       // checks begun and not yet done
	Began    time.Time // when the last of them began
	Last     time.Time // the last counted failure
	Until    time.Time // zero unless a lock was started
	Wrong    [recentWrong]Fingerprint
	NWrong   int // how many of Wrong are set (ring index = NWrong % recentWrong)
}

// AddrRecord: see NameRecord.
type AddrRecord struct {
	Start    time.Time // first counted failure of the current window
	Failures int
	Inflight int
	Began    time.Time
}

func (n *NameRecord) seen(fp Fingerprint) bool {
	for i := range min(n.NWrong, recentWrong) {
		if hmac.Equal(n.Wrong[i][:], fp[:]) {
			return true
		}
	}
	return false
}

// Idle reports that the record holds nothing: it may be dropped.
func (n *NameRecord) Idle() bool { return n.Inflight == 0 && n.Failures == 0 && n.Until.IsZero() }

// Idle reports that the record holds nothing: it may be dropped.
func (a *AddrRecord) Idle() bool { return a.Inflight == 0 && a.Failures == 0 }

// staleCheck is how long a check may stay in flight before it is taken
// for lost (its node died between Begin and Done). A bcrypt check takes
// milliseconds.
const staleCheck = time.Minute

// NewLoginLimiter returns a LoginLimiter with policy p. now is the clock
// (time.Now if nil), injectable for tests.
func NewLoginLimiter(p LimiterPolicy, now func() time.Time) *LoginLimiter {
	if now == nil {
		now = time.Now
	}
	l := &LoginLimiter{
		p: p, now: now,
		names: make(map[string]*NameRecord), addrs: make(map[string]*AddrRecord),
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

func (l *LoginLimiter) fingerprint(password string) Fingerprint {
	return NewFingerprint(l.key[:], password)
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
	fp       Fingerprint
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
	p := l.p
	a := l.liveAddr(addr, now)
	if v, ok := p.CheckAddr(a, now); !ok {
		return nil, v
	}
	n := l.liveName(key, now)
	if v, ok := p.CheckName(n, fp, now); !ok {
		return nil, v
	}
	at := &reservation{l: l, key: key, addr: addr, fp: fp}
	if p.namesOn() {
		if n == nil {
			l.maybeSweepNames(now)
			n = &NameRecord{}
			l.names[key] = n
		}
		p.Reserve(n, nil, now)
		at.nameHeld = true
	}
	if p.addrsOn() {
		if a == nil {
			l.maybeSweepAddrs(now)
			a = &AddrRecord{}
			l.addrs[addr] = a
		}
		p.Reserve(nil, a, now)
		at.addrHeld = true
	}
	return at, Verdict{Result: OK}
}

// CheckAddr decides whether a check from the address of record a (nil:
// none yet) may begin: not if the address is throttled, or if its
// failures and the checks in flight reach its budget.
func (p LimiterPolicy) CheckAddr(a *AddrRecord, now time.Time) (Verdict, bool) {
	if a == nil || !p.addrsOn() {
		return Verdict{}, true
	}
	p.RefreshAddr(a, now)
	if a.Failures+a.Inflight < p.AddrFailures {
		return Verdict{}, true
	}
	retry := busyRetry
	if a.Failures >= p.AddrFailures {
		retry = a.Start.Add(p.AddrWindow).Sub(now)
	}
	return Verdict{Result: AddressThrottled, RetryIn: retry}, false
}

// CheckName decides whether a check of a password (fingerprint fp) for
// the name of record n (nil: none yet) may begin: not while the name is
// locked, not for a repeat of one of its recent wrong passwords, and not
// once failures and checks in flight reach MaxFailures.
func (p LimiterPolicy) CheckName(n *NameRecord, fp Fingerprint, now time.Time) (Verdict, bool) {
	if n == nil {
		return Verdict{}, true
	}
	p.RefreshName(n, now)
	switch {
	case !n.Until.IsZero():
		return Verdict{Result: LockedOut, RetryIn: n.Until.Sub(now)}, false
	case n.seen(fp):
		return Verdict{Result: BadCredentials}, false
	case p.namesOn() && n.Failures+n.Inflight >= p.MaxFailures:
		return Verdict{Result: LockedOut, RetryIn: busyRetry}, false
	}
	return Verdict{}, true
}

// Reserve counts a check in flight against n and a (either may be nil).
func (p LimiterPolicy) Reserve(n *NameRecord, a *AddrRecord, now time.Time) {
	if n != nil {
		n.Inflight++
		n.Began = now
	}
	if a != nil {
		a.Inflight++
		a.Began = now
	}
}

// ResolveName ends a check reserved on n: ok means the password was
// right, which clears the name's failures; a wrong one counts unless it
// repeats a recent wrong password. lockStarted reports that this failure
// started the lock, which happens once per lockout.
func (p LimiterPolicy) ResolveName(n *NameRecord, ok bool, fp Fingerprint, now time.Time) (lockStarted, counted bool) {
	n.Inflight = max(n.Inflight-1, 0)
	p.RefreshName(n, now)
	switch {
	case ok:
		*n = NameRecord{Inflight: n.Inflight, Began: n.Began}
	case !n.Until.IsZero() || n.seen(fp):
		// Locked meanwhile (only a lower limit from SetPolicy does that)
		// or a repeat: tells a guesser nothing new.
	case p.namesOn():
		n.Wrong[n.NWrong%recentWrong] = fp
		n.NWrong++
		n.Failures++
		n.Last = now
		counted = true
		if n.Failures >= p.MaxFailures {
			n.Until = now.Add(p.Lockout)
			lockStarted = true
		}
	}
	return lockStarted, counted
}

// ResolveAddr ends a check reserved on a; counted is whether it was a
// failure that counted toward its name.
func (p LimiterPolicy) ResolveAddr(a *AddrRecord, counted bool, now time.Time) {
	a.Inflight = max(a.Inflight-1, 0)
	p.RefreshAddr(a, now)
	if counted && p.addrsOn() {
		if a.Failures == 0 {
			a.Start = now
		}
		a.Failures++
	}
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
		lockStarted, counted = l.p.ResolveName(n, ok, at.fp, now)
		if n.Idle() {
			delete(l.names, at.key)
		}
	}
	if at.addrHeld {
		a := l.addrs[at.addr]
		l.p.ResolveAddr(a, counted, now)
		if a.Idle() {
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
	if n := l.liveName(Fold(name), now); n != nil && !n.Until.IsZero() {
		return n.Until.Sub(now), true
	}
	return 0, false
}

// RefreshName forgets an expired lock, a run of failures with none for
// Lockout, and checks in flight for so long that their node must have
// died.
func (p LimiterPolicy) RefreshName(n *NameRecord, now time.Time) {
	if n.Inflight > 0 && now.Sub(n.Began) >= staleCheck {
		n.Inflight = 0
	}
	var expired bool
	if !n.Until.IsZero() {
		expired = !now.Before(n.Until)
	} else {
		expired = n.Failures > 0 && now.Sub(n.Last) >= p.Lockout
	}
	if expired {
		*n = NameRecord{Inflight: n.Inflight, Began: n.Began}
	}
}

// RefreshAddr is RefreshName for an address: its window ends.
func (p LimiterPolicy) RefreshAddr(a *AddrRecord, now time.Time) {
	if a.Inflight > 0 && now.Sub(a.Began) >= staleCheck {
		a.Inflight = 0
	}
	if a.Failures > 0 && now.Sub(a.Start) >= p.AddrWindow {
		a.Failures, a.Start = 0, time.Time{}
	}
}

// liveName returns the record for key with expired parts forgotten, or
// nil if nothing is left of it.
func (l *LoginLimiter) liveName(key string, now time.Time) *NameRecord {
	n := l.names[key]
	if n == nil {
		return nil
	}
	l.p.RefreshName(n, now)
	if n.Idle() {
		delete(l.names, key)
		return nil
	}
	return n
}

func (l *LoginLimiter) liveAddr(addr string, now time.Time) *AddrRecord {
	a := l.addrs[addr]
	if a == nil {
		return nil
	}
	l.p.RefreshAddr(a, now)
	if a.Idle() {
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
