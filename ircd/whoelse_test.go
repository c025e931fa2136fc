package ircd

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// noticesUntilCount collects server NOTICEs up to the closing count line.
func noticesUntilCount(c *testClient, countRe string) []string {
	c.t.Helper()
	var out []string
	for {
		l := c.expect(`^(@\S+ )?:irc\.test NOTICE ` + c.name + ` :`)
		out = append(out, l)
		if strings.Contains(l, "other user") {
			if !strings.Contains(l, countRe) {
				c.t.Fatalf("count line %q, want %q", l, countRe)
			}
			return out
		}
	}
}

func TestWhoelse(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	ts.login("bob")
	ts.login("carol")
	alice.send("whoelse")
	lines := noticesUntilCount(alice, "2 other users online")
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "bob") || !strings.Contains(all, "carol") {
		t.Fatalf("missing users: %q", lines)
	}
	for _, l := range lines {
		if _, text, _ := strings.Cut(l, "NOTICE alice :"); strings.Contains(text, "alice") {
			t.Fatalf("asker named in reply: %q", l)
		}
	}
}

func TestWhoelseAlone(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	alice.send("WHOELSE")
	alice.expect(`NOTICE alice :0 other users online$`)
}

func TestWhoelseLinesStayUnder512(t *testing.T) {
	names := make([]string, 0, 200)
	for i := range 200 {
		names = append(names, "user"+strings.Repeat("x", 20)+string(rune('a'+i%26))+strings.Repeat("y", i%5)+strconv.Itoa(i))
	}
	out := chunkWords(names, 400)
	if len(out) < 2 {
		t.Fatal("expected several lines")
	}
	joined := 0
	for _, l := range out {
		if len(l) > 400 {
			t.Fatalf("line of %d bytes", len(l))
		}
		joined += len(strings.Fields(l))
	}
	if joined != len(names) {
		t.Fatalf("lost names: %d of %d", joined, len(names))
	}
}

func TestWholasthr(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	ts.login("bob")
	carol := ts.login("carol")
	dave := ts.login("dave")
	dave.send("QUIT")
	dave.expectClosed()
	ts.waitGone("dave")
	ts.clock.Advance(30 * time.Minute)
	carol.send("QUIT")
	carol.expectClosed()
	ts.waitGone("carol")
	ts.clock.Advance(45 * time.Minute) // dave left 75m ago, carol 45m ago

	alice.send("WHOLASTHR")
	lines := noticesUntilCount(alice, "2 other users connected in the last hour")
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "bob (online now)") {
		t.Fatalf("bob missing: %q", lines)
	}
	if !strings.Contains(all, "carol (left 15:39 UTC, 45m ago)") {
		t.Fatalf("carol missing: %q", lines)
	}
	if strings.Contains(all, "dave") || strings.Contains(strings.ReplaceAll(all, "NOTICE alice", ""), "alice") {
		t.Fatalf("dave (left too long ago) or the asker listed: %q", lines)
	}
}

func TestLastSeenSurvivesRestart(t *testing.T) {
	ts := startServer(t)
	carol := ts.login("carol")
	carol.send("QUIT")
	carol.expectClosed()
	ts.waitGone("carol")
	ts.restart()
	ts.clock.Advance(10 * time.Minute)
	alice := ts.login("alice")
	alice.send("WHOLASTHR")
	lines := noticesUntilCount(alice, "1 other user connected")
	if !strings.Contains(strings.Join(lines, "\n"), "carol (left 15:09 UTC, 10m ago)") {
		t.Fatalf("got %q", lines)
	}
}

// Users online when the server died count as seen at about that moment:
// their last-seen time is persisted periodically while they are online.
func TestOnlineUsersPersistedPeriodically(t *testing.T) {
	ts := startServer(t, withSeenFlush(10*time.Millisecond))
	if ts.store == nil {
		t.Skip("the local presence's periodic flush; the cluster records departures as they happen")
	}
	ts.login("bob")
	ts.clock.Advance(5 * time.Minute)
	want := ts.clock.Now()
	deadline := time.Now().Add(waitTime)
	for {
		seen, err := ts.store.LastSeen()
		if err != nil {
			t.Fatal(err)
		}
		if seen["bob"].At.Equal(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's last-seen %v, want %v", seen["bob"].At, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
