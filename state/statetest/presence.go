package statetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/state"
)

// PresenceKit opens a presence for the suite; Reopen (after Close) must
// remember the last-seen records of users who left before.
type PresenceKit struct {
	Open   func(t *testing.T, now func() time.Time) ircd.Presence
	Reopen func(t *testing.T, now func() time.Time) ircd.Presence
	Close  func(t *testing.T)
}

type watchEvent struct {
	nick, session string
	online        bool
}

type recorder chan watchEvent

func (r recorder) PresenceChanged(u state.UserInfo, online bool) {
	r <- watchEvent{u.Nick, u.Session, online}
}

func (r recorder) expect(t *testing.T, want watchEvent) {
	t.Helper()
	select {
	case got := <-r:
		if got != want {
			t.Fatalf("watcher heard %+v, want %+v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("watcher did not hear %+v", want)
	}
}

func (r recorder) expectNone(t *testing.T) {
	t.Helper()
	select {
	case got := <-r:
		t.Fatalf("watcher heard %+v, want nothing", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func user(nick, session string, signon time.Time) state.UserInfo {
	return state.UserInfo{Nick: nick, User: nick, Host: "10.0.0.1", Realname: nick + " real", Account: nick,
		Signon: signon, Idle: signon, Node: "n1", Session: session}
}

// sameUser compares two infos field by field, times by instant (a
// backend that encodes them need not keep the location).
func sameUser(a, b state.UserInfo) bool {
	return a.Nick == b.Nick && a.User == b.User && a.Host == b.Host && a.Realname == b.Realname &&
		a.Account == b.Account && a.Away == b.Away && a.Node == b.Node && a.Session == b.Session &&
		a.Signon.Equal(b.Signon) && a.Idle.Equal(b.Idle)
}

// RunPresence checks the one-session rule, lookups, last-seen and watches.
func RunPresence(t *testing.T, kit PresenceKit) {
	ctx := context.Background()
	clock := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	now := func() time.Time { return clock }

	t.Run("Claims", func(t *testing.T) {
		p := kit.Open(t, now)
		defer kit.Close(t)
		alice := user("alice", "s1", clock)
		if err := p.Claim(ctx, alice, ""); err != nil {
			t.Fatal(err)
		}
		var held *state.HeldError
		if err := p.Claim(ctx, user("ALICE", "s2", clock), ""); !errors.As(err, &held) || held.Holder.Session != "s1" {
			t.Fatalf("second claim: %v", err)
		}
		if err := p.Claim(ctx, user("alice", "s2", clock), "s-other"); !errors.As(err, &held) {
			t.Fatalf("displacing the wrong session: %v", err)
		}
		if u, ok := p.Lookup("Alice"); !ok || !sameUser(u, alice) {
			t.Fatalf("lookup = %+v, %v", u, ok)
		}
		if err := p.Claim(ctx, user("bob", "s3", clock), ""); err != nil {
			t.Fatal(err)
		}
		if n := p.Count(); n != 2 {
			t.Fatalf("count %d", n)
		}
		var nicks []string
		p.Online(func(u state.UserInfo) bool { nicks = append(nicks, u.Nick); return true })
		slices.Sort(nicks)
		if !slices.Equal(nicks, []string{"alice", "bob"}) {
			t.Fatalf("online %v", nicks)
		}
		// Displace exactly the holder: the new session takes over.
		alice2 := user("alice", "s2", clock.Add(time.Minute))
		if err := p.Claim(ctx, alice2, "s1"); err != nil {
			t.Fatal(err)
		}
		if p.Release(ctx, alice, clock) {
			t.Fatal("the displaced session released the new one's claim")
		}
		if u, _ := p.Lookup("alice"); u.Session != "s2" {
			t.Fatalf("holder %q", u.Session)
		}
		away := alice2
		away.Away = "lunch"
		if err := p.Update(ctx, away); err != nil {
			t.Fatal(err)
		}
		stale := alice
		stale.Away = "stale"
		p.Update(ctx, stale)
		if u, _ := p.Lookup("alice"); u.Away != "lunch" {
			t.Fatalf("away %q", u.Away)
		}
		if !p.Release(ctx, alice2, clock.Add(2*time.Minute)) {
			t.Fatal("release refused")
		}
		if _, ok := p.Lookup("alice"); ok {
			t.Fatal("still online after release")
		}
		// A displace of a session that has gone meanwhile is a plain claim.
		if err := p.Claim(ctx, user("alice", "s4", clock), "s2"); err != nil {
			t.Fatal(err)
		}
		p.Release(ctx, user("alice", "s4", clock), clock)
		p.Release(ctx, user("bob", "s3", clock), clock)
	})

	t.Run("LastSeen", func(t *testing.T) {
		p := kit.Open(t, now)
		left := clock.Add(-30 * time.Minute)
		old := clock.Add(-3 * time.Hour)
		for _, u := range []struct {
			nick string
			at   time.Time
		}{{"carol", left}, {"dave", old}, {"erin", left}} {
			info := user(u.nick, u.nick+"-s", u.at)
			if err := p.Claim(ctx, info, ""); err != nil {
				t.Fatal(err)
			}
			p.Release(ctx, info, u.at)
		}
		if err := p.Claim(ctx, user("erin", "erin-s2", clock), ""); err != nil { // back online
			t.Fatal(err)
		}
		seen, ok := p.LastSeen("Carol")
		if !ok || !seen.At.Equal(left) || seen.User != "carol" || seen.Host != "10.0.0.1" || seen.Realname != "carol real" {
			t.Fatalf("carol last seen %+v, %v", seen, ok)
		}
		var recent []string
		p.Recent(clock.Add(-time.Hour), func(s state.Seen) bool { recent = append(recent, s.Nick); return true })
		if !slices.Equal(recent, []string{"carol"}) {
			t.Fatalf("recent %v, want carol (dave left too long ago, erin is online)", recent)
		}
		if _, ok := p.LastSeen("nobody"); ok {
			t.Fatal("last seen for someone never seen")
		}
		p.Release(ctx, user("erin", "erin-s2", clock), clock)
		if kit.Reopen != nil {
			kit.Close(t)
			p = kit.Reopen(t, now)
			seen, ok = p.LastSeen("carol")
			if !ok || !seen.At.Equal(left) || seen.Realname != "carol real" {
				t.Fatalf("after reopening, carol last seen %+v, %v", seen, ok)
			}
		}
		kit.Close(t)
	})

	t.Run("Watch", func(t *testing.T) {
		p := kit.Open(t, now)
		defer kit.Close(t)
		w := make(recorder, 16)
		p.Watch("bob", w)
		bob := user("bob", "b1", clock)
		if err := p.Claim(ctx, bob, ""); err != nil {
			t.Fatal(err)
		}
		w.expect(t, watchEvent{"bob", "b1", true})
		bob2 := user("bob", "b2", clock)
		if err := p.Claim(ctx, bob2, "b1"); err != nil {
			t.Fatal(err)
		}
		w.expect(t, watchEvent{"bob", "b2", true})
		p.Release(ctx, bob, clock) // the displaced session: nobody hears of it
		p.Claim(ctx, user("carol", "c1", clock), "")
		w.expectNone(t)
		p.Release(ctx, bob2, clock)
		w.expect(t, watchEvent{"bob", "b2", false})
		p.Unwatch("BOB", w)
		p.Claim(ctx, user("bob", "b3", clock), "")
		w.expectNone(t)
	})
}
