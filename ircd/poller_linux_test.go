package ircd

import (
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
)

// If the poller's loop ever dies (an epoll_wait error no valid set gives),
// the clients it watched are told and closed instead of never being read
// again, the error is logged, and new logins are served by a reader
// goroutine.
func TestPollerFailureClosesItsClients(t *testing.T) {
	if os.Getenv("IRCD_TEST_NO_POLLER") != "" {
		t.Skip("the poller is off in this run")
	}
	var logs syncBuffer
	ts := startServer(t, withConfig(func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}))
	alice := ts.login("alice")
	ts.srv.mu.Lock()
	p := ts.srv.poller
	ts.srv.mu.Unlock()
	if p == nil {
		t.Skip("no poller on this system")
	}
	p.fail(syscall.EINVAL)
	lines := alice.expectClosed()
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ERROR :Closing link: Server error") {
		t.Fatalf("alice's last line %q", last)
	}
	ts.waitGone("alice") // her cleanup runs after her socket closes
	bob := ts.login("bob")
	bob.send("WHOELSE")
	bob.expect(`0 other users online`)
	ts.srv.mu.Lock()
	polled := ts.srv.sessions["bob"] != nil && ts.srv.sessions["bob"].poll != nil
	ts.srv.mu.Unlock()
	if polled {
		t.Fatal("bob was attached to the failed poller")
	}
	if l := logs.String(); !strings.Contains(l, "connection poller stopped") || !strings.Contains(l, "connections=1") {
		t.Fatalf("failure not logged:\n%s", l)
	}
}
