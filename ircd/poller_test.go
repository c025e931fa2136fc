package ircd

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// guestSession logs in a guest on a raw connection, optionally talks,
// then either quits or just hangs up; any deviation is returned.
func guestSession(addr, nick string, hangUp bool) error {
	c, err := net.DialTimeout("tcp", addr, waitTime)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTime))
	r := bufio.NewReader(c)
	waitFor := func(s string) error {
		for {
			line, err := r.ReadString('\n')
			if strings.Contains(line, s) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: waiting for %q: %v", nick, s, err)
			}
		}
	}
	fmt.Fprintf(c, "NICK %s\r\nUSER %s 0 * :churn\r\n", nick, nick)
	if err := waitFor(" 366 "); err != nil {
		return err
	}
	fmt.Fprintf(c, "PRIVMSG #lobby :hi from %s\r\nPING :tok\r\n", nick)
	if err := waitFor("tok"); err != nil {
		return err
	}
	if hangUp {
		return nil
	}
	fmt.Fprintf(c, "QUIT :bye\r\n")
	return waitFor("ERROR :Closing link")
}

// Connections come and go fast, so descriptor numbers are reused while
// events for their previous owners may still be in flight: every session
// must still be served, and every connection cleaned up (a lost kick
// would leave one behind for good).
func TestConnectionChurn(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.Guests = true }))
	alice := ts.login("alice")
	const workers, rounds = 20, 50
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := guestSession(ts.addr, fmt.Sprintf("g%d_%d", w, i), i%2 == 1); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, "every churned connection cleaned up", func() bool {
		st := ts.srv.Stats()
		return st.Connections == 1 && st.LoggedIn == 1
	})
	alice.send("WHOELSE")
	alice.expect(`0 other users online`)
}

// The point of the poller: a logged-in client that says nothing has no
// goroutine of its own.
func TestIdleClientsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getenv("IRCD_TEST_NO_POLLER") != "" {
		t.Skip("connections have reader goroutines here")
	}
	ts := startServer(t, withConfig(func(c *Config) { c.Guests = true }))
	ts.login("alice").sync()
	base := runtime.NumGoroutine()
	const n = 200
	for i := range n {
		c := ts.dial(fmt.Sprintf("idle%d", i))
		c.register(fmt.Sprintf("idle%d", i), "")
		c.expect(` 366 `)
	}
	// Pumps and flushers exit once their work is done.
	waitFor(t, "idle connections' goroutines to exit", func() bool {
		return runtime.NumGoroutine() < base+n/10
	})
}

// Memory goes back to the OS once per burst of logins, after it settles,
// and not while logins keep coming.
func TestBurstTrim(t *testing.T) {
	freed := 0
	b := burstTrim{free: func() { freed++ }}
	t0 := time.Unix(1000, 0)
	drained := true
	tick := func(logins uint64, at time.Duration) { b.check(logins, t0.Add(at), func() bool { return drained }) }
	tick(10, 0)
	tick(10, 5*time.Second)
	if freed != 0 {
		t.Fatalf("trimmed after only 10 logins")
	}
	for i := range 20 { // a burst of 1,500 logins over 2 s
		tick(uint64(10+75*(i+1)), time.Duration(6000+100*i)*time.Millisecond)
	}
	if freed != 0 {
		t.Fatalf("trimmed during the burst")
	}
	tick(1510, 8*time.Second)
	if freed != 0 {
		t.Fatalf("trimmed before the burst had been quiet for %v", trimQuiet)
	}
	drained = false // replies still on their way to slow readers
	tick(1510, 8900*time.Millisecond)
	if freed != 0 {
		t.Fatalf("trimmed with output still queued")
	}
	drained = true
	tick(1510, 8900*time.Millisecond)
	if freed != 1 {
		t.Fatalf("not trimmed once the burst settled (freed %d)", freed)
	}
	// The burst was not over: 200 more logins within trimAgain of the trim
	// are part of it, and trigger a second trim once quiet.
	tick(1710, 9500*time.Millisecond)
	tick(1710, 10600*time.Millisecond)
	if freed != 2 {
		t.Fatalf("no second trim after the burst went on (freed %d)", freed)
	}
	// A few logins long after the last trim are not a burst.
	tick(1800, 40*time.Second)
	tick(1800, 50*time.Second)
	if freed != 2 {
		t.Fatalf("trimmed again without a new burst (freed %d)", freed)
	}
	tick(2800, 60*time.Second)
	tick(2800, 61*time.Second)
	if freed != 3 {
		t.Fatalf("no trim after a new burst of 1,000 (freed %d)", freed)
	}
}

// An event loop handles a message to the channel or to a session of this
// server itself, and leaves any line that may wait (here: a message to
// be stored for someone offline, and PING) to a pump goroutine. Sent in
// one write, the lines must still be handled exactly once and in order.
func TestLoopHandsOffLinesThatMayWaitInOrder(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	mailboxRead(t, ts, "bob")
	alice.sendRaw([]byte("PRIVMSG bob :one\r\nPRIVMSG carol :stored\r\nPRIVMSG bob :two\r\n" +
		"PING :mid\r\nPRIVMSG #lobby :three\r\nPRIVMSG bob :four\r\n"))
	alice.expect(` 301 alice carol :carol is offline`)
	alice.expect(`PONG \S+ :?mid$`)
	for _, want := range []string{"one", "two", "three", "four"} {
		bob.expect(`^:alice!\S+ PRIVMSG (bob|#lobby) :` + want + `$`)
	}
	if n, err := ts.pending("carol"); err != nil || n != 1 {
		t.Fatalf("carol has %d stored messages (err %v), want 1", n, err)
	}
	for range 3 { // a round trip through the loop and back to the pump
		alice.sendRaw([]byte("PRIVMSG bob :x\r\nPRIVMSG dave :y\r\n"))
		bob.expect(`PRIVMSG bob :x$`)
		alice.expect(` 301 alice dave `)
	}
	if n, _ := ts.pending("dave"); n != 3 {
		t.Fatalf("dave has %d stored messages, want 3", n)
	}
}

// An event loop takes at most loopLines lines from one connection per
// visit, so that one busy sender cannot hold up the others on its loop;
// the rest are read on later visits, and every line arrives in order.
// The test claims alice's connection and makes the loop's visits itself.
func TestLoopTakesAFewLinesPerVisit(t *testing.T) {
	alice, bob, c := polledPair(t)
	waitFor(t, "alice's connection idle", c.claim)
	const lines = 3*loopLines + 7
	var text strings.Builder
	for i := range lines {
		fmt.Fprintf(&text, "PRIVMSG bob :%d\r\n", i)
	}
	alice.sendRaw([]byte(text.String()))
	b := writeBatches.Get().(*writeBatch)
	budgets, total := 0, 0
	deadline := time.Now().Add(waitTime)
	for total < lines && time.Now().Before(deadline) {
		end, n := c.drainOnLoop(b)
		if n > loopLines {
			t.Fatalf("one visit took %d lines, more than %d", n, loopLines)
		}
		if end == drainBudget {
			budgets++
		} else if end != drainDry {
			t.Fatalf("visit ended with %v", end)
		}
		total += n
	}
	b.flush()
	writeBatches.Put(b)
	if !c.stopPump() {
		c.poll.run(c)
	}
	if total != lines || budgets < 2 {
		t.Fatalf("%d of %d lines taken, %d visits cut at %d lines", total, lines, budgets, loopLines)
	}
	for i := range lines {
		bob.expect(fmt.Sprintf(`PRIVMSG bob :%d$`, i))
	}
}

// mailboxRead waits until nick's session has read its mailbox. Until then
// (longer on a cluster node) private messages to it are held behind what
// it replays, and so may come after a later channel line.
func mailboxRead(t *testing.T, ts *testServer, nick string) {
	t.Helper()
	waitFor(t, nick+"'s mailbox read", func() bool {
		c := ts.srv.session(nick)
		if c == nil {
			return false
		}
		c.mail.mu.Lock()
		defer c.mail.mu.Unlock()
		return !c.mail.holding
	})
}

// polledPair logs alice and bob in (no flood control) and returns alice's
// server-side client, skipping the test if it is not on the poller.
func polledPair(t *testing.T) (alice, bob *testClient, c *client) {
	t.Helper()
	ts := startServer(t, withConfig(func(c *Config) { c.FloodRate = 0 }))
	alice = ts.login("alice")
	bob = ts.login("bob")
	mailboxRead(t, ts, "bob")
	c = ts.srv.session("alice")
	if c.poll == nil {
		t.Skip("no poller in this run")
	}
	return alice, bob, c
}

// A pass that handled one line does not nap, so a client that waits for
// each answer never waits for a nap; a pass that handled several does.
func TestLoopNapsOnlyAfterSeveralLines(t *testing.T) {
	alice, bob, c := polledPair(t)
	naps := func() (n int64) {
		for _, l := range c.poll.loops {
			n += l.naps.Load()
		}
		return n
	}
	before := naps()
	for i := range 20 {
		alice.send("PRIVMSG bob :one %d", i)
		bob.expect(fmt.Sprintf(`PRIVMSG bob :one %d$`, i))
	}
	if n := naps() - before; n != 0 {
		t.Fatalf("%d naps after passes of one line each", n)
	}
	const lines = 40
	var text strings.Builder
	for i := range lines {
		fmt.Fprintf(&text, "PRIVMSG bob :many %d\r\n", i)
	}
	alice.sendRaw([]byte(text.String()))
	for i := range lines {
		bob.expect(fmt.Sprintf(`PRIVMSG bob :many %d$`, i))
	}
	waitFor(t, "a nap after a pass of several lines", func() bool { return naps() > before })
}
