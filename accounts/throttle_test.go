package accounts

import (
	"strconv"
	"testing"
	"time"
)

func TestThrottleBlocksAddressNotAccounts(t *testing.T) {
	a, clk := newTestAccounts(t)
	a.SetThrottle(NewThrottle(4, time.Minute, clk.now))
	// One address guesses across many names: after 4 counted failures the
	// address is refused, and the accounts it did not reach stay usable.
	for i := range 4 {
		if _, res, _ := a.AuthenticateFrom("user"+strconv.Itoa(i), "guess", "10.0.0.1"); res != BadCredentials {
			t.Fatalf("attempt %d: %v", i, res)
		}
	}
	if _, res, rem := a.AuthenticateFrom("alice", "right", "10.0.0.1"); res != AddressThrottled || rem != time.Minute {
		t.Fatalf("throttled address: %v %v", res, rem)
	}
	if _, locked := a.Lockout().Locked("alice"); locked {
		t.Fatal("a throttled attempt counted toward alice's lockout")
	}
	if name, res, _ := a.AuthenticateFrom("alice", "right", "10.0.0.2"); res != OK || name != "Alice" {
		t.Fatalf("other address: %v", res)
	}
	clk.advance(time.Minute)
	if _, res, _ := a.AuthenticateFrom("alice", "right", "10.0.0.1"); res != OK {
		t.Fatalf("after the window: %v", res)
	}
}

func TestThrottleIgnoresRepeatedWrongPassword(t *testing.T) {
	a, clk := newTestAccounts(t)
	a.SetThrottle(NewThrottle(2, time.Minute, clk.now))
	for range 5 {
		a.AuthenticateFrom("alice", "saved-typo", "10.0.0.1")
	}
	if _, res, _ := a.AuthenticateFrom("alice", "right", "10.0.0.1"); res != OK {
		t.Fatalf("repeats throttled the address: %v", res)
	}
}

func TestThrottleDisabled(t *testing.T) {
	th := NewThrottle(0, time.Minute, nil)
	for range 100 {
		th.Fail("x")
	}
	if _, b := th.Blocked("x"); b {
		t.Fatal("disabled throttle blocked")
	}
}
