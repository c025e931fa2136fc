package ircd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/lobbychat/ircd/cluster"
)

// Cross-node behaviour: several servers, each a node of one cluster on an
// embedded NATS server, serve one room. Everything a user sees must be as
// on one server.

func runNATS(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := cluster.RunNATS(cluster.NATSOptions{Name: "t", Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// startNodes starts one server per name, all on one NATS server.
func startNodes(t testing.TB, names []string, opts ...option) []*testServer {
	t.Helper()
	ns := runNATS(t)
	var out []*testServer
	for _, n := range names {
		out = append(out, startServer(t, append(opts, withNode(ns, n))...))
	}
	return out
}

// waitOnline waits until every node sees nick online (presence is a copy
// on each node, kept by a watch).
func waitOnline(t testing.TB, nick string, nodes ...*testServer) {
	t.Helper()
	for _, ts := range nodes {
		waitFor(t, nick+" online on "+ts.node.Name(), func() bool { _, ok := ts.presence.Lookup(nick); return ok })
	}
}

func TestClusterRoomAcrossNodes(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"})
	a, b := nodes[0], nodes[1]
	alice := a.login("alice", "server-time", "message-tags")
	bob := b.login("bob")
	alice.expect(`:bob!bob@127\.0\.0\.1 JOIN #lobby$`) // a JOIN on b is announced on a
	waitOnline(t, "alice", b)
	waitOnline(t, "bob", a)
	// In order, every line, both ways.
	for i := range 100 {
		alice.send("PRIVMSG #lobby :from a %d", i)
	}
	for i := range 100 {
		bob.expect(fmt.Sprintf(`^:alice!alice@127\.0\.0\.1 PRIVMSG #lobby :from a %d$`, i))
	}
	bob.send("PRIVMSG #lobby :from b")
	alice.expect(`msgid=\S+;time=\S+ :bob!bob@127\.0\.0\.1 PRIVMSG #lobby :from b$`)
	// NAMES and WHO list members of both nodes.
	carol := a.login("carol")
	carol.send("NAMES #lobby")
	names := carol.expect(` 353 carol = #lobby :`)
	for _, n := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(names, n) {
			t.Fatalf("NAMES on a: %q lacks %s", names, n)
		}
	}
	carol.send("WHO #lobby")
	carol.expect(` 352 carol #lobby bob 127\.0\.0\.1 \S+ bob H :0 bob real$`)
	carol.expect(` 315 carol #lobby `)
	// A node that starts later learns who is in the room.
	c := startServer(t, withNode(a.opts.nats, "c"))
	dave := c.login("dave")
	dave.send("NAMES #lobby")
	names = dave.expect(` 353 dave = #lobby :`)
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		if !strings.Contains(names, n) {
			t.Fatalf("NAMES on a late node: %q lacks %s", names, n)
		}
	}
	// QUIT and PART reach the other nodes.
	bob.send("QUIT :bye now")
	alice.expect(`:bob!bob@127\.0\.0\.1 QUIT :Quit: bye now$`)
	dave.expect(`:bob!bob@127\.0\.0\.1 QUIT :Quit: bye now$`)
	carol.send("PART #lobby :later")
	dave.expect(`:carol!carol@127\.0\.0\.1 PART #lobby :later$`)
	dave.send("NAMES #lobby")
	if l := dave.expect(` 353 dave = #lobby :`); strings.Contains(l, "bob") || strings.Contains(l, "carol") {
		t.Fatalf("NAMES after QUIT and PART: %q", l)
	}
}

func TestClusterPrivateMessages(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b", "c"})
	a, b, c := nodes[0], nodes[1], nodes[2]
	alice := a.login("alice", "message-tags", "echo-message")
	bob := b.login("bob", "message-tags")
	waitOnline(t, "bob", a)
	alice.send("PRIVMSG bob :hello across")
	bob.expect(`:alice!alice@127\.0\.0\.1 PRIVMSG bob :hello across$`)
	alice.expect(`:alice!alice@127\.0\.0\.1 PRIVMSG bob :hello across$`) // echo
	alice.send("@+typing=active TAGMSG bob")
	bob.expect(`\+typing=active :alice!\S+ TAGMSG bob$`)
	bob.send("AWAY :out to lunch")
	waitFor(t, "bob's away to reach a", func() bool { u, _ := a.presence.Lookup("bob"); return u.Away != "" })
	alice.send("PRIVMSG bob :are you there")
	alice.expect(` 301 alice bob :out to lunch$`)
	alice.send("WHOIS bob")
	alice.expect(` 311 alice bob bob 127\.0\.0\.1 \* :bob real$`)
	alice.expect(` 319 alice bob :#lobby$`)
	alice.expect(` 301 alice bob :out to lunch$`)

	// Offline: stored on JetStream from a, delivered at login on c.
	alice.send("PRIVMSG dave :while you were out")
	alice.expect(` 301 alice dave :dave is offline; your message will be delivered when they log in$`)
	dave := c.login("dave", "server-time")
	dave.expect(`^@\S*time=\S+ :alice!alice@127\.0\.0\.1 PRIVMSG dave :while you were out$`)
	tok := dave.expectMatch(`PING :?(replay-\S+)$`)[1]
	dave.send("PONG :%s", tok)
	dave.sync()
	if n, _ := c.pending("dave"); n != 0 {
		t.Fatalf("%d stored messages left after the acknowledgement", n)
	}
}

func TestClusterPresenceQueries(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"})
	a, b := nodes[0], nodes[1]
	alice := a.login("alice")
	alice.send("MONITOR + bob")
	alice.expect(` 731 alice :bob$`)
	bob := b.login("bob")
	alice.expect(` 730 alice :bob!bob@127\.0\.0\.1$`)
	waitOnline(t, "bob", a)
	alice.send("WHOELSE")
	alice.expect(`NOTICE alice :Online: bob$`)
	alice.send("ISON bob carol")
	alice.expect(` 303 alice :bob$`)
	bob.send("QUIT")
	alice.expect(` 731 alice :bob$`)
	waitFor(t, "bob's last-seen on a", func() bool { _, ok := a.presence.LastSeen("bob"); return ok })
	alice.send("WHOLASTHR")
	alice.expect(`NOTICE alice :Last hour: bob \(left `)
	alice.send("WHOWAS bob")
	alice.expect(` 314 alice bob bob 127\.0\.0\.1 \* :bob real$`)
}

func TestClusterSilenceAcrossNodes(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"})
	a, b := nodes[0], nodes[1]
	alice := a.login("alice")
	carol := a.login("carol")
	bob := b.login("bob")
	waitOnline(t, "alice", b)
	bob.send("SILENCE +alice")
	bob.expect(`SILENCE \+alice!\*@\*$`)
	alice.send("PRIVMSG #lobby :hidden from bob")
	alice.send("PRIVMSG bob :dropped")
	alice.sync()
	carol.send("PRIVMSG #lobby :sync") // from a too: after alice's lines
	bob.expect(`:carol!\S+ PRIVMSG #lobby :sync$`)
	bob.expectNone(`hidden from bob|dropped`)
	// The list is the cluster's: bob logs in on a, still silencing.
	bob.send("QUIT")
	bob.expectClosed()
	waitFor(t, "bob gone on a", func() bool { _, ok := a.presence.Lookup("bob"); return !ok })
	bob = a.login("bob")
	bob.send("SILENCE")
	bob.expect(` 271 bob bob alice!\*@\*$`)
	alice.send("PRIVMSG bob :still dropped")
	alice.sync()
	bob.expectNone(`still dropped`)
}

func TestClusterOneSessionPerAccount(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"}, withConfig(func(c *Config) { c.DuplicatePing = 200 * time.Millisecond }))
	a, b := nodes[0], nodes[1]
	alice := a.login("alice")
	waitOnline(t, "alice", b)
	// The session on a answers the PING, so it stays and b refuses.
	go func() {
		for {
			l, err := alice.readLine(time.Now().Add(waitTime))
			if err != nil {
				return
			}
			if strings.Contains(l, " PING ") {
				alice.send("PONG :%s", l[strings.LastIndex(l, " ")+1:])
			}
		}
	}()
	second := b.dial("alice2")
	second.register("alice", "alicepw")
	lines := second.expectClosed()
	if last := lines[len(lines)-1]; last != "ERROR :Closing link: account alice is already logged in" {
		t.Fatalf("second login on another node: %q", last)
	}
}

func TestClusterReplaceAcrossNodes(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"}, withConfig(func(c *Config) { c.OnDuplicate = "replace" }))
	a, b := nodes[0], nodes[1]
	old := a.login("alice")
	carol := a.login("carol")
	waitOnline(t, "alice", b)
	fresh := b.login("alice")
	lines := old.expectClosed()
	if last := lines[len(lines)-1]; last != "ERROR :Closing link: Logged in from elsewhere" {
		t.Fatalf("old session: %q", last)
	}
	carol.expect(`:alice!alice@127\.0\.0\.1 QUIT :Quit: Logged in from elsewhere$`)
	carol.expect(`:alice!alice@127\.0\.0\.1 JOIN #lobby$`)
	fresh.send("PRIVMSG carol :from the new session")
	carol.expect(`PRIVMSG carol :from the new session$`)
}

func TestClusterLockoutAcrossNodes(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"})
	a, b := nodes[0], nodes[1]
	for i, ts := range []*testServer{a, b, a} {
		c := ts.dial("guess")
		c.register("dave", fmt.Sprint("wrong", i))
		c.expectClosed()
	}
	c := b.dial("dave")
	c.register("dave", "davepw")
	lines := c.expectClosed()
	if last := lines[len(lines)-1]; !strings.Contains(last, "too many failed logins") {
		t.Fatalf("right password after three failures on two nodes: %q", last)
	}
}

// A node whose lease lapses (it stops renewing it, as a killed process
// does) has its sessions ended by the others: its users may log in
// elsewhere, and the room hears them leave.
func TestClusterDeadNodeSessionsEnd(t *testing.T) {
	nodes := startNodes(t, []string{"a", "b"})
	a, b := nodes[0], nodes[1]
	alice := a.login("alice")
	bob := b.login("bob")
	waitOnline(t, "bob", a)
	// b dies without a word: its NATS connections drop, nothing is released.
	b.node.Kill()
	start := time.Now()
	// The lease (3 s here) lapses, a then ends b's sessions and gives
	// their QUIT a moment (quitGrace) to arrive before saying it.
	alice.expectWithin(`:bob!bob@127\.0\.0\.1 QUIT :Quit: Connection lost$`, 15*time.Second)
	t.Logf("bob's QUIT %v after b died (lease 3s)", time.Since(start).Round(100*time.Millisecond))
	again := a.login("bob")
	again.send("WHOELSE")
	again.expect(`NOTICE bob :Online: alice$`)
	_ = bob
}
