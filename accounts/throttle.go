package accounts

import (
	"sync"
	"time"
)

// Throttle limits failed logins per client address, so that one address
// cannot keep every account locked: once an address has made max counted
// failures within window, its further attempts are refused without being
// checked and without counting toward any account's lockout.
type Throttle struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	m      map[string]*addrState
}

type addrState struct {
	start    time.Time // first failure of the current window
	failures int
}

// NewThrottle returns a Throttle; max < 1 or window <= 0 disables it.
func NewThrottle(max int, window time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{max: max, window: window, now: now, m: make(map[string]*addrState)}
}

// SetPolicy changes the limits (config reload), keeping current counts.
func (t *Throttle) SetPolicy(max int, window time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.max, t.window = max, window
}

func (t *Throttle) live(addr string, now time.Time) *addrState {
	s := t.m[addr]
	if s != nil && now.Sub(s.start) >= t.window {
		delete(t.m, addr)
		return nil
	}
	return s
}

// Blocked reports whether addr is throttled now and for how much longer.
func (t *Throttle) Blocked(addr string) (remaining time.Duration, blocked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.max < 1 || t.window <= 0 {
		return 0, false
	}
	now := t.now()
	if s := t.live(addr, now); s != nil && s.failures >= t.max {
		return s.start.Add(t.window).Sub(now), true
	}
	return 0, false
}

// Fail records a failed login from addr.
func (t *Throttle) Fail(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.max < 1 || t.window <= 0 {
		return
	}
	now := t.now()
	s := t.live(addr, now)
	if s == nil {
		if len(t.m) > 4096 {
			t.sweep(now) // bounded by addresses seen within one window
		}
		s = &addrState{start: now}
		t.m[addr] = s
	}
	s.failures++
}

func (t *Throttle) sweep(now time.Time) {
	for a, s := range t.m {
		if now.Sub(s.start) >= t.window {
			delete(t.m, a)
		}
	}
}
