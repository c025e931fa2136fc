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

type fingerprint [16]byte

// minSweep is the map size below which pruning is not worth the scan.
const minSweep = 64

type lockState struct {
	failures int
	last     time.Time // time of the last recorded failure
	until    time.Time // zero unless a lock was started
	wrong    [recentWrong]fingerprint
	nWrong   int // how many of wrong are set (ring index = nWrong % recentWrong)
}

func (s *lockState) seen(fp fingerprint) bool {
	for i := range min(s.nWrong, recentWrong) {
		if hmac.Equal(s.wrong[i][:], fp[:]) {
			return true
		}
	}
	return false
}

// Lockout counts consecutive failed logins per folded account name, whether
// or not the account exists (so locking does not reveal existence), from any
// address. maxFailures consecutive failures lock the name for duration.
//
// A run of failures that never reached the limit is forgotten after duration
// with no further failures; this keeps the map bounded by recent activity and
// means a slow guesser is only limited to maxFailures-1 guesses per duration.
type Lockout struct {
	mu        sync.Mutex
	max       int
	dur       time.Duration
	now       func() time.Time
	m         map[string]*lockState
	nextSweep int
	key       [32]byte // HMAC key for password fingerprints; never leaves memory
}

// NewLockout returns a Lockout. maxFailures < 1 or duration <= 0 disables
// new locks. now is the clock (time.Now if nil), injectable for tests.
func NewLockout(maxFailures int, duration time.Duration, now func() time.Time) *Lockout {
	if now == nil {
		now = time.Now
	}
	l := &Lockout{max: maxFailures, dur: duration, now: now, m: make(map[string]*lockState), nextSweep: minSweep}
	rand.Read(l.key[:])
	return l
}

func (l *Lockout) fingerprint(password string) fingerprint {
	h := hmac.New(sha256.New, l.key[:])
	h.Write([]byte(password))
	var fp fingerprint
	copy(fp[:], h.Sum(nil))
	return fp
}

// SetPolicy changes the policy, keeping counts and locks already in place
// (existing locks keep their original expiry).
func (l *Lockout) SetPolicy(maxFailures int, duration time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.dur = maxFailures, duration
}

func (l *Lockout) enabled() bool { return l.max > 0 && l.dur > 0 }

func (l *Lockout) expired(s *lockState, now time.Time) bool {
	if !s.until.IsZero() {
		return !now.Before(s.until)
	}
	return now.Sub(s.last) >= l.dur
}

// get returns the live state for key, dropping it if it has expired.
func (l *Lockout) get(key string, now time.Time) *lockState {
	s := l.m[key]
	if s != nil && l.expired(s, now) {
		delete(l.m, key)
		return nil
	}
	return s
}

// Locked reports whether name is locked now and for how much longer.
func (l *Lockout) Locked(name string) (remaining time.Duration, locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if s := l.get(Fold(name), now); s != nil && !s.until.IsZero() {
		return s.until.Sub(now), true
	}
	return 0, false
}

// Fail records a failed login for name and reports whether it started a
// lock. Failures while locked are ignored so that an attacker hammering a
// locked name cannot keep its owner locked out indefinitely.
func (l *Lockout) Fail(name string) (startedLock bool) {
	started, _ := l.fail(name, nil)
	return started
}

// FailPassword is Fail for a wrong password, except that a password
// already among the name's last few wrong ones is not counted again: a
// repeat tells a guesser nothing new, and it is what a client with a
// saved wrong password sends on every automatic reconnect (HexChat
// reconnects forever). Only an in-memory keyed hash of it is kept.
func (l *Lockout) FailPassword(name, password string) (startedLock, counted bool) {
	fp := l.fingerprint(password)
	return l.fail(name, &fp)
}

func (l *Lockout) fail(name string, fp *fingerprint) (startedLock, counted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	key := Fold(name)
	s := l.get(key, now)
	if s != nil && !s.until.IsZero() {
		return false, false
	}
	if !l.enabled() {
		return false, false
	}
	if s == nil {
		s = &lockState{}
		l.m[key] = s
		l.maybeSweep(now)
	}
	if fp != nil {
		if s.seen(*fp) {
			return false, false
		}
		s.wrong[s.nWrong%recentWrong] = *fp
		s.nWrong++
	}
	s.failures++
	s.last = now
	if s.failures >= l.max {
		s.until = now.Add(l.dur)
		return true, true
	}
	return false, true
}

// Succeed resets the failure count for name.
func (l *Lockout) Succeed(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, Fold(name))
}

// maybeSweep prunes expired entries once the map has doubled since the last
// sweep, so names that are never touched again still get dropped at an
// amortised O(1) cost per insert.
func (l *Lockout) maybeSweep(now time.Time) {
	if len(l.m) < l.nextSweep {
		return
	}
	for k, s := range l.m {
		if l.expired(s, now) {
			delete(l.m, k)
		}
	}
	l.nextSweep = max(2*len(l.m), minSweep)
}
