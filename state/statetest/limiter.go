package statetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lobbychat/ircd/accounts"
)

// Clock is a clock the suite moves.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// LimiterKit opens a login limiter with a policy and a clock.
type LimiterKit struct {
	Open  func(t *testing.T, p accounts.LimiterPolicy, now func() time.Time) accounts.Limiter
	Close func(t *testing.T)
}

// RunLimiter checks the lockout and the throttle, in sequence and with
// attempts in flight at once.
func RunLimiter(t *testing.T, kit LimiterKit) {
	try := func(l accounts.Limiter, name, pw, addr string, right bool) (accounts.Verdict, bool) {
		at, v := l.Begin(name, pw, addr)
		if v.Result != accounts.OK {
			return v, false
		}
		return v, at.Done(right)
	}
	t.Run("Lockout", func(t *testing.T) {
		clock := NewClock()
		l := kit.Open(t, accounts.LimiterPolicy{MaxFailures: 3, Lockout: time.Minute}, clock.Now)
		defer kit.Close(t)
		starts := 0
		for i := range 3 {
			_, started := try(l, "alice", fmt.Sprint("wrong", i), "10.0.0.1", false)
			if started {
				starts++
			}
		}
		if starts != 1 {
			t.Fatalf("a lock started %d times", starts)
		}
		if v, _ := try(l, "ALICE", "right", "10.0.0.2", true); v.Result != accounts.LockedOut {
			t.Fatalf("right password while locked, from another address: %+v", v)
		}
		if _, locked := l.Locked("alice"); !locked {
			t.Fatal("Locked says no")
		}
		clock.Advance(time.Minute)
		if v, _ := try(l, "alice", "right", "10.0.0.1", true); v.Result != accounts.OK {
			t.Fatalf("after the lock: %+v", v)
		}
		// A success reset the count; a repeat of a wrong password is
		// refused unchecked and not counted.
		try(l, "alice", "typo", "10.0.0.1", false)
		for range 5 {
			if v, _ := try(l, "alice", "typo", "10.0.0.1", false); v.Result != accounts.BadCredentials {
				t.Fatalf("a repeated wrong password: %+v", v)
			}
		}
		if v, _ := try(l, "alice", "right", "10.0.0.1", true); v.Result != accounts.OK {
			t.Fatalf("after repeats: %+v", v)
		}
	})
	t.Run("InFlight", func(t *testing.T) {
		clock := NewClock()
		l := kit.Open(t, accounts.LimiterPolicy{MaxFailures: 3, Lockout: time.Minute}, clock.Now)
		defer kit.Close(t)
		const n = 100
		var mu sync.Mutex
		var held []accounts.Attempt
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				at, v := l.Begin("bob", fmt.Sprint("guess", i), fmt.Sprintf("10.0.%d.1", i%6))
				if v.Result == accounts.OK {
					mu.Lock()
					held = append(held, at)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(held) > 3 {
			t.Fatalf("%d checks at once for one name, want at most 3", len(held))
		}
		starts := 0
		for _, at := range held {
			if at.Done(false) {
				starts++
			}
		}
		if len(held) == 3 && starts != 1 {
			t.Fatalf("lock started %d times", starts)
		}
	})
	t.Run("Throttle", func(t *testing.T) {
		clock := NewClock()
		l := kit.Open(t, accounts.LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 4, AddrWindow: time.Minute}, clock.Now)
		defer kit.Close(t)
		for i := range 4 {
			try(l, fmt.Sprint("user", i), "wrong", "10.9.9.9", false)
		}
		if v, _ := try(l, "carol", "right", "10.9.9.9", true); v.Result != accounts.AddressThrottled {
			t.Fatalf("fifth name from a throttled address: %+v", v)
		}
		if v, _ := try(l, "carol", "right", "10.1.1.1", true); v.Result != accounts.OK {
			t.Fatalf("another address: %+v", v)
		}
		clock.Advance(time.Minute)
		if v, _ := try(l, "carol", "right", "10.9.9.9", true); v.Result != accounts.OK {
			t.Fatalf("after the window: %+v", v)
		}
	})
}
