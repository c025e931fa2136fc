package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lobbychat/ircd/cluster"
)

// Cluster mode with real daemons: two ircd processes, nodes of one
// cluster on a NATS server this test runs.

func runNATS(t *testing.T, port int, dir string) *natsServer {
	t.Helper()
	s, err := cluster.RunNATS(cluster.NATSOptions{Name: "t", Port: port, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ns := &natsServer{s: s}
	t.Cleanup(func() { ns.s.Shutdown() })
	return ns
}

type natsServer struct {
	s interface {
		ClientURL() string
		Shutdown()
		WaitForShutdown()
	}
}

func clusterTOML(nats, node string) string {
	return fmt.Sprintf("[cluster]\nnats = [%q]\nnode = %q\nlease = \"3s\"\n[limits]\nflood_rate = 0", nats, node)
}

// A node killed with SIGKILL: its users log in on another node at once
// (the dead session does not answer the PING), and a message sent to one
// of them while it was gone is stored and delivered there.
func TestClusterNodeKilled(t *testing.T) {
	ns := runNATS(t, -1, t.TempDir())
	a := newDaemon(t, clusterTOML(ns.s.ClientURL(), "a"))
	a.start()
	b := newDaemon(t, clusterTOML(ns.s.ClientURL(), "b"))
	b.start()
	alice := a.login("alice")
	bob := b.login("bob")
	alice.expect(`:bob!bob@\S+ JOIN #lobby`)
	fmt.Fprintf(bob.c, "PRIVMSG alice :live across nodes\r\n")
	alice.expect(`PRIVMSG alice :live across nodes$`)

	a.signal(syscall.SIGKILL)
	killed := time.Now()
	fmt.Fprintf(bob.c, "PRIVMSG alice :while a was down\r\n")
	// If NATS has not yet seen a go, the delivery to a waits for the
	// request timeout (5 s) before the message is stored.
	bob.expectWithin(` 301 bob alice :alice is offline; your message will be delivered when they log in$`, 15*time.Second)
	again := b.login("alice")
	t.Logf("alice logged in on b %v after a was killed", time.Since(killed).Round(10*time.Millisecond))
	again.expect(`PRIVMSG alice :\[[^]]*\] while a was down$`)
	bob.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	bob.expect(`:alice!alice@\S+ QUIT :Quit: (Ping timeout|Connection lost)$`)
}

// NATS going away: a node refuses new logins with a clear ERROR, never
// confirms a message it could not store, keeps serving its users' room
// lines; when NATS is back (same data) nothing confirmed is lost and
// logins work again.
func TestClusterNATSRestart(t *testing.T) {
	dir := t.TempDir()
	ns := runNATS(t, -1, dir)
	u, _ := url.Parse(ns.s.ClientURL())
	port, _ := strconv.Atoi(u.Port())
	a := newDaemon(t, clusterTOML(ns.s.ClientURL(), "a"))
	a.start()
	alice := a.login("alice")
	fmt.Fprintf(alice.c, "PRIVMSG bob :stored before\r\n")
	alice.expect(` 301 alice bob `)

	ns.s.Shutdown()
	ns.s.WaitForShutdown()
	// Once the node knows: a request sent just before waits for its
	// timeout (5 s, as long as expect waits).
	waitLogMatch(t, a, `lost NATS`)
	fmt.Fprintf(alice.c, "PRIVMSG bob :while NATS is down\r\n")
	alice.expect(` 531 alice bob :Your message could not be stored; please try again later$`)
	refused := a.dial()
	fmt.Fprintf(refused.c, "PASS bobpw\r\nNICK bob\r\nUSER bob 0 * :bob\r\n")
	refused.expect(`^ERROR :Closing link: Service temporarily unavailable, please try again later$`)

	ns2 := runNATS(t, port, dir)
	ns.s = ns2.s
	// Logins work again once the node has reconnected.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := a.dial()
		fmt.Fprintf(c.c, "PASS bobpw\r\nNICK bob\r\nUSER bob 0 * :bob\r\n")
		line := c.expect(`^(ERROR|.* 366 bob )`)
		if !strings.HasPrefix(line, "ERROR") {
			c.expect(`PRIVMSG bob :\[[^]]*\] stored before$`)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logins still refused 20s after NATS came back: %s", line)
		}
		c.c.Close()
		time.Sleep(100 * time.Millisecond) // a retry a person would make
	}
}
