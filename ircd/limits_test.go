package ircd

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
)

// Flood control delays lines past the burst: 30 lines at once with a
// burst of 5 at 50 lines/s cannot all be answered in under 0.5s.
func TestFloodSlowsClient(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.FloodBurst = 5; c.FloodRate = 50 }))
	alice := ts.login("alice")
	time.Sleep(200 * time.Millisecond) // let the login burst's allowance refill
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "PING p%d\r\n", i)
	}
	start := time.Now()
	alice.sendRaw([]byte(b.String()))
	alice.expect(`PONG irc\.test :p29$`)
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Fatalf("30 lines answered in %v: not slowed", d)
	}
}

// A sustained flood is cut with "Excess Flood"; others keep being served.
func TestSustainedFloodDisconnects(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) {
		c.FloodBurst, c.FloodRate, c.FloodKill = 5, 20, 300*time.Millisecond
	}))
	bob := ts.login("bob")
	flooder := ts.login("alice")
	done := make(chan struct{})
	go func() {
		defer close(done)
		line := []byte("PRIVMSG #lobby :flood flood flood\r\n")
		for range 10000 {
			flooder.conn.SetWriteDeadline(time.Now().Add(waitTime))
			if _, err := flooder.conn.Write(line); err != nil {
				return
			}
		}
	}()
	bob.sync() // bob is served while alice floods
	lines := flooder.expectClosed()
	if !strings.Contains(strings.Join(lines, "\n"), "ERROR :Closing link: Excess Flood") {
		t.Fatalf("flooder got %q", lines[max(0, len(lines)-3):])
	}
	<-done
	bob.expect(`:alice!\S+ QUIT :Quit: Excess Flood$`)
	bob.sync()
}

// A client that never reads is cut at the SendQ limit; broadcasts to the
// others go on, complete and in order.
func TestSlowReaderCutAtSendQ(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.SendQ = 64 << 10 }))
	carol := ts.login("carol")
	// dave reads his welcome, then stops reading, with a tiny receive window.
	dave := ts.login("dave")
	dave.conn.(*net.TCPConn).SetReadBuffer(4096)
	alice := ts.login("alice")
	text := strings.Repeat("z", 300)
	// Windows of 50 lines, each read by carol before the next, so that only
	// dave (whose kernel buffers fill first) falls behind. Bounded: 12 MB.
	for i := 0; i < 40000; i += 50 {
		var b strings.Builder
		for j := i; j < i+50; j++ {
			fmt.Fprintf(&b, "PRIVMSG #lobby :%d %s\r\n", j, text)
		}
		alice.sendRaw([]byte(b.String()))
		for j := i; j < i+50; j++ {
			carol.expect(fmt.Sprintf(`^:alice!\S+ PRIVMSG #lobby :%d z`, j))
		}
		if ts.srv.Stats().SendQDisconnects > 0 {
			if !strings.Contains(strings.Join(carol.log, "\n"), "QUIT :Quit: SendQ exceeded") {
				carol.expect(`:dave!\S+ QUIT :Quit: SendQ exceeded$`)
			}
			alice.send("PRIVMSG #lobby :after")
			carol.expect(`PRIVMSG #lobby :after$`)
			return
		}
	}
	t.Fatal("dave was never cut off")
}

// 2,000 connections that never register are timed out, and a real user
// logs in meanwhile.
func TestManyUnregisteredConnectionsTimeOut(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.RegTimeout = 2 * time.Second }))
	const n = 2000
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	alice := ts.login("alice")
	alice.send("WHOELSE")
	alice.expect(`0 other users online`)
	waitFor(t, "every connection to be accepted", func() bool { return ts.srv.Stats().Connections == n+1 })
	// The timeout runs on the server's clock; alice is registered, so only
	// the others time out.
	ts.clock.Advance(3 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := make([]byte, 256)
			var got []byte
			for {
				k, err := c.Read(b)
				got = append(got, b[:k]...)
				if err != nil {
					if !bytes.Contains(got, []byte("Registration timed out")) {
						errs <- fmt.Sprintf("%v after %q", err, got)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal("connection not timed out:", e)
	}
	alice.sync() // still served
}

func TestConnectionLimits(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.MaxPerIP = 2 }))
	ts.dial("one")
	ts.dial("two")
	third := ts.dial("three")
	lines := third.expectClosed()
	if len(lines) != 1 || lines[0] != "ERROR :Closing link: Too many connections from your address" {
		t.Fatalf("got %q", lines)
	}
	ts.srv.Reload(Config{MaxClients: 2})
	fourth := ts.dial("four")
	if lines := fourth.expectClosed(); len(lines) != 1 || lines[0] != "ERROR :Closing link: Server is full" {
		t.Fatalf("got %q", lines)
	}
	if ts.srv.Stats().Refused != 2 {
		t.Fatalf("refused = %d", ts.srv.Stats().Refused)
	}
}

// One address guessing across accounts is throttled before it can lock
// them all; the refusal counts toward no account.
func TestAddressThrottle(t *testing.T) {
	ts := startServer(t)
	ts.acc.Limiter().SetPolicy(accounts.LimiterPolicy{MaxFailures: 3, Lockout: time.Minute, AddrFailures: 3, AddrWindow: time.Minute})
	for _, name := range []string{"alice", "bob", "carol"} {
		c := ts.dial(name)
		c.register(name, "guess")
		c.expectClosed()
	}
	c := ts.dial("dave")
	c.register("dave", "davepw")
	_, e := refusal(t, c)
	if e != "ERROR :Closing link: Unauthorized (too many failed logins from your address, retry in 60s)" {
		t.Fatalf("got %q", e)
	}
	if _, locked := ts.acc.Limiter().Locked("dave"); locked {
		t.Fatal("throttled attempt counted toward dave")
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanicEndsOnlyThatConnection(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, withConfig(func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.extraCommands = map[string]command{"TESTPANIC": {handle: func(*client, *irc.Message) { panic("boom") }}}
	}))
	bob := ts.login("bob")
	alice := ts.login("alice")
	alice.send("TESTPANIC")
	lines := alice.expectClosed()
	if !strings.Contains(lines[len(lines)-1], "internal error while handling TESTPANIC") {
		t.Fatalf("got %q", lines)
	}
	bob.expect(`:alice!\S+ QUIT :Quit: Internal error$`)
	bob.send("WHOELSE")
	bob.expect(`0 other users online`)
	if l := logs.String(); !strings.Contains(l, "panic in command") || !strings.Contains(l, "command=TESTPANIC") {
		t.Fatalf("panic not logged with its command:\n%s", l)
	}
}

// No password, hash or SASL payload reaches the log, at any level.
func TestSecretsNeverLogged(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, withConfig(func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}))
	good := ts.login("alice")
	good.send("QUIT")
	bad := ts.dial("bob")
	bad.register("bob", "Sup3rSecretGuess")
	bad.expectClosed()
	payload := base64.StdEncoding.EncodeToString([]byte("\x00carol\x00carolpw"))
	sasl := ts.dial("carol")
	sasl.send("CAP REQ :sasl")
	sasl.send("AUTHENTICATE PLAIN")
	sasl.send("AUTHENTICATE %s", payload)
	sasl.expect(` 903 `)
	split := ts.dial("dave")
	split.send("PASS dave:davepw")
	split.send("NICK x")
	split.send("USER x 0 * :x")
	split.expect(` 001 dave `)
	l := logs.String()
	if !strings.Contains(l, "login ok") || !strings.Contains(l, "login failed") {
		t.Fatalf("logins not logged:\n%s", l)
	}
	for _, secret := range []string{"alicepw", "Sup3rSecretGuess", "carolpw", payload, "davepw"} {
		if strings.Contains(l, secret) {
			t.Fatalf("log contains %q:\n%s", secret, l)
		}
	}
}

func TestReloadChangesMOTD(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	ts.srv.Reload(Config{MOTD: "new words"})
	alice.send("MOTD")
	alice.expect(` 372 alice :- new words$`)
	alice.send("WHOIS alice")
	alice.expect(` 312 alice alice irc\.test `) // the server name did not change
}

// A peer that stops answering is dropped after ping_interval+ping_timeout;
// one that answers stays. Time is the server's clock, moved by the test.
func TestPingTimeout(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) {
		c.PingInterval, c.PingTimeout = 2*time.Minute, time.Minute
		c.RegTimeout = 100 * time.Millisecond // the sweep runs every 25 ms
	}))
	bob := ts.login("bob")
	alive := ts.login("alice")
	// alice answers every PING, outlives bob and sees him go.
	sawQuit, pings := false, 0
	for round := 0; !sawQuit || pings < 3; round++ {
		if round == 20 {
			t.Fatalf("after %d rounds: bob quit %v, alice pinged %d times; recent:\n%s", round, sawQuit, pings, strings.Join(alive.log, "\n"))
		}
		ts.clock.Advance(130 * time.Second)
		line := alive.expect(`^:irc\.test PING |:bob!\S+ QUIT :Quit: Ping timeout`)
		if strings.Contains(line, " QUIT ") {
			sawQuit = true
			continue
		}
		pings++
		alive.send("PONG :%s", strings.TrimPrefix(line[strings.Index(line, "PING ")+5:], ":"))
		for _, l := range alive.sync() { // the PONG is read before the clock moves on
			sawQuit = sawQuit || strings.Contains(l, ":bob!bob@127.0.0.1 QUIT :Quit: Ping timeout")
		}
	}
	lines := bob.expectClosed()
	if lines[len(lines)-1] != "ERROR :Closing link: Ping timeout" || !strings.Contains(strings.Join(lines, "\n"), "PING") {
		t.Fatalf("bob got %q", lines)
	}
	alive.sync()
}
