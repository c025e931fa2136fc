package ircd

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestLoginWelcomeBurstOrder(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("alice")
	c.register("alice", "alicepw")
	for _, want := range []string{` 001 alice `, ` 002 alice `, ` 003 alice `, ` 004 alice `,
		` 005 alice .*CASEMAPPING=ascii.*CHANTYPES=#.*LINELEN=512.*MONITOR=.*NETWORK=TestNet.*NICKLEN=.*SILENCE=32`,
		` 251 alice `, ` 375 alice `, ` 372 alice :- hello`, ` 376 alice `,
		`^:alice!alice@127\.0\.0\.1 JOIN #lobby$`, ` 332 alice #lobby :the topic$`, ` 333 alice #lobby `,
		` 353 alice = #lobby :alice$`, ` 366 alice #lobby `} {
		c.expect(want)
	}
}

// irssi: CAP LS 302, a bare "JOIN :" probe, CAP REQ, CAP END, then PASS/NICK/USER.
func TestIrssiStyleRegistration(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("alice")
	c.send("CAP LS 302")
	c.expect(`CAP \* LS :.*\bsasl=PLAIN\b`)
	c.send("JOIN :")
	c.expect(` 451 \* :You have not registered`)
	c.send("CAP REQ :multi-prefix")
	c.expect(`CAP \* ACK :multi-prefix`)
	c.send("CAP END")
	c.send("PASS alicepw")
	c.send("NICK alice")
	c.send("USER alice alice 127.0.0.1 :alice")
	c.expect(` 001 alice `)
	c.expect(` 366 alice #lobby `)
}

// WeeChat: PASS first, then CAP LS, NICK, USER; registration waits for CAP END.
func TestRegistrationHeldUntilCapEnd(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("bob")
	c.send("PASS bobpw")
	c.send("CAP LS 302")
	c.send("NICK bob")
	c.send("USER bob 0 * :bob")
	c.send("CAP REQ :multi-prefix")
	for _, l := range c.sync() {
		if strings.Contains(l, " 001 ") {
			t.Fatalf("welcome before CAP END: %q", l)
		}
	}
	c.send("CAP END")
	c.expect(` 001 bob `)
}

func TestCapListAndNak(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("x")
	c.send("CAP LS")
	ls := c.expect(`CAP \* LS :`)
	if strings.Contains(ls, "sasl=") || strings.Contains(ls, " tls") {
		t.Fatalf("CAP LS without 302 must not carry values or offer tls: %q", ls)
	}
	c.send("CAP REQ :server-time bogus-cap")
	c.expect(`CAP \* NAK :server-time bogus-cap`)
	c.send("CAP REQ :server-time echo-message")
	c.expect(`CAP \* ACK :server-time echo-message`)
	c.send("CAP LIST")
	c.expect(`CAP \* LIST :echo-message server-time$`)
	c.send("CAP FOO")
	c.expect(` 410 \* FOO `)
}

func TestLoginVariants(t *testing.T) {
	ts := startServer(t)
	t.Run("account:password", func(t *testing.T) {
		c := ts.dial("bob")
		c.send("PASS bob:bobpw")
		c.send("NICK whatever")
		c.send("USER u 0 * :r")
		c.expect(` 001 bob `)
		c.send("QUIT")
		c.expectClosed()
	})
	t.Run("trailing NICK and PASS, bare LF, lowercase commands", func(t *testing.T) {
		c := ts.dial("carol")
		c.sendRaw([]byte("pass :carolpw\nnick :carol\nuser carol 0 * :Carol C\n"))
		c.expect(` 001 carol `)
		c.send("QUIT")
		c.expectClosed()
	})
	t.Run("nick case follows the account", func(t *testing.T) {
		c := ts.dial("dave")
		c.register("DAVE", "davepw")
		c.expect(` 001 dave `)
	})
}

func TestSASLPlain(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("alice")
	c.send("CAP LS 302")
	c.send("CAP REQ :sasl")
	c.expect(`ACK :sasl`)
	c.send("AUTHENTICATE PLAIN")
	c.expect(`^:irc\.test AUTHENTICATE \+$`)
	c.send("AUTHENTICATE %s", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00alicepw")))
	c.expect(` 900 \* alice!alice@127\.0\.0\.1 alice :You are now logged in as alice`)
	c.expect(` 903 \* :SASL authentication successful`)
	c.send("CAP END")
	c.send("NICK alice")
	c.send("USER alice 0 * :alice")
	c.expect(` 001 alice `)
}

func TestSASLFailureThenRefused(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("alice")
	c.send("CAP LS 302")
	c.send("CAP REQ :sasl")
	c.send("AUTHENTICATE SCRAM-SHA-256")
	c.expect(` 908 \* PLAIN `)
	c.expect(` 904 \* `)
	c.send("AUTHENTICATE PLAIN")
	c.send("AUTHENTICATE %s", base64.StdEncoding.EncodeToString([]byte("alice\x00alice\x00wrong")))
	c.expect(` 904 \* :SASL authentication failed`)
	c.send("CAP END")
	c.send("NICK alice")
	c.send("USER alice 0 * :alice")
	c.expect(` 464 \* `)
	c.expect(`^ERROR :Closing link: Unauthorized \(bad account or password\)$`)
	c.expectClosed()
}

// refusal reads a failed login's last two lines.
func refusal(t *testing.T, c *testClient) (numeric, errLine string) {
	t.Helper()
	lines := c.expectClosed()
	if len(lines) < 2 {
		t.Fatalf("want 464 and ERROR, got %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, " 001 ") {
			t.Fatalf("logged in despite refusal: %q", lines)
		}
	}
	return lines[len(lines)-2], lines[len(lines)-1]
}

func TestBadAndUnknownLookTheSame(t *testing.T) {
	ts := startServer(t)
	bad := ts.dial("alice")
	bad.register("alice", "nope")
	n1, e1 := refusal(t, bad)
	unknown := ts.dial("zed")
	unknown.register("zed", "nope")
	n2, e2 := refusal(t, unknown)
	if n1 != n2 || e1 != e2 {
		t.Fatalf("replies differ:\n%q %q\n%q %q", n1, e1, n2, e2)
	}
	if !strings.HasSuffix(n1, " 464 * :Password incorrect") || e1 != "ERROR :Closing link: Unauthorized (bad account or password)" {
		t.Fatalf("unexpected refusal %q %q", n1, e1)
	}
}

func TestNoPasswordRefused(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("alice")
	c.register("alice", "")
	_, e := refusal(t, c)
	if !strings.Contains(e, "Unauthorized (login required") {
		t.Fatalf("got %q", e)
	}
}

func TestLockout(t *testing.T) {
	ts := startServer(t)
	try := func(pass string) string {
		c := ts.dial("alice")
		c.register("alice", pass)
		lines := c.expectClosed()
		if len(lines) > 0 && strings.Contains(strings.Join(lines, "\n"), " 001 ") {
			return "ok"
		}
		if len(lines) == 0 {
			t.Fatal("no reply")
		}
		return lines[len(lines)-1]
	}
	for _, pw := range []string{"guess1", "guess2", "guess3"} {
		if got := try(pw); !strings.Contains(got, "bad account or password") {
			t.Fatalf("failure reply: %q", got)
		}
	}
	// Locked: even the right password is refused, from any address.
	if got := try("alicepw"); got != "ERROR :Closing link: Unauthorized (too many failed logins, retry in 60s)" {
		t.Fatalf("4th attempt: %q", got)
	}
	// Attempts while locked do not extend the lock.
	ts.clock.Advance(59 * time.Second)
	if got := try("alicepw"); !strings.Contains(got, "retry in 1s") {
		t.Fatalf("at 59s: %q", got)
	}
	ts.clock.Advance(2 * time.Second)
	c := ts.dial("alice")
	c.register("alice", "alicepw")
	c.expect(` 001 alice `)
	c.send("QUIT")
	c.expectClosed()
	// Success reset the count: two more failures do not lock.
	try("guess4")
	try("guess5")
	c = ts.dial("alice")
	c.register("alice", "alicepw")
	c.expect(` 001 alice `)
}

func TestUnknownNamesLockToo(t *testing.T) {
	ts := startServer(t)
	for _, pw := range []string{"x", "y", "z"} {
		c := ts.dial("ghost")
		c.register("ghost", pw)
		c.expectClosed()
	}
	c := ts.dial("ghost")
	c.register("ghost", "x")
	_, e := refusal(t, c)
	if !strings.Contains(e, "too many failed logins") {
		t.Fatalf("got %q", e)
	}
}

func TestAlreadyLoggedIn(t *testing.T) {
	ts := startServer(t)
	first := ts.login("alice")
	second := ts.dial("alice2")
	second.register("alice", "alicepw")
	lines := second.expectClosed()
	if got := lines[len(lines)-1]; got != "ERROR :Closing link: account alice is already logged in" {
		t.Fatalf("got %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, " 433 ") {
			t.Fatal("433 sent: clients would retry as alice_")
		}
	}
	first.send("WHOELSE")
	first.expect(`NOTICE alice :0 other users online`)
}

// With DuplicatePing, a second login first PINGs the old session; one
// that answers keeps its place and the newcomer is refused as before.
func TestAlreadyLoggedInAndAnswering(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.DuplicatePing = 10 * time.Second }))
	first := ts.login("alice")
	second := ts.dial("alice2")
	second.register("alice", "alicepw")
	token := first.expectMatch(` PING :?(\S+)$`)[1]
	first.send("PONG :%s", token)
	lines := second.expectClosed()
	if got := lines[len(lines)-1]; got != "ERROR :Closing link: account alice is already logged in" {
		t.Fatalf("got %q", lines)
	}
	first.send("WHOELSE")
	first.expect(`NOTICE alice :0 other users online`)
}

// A session that does not answer that PING is taken for a dead connection
// (its peer vanished without a FIN) and ended, so its user can log in again
// at once instead of waiting for the ping timeout.
func TestSilentSessionEndedForNewLogin(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.DuplicatePing = 200 * time.Millisecond }))
	watcher := ts.login("bob")
	stale := ts.login("alice") // reads nothing from here on, as if its network were gone
	watcher.expect(`:alice!\S+ JOIN #lobby`)
	fresh := ts.dial("alice")
	fresh.register("alice", "alicepw")
	fresh.expect(` 001 alice `)
	watcher.expect(`:alice!\S+ QUIT :Quit: Ping timeout$`)
	watcher.expect(`:alice!\S+ JOIN #lobby`)
	lines := stale.expectClosed()
	if got := lines[len(lines)-1]; got != "ERROR :Closing link: Ping timeout" {
		t.Fatalf("old session's last line %q", got)
	}
	watcher.send("PRIVMSG alice :you again?")
	fresh.expect(`:bob!\S+ PRIVMSG alice :you again\?`)
}

func TestDuplicateReplace(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.OnDuplicate = "replace" }))
	watcher := ts.login("bob")
	old := ts.login("alice")
	watcher.expect(`:alice!.* JOIN #lobby`)
	fresh := ts.dial("alice")
	fresh.register("alice", "alicepw")
	fresh.expect(` 001 alice `)
	lines := old.expectClosed()
	if !strings.Contains(lines[len(lines)-1], "ERROR :Closing link: Logged in from elsewhere") {
		t.Fatalf("old session got %q", lines)
	}
	watcher.expect(`:alice!.* QUIT :Quit: Logged in from elsewhere`)
	watcher.expect(`:alice!.* JOIN #lobby`)
	// The new session is the live one.
	watcher.send("PRIVMSG alice :still there?")
	fresh.expect(`:bob!.* PRIVMSG alice :still there\?`)
}

func TestGuests(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.Guests = true }))
	g := ts.dial("visitor")
	g.register("visitor", "")
	g.expect(` 001 visitor `)
	g.expect(` 366 visitor `)
	// Account names stay protected.
	c := ts.dial("alice")
	c.register("alice", "")
	_, e := refusal(t, c)
	if !strings.Contains(e, "Unauthorized") {
		t.Fatalf("got %q", e)
	}
	// A second guest with the same nick gets 433 and may pick another.
	g2 := ts.dial("visitor2")
	g2.register("visitor", "")
	g2.expect(` 433 \* visitor `)
	g2.send("NICK visitor2")
	g2.expect(` 001 visitor2 `)
}

func TestCommandsNeedLogin(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("x")
	for _, cmd := range []string{"PRIVMSG #lobby :hi", "WHOELSE", "SILENCE", "BROADCAST hi", "FOOBAR"} {
		c.send(cmd)
		c.expect(` 451 \* :You have not registered`)
	}
	c.send("PING abc")
	c.expect(`PONG irc\.test :abc$`)
}

func TestRegistrationTimeout(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.RegTimeout = 200 * time.Millisecond }))
	c := ts.dial("slow")
	c.send("NICK slow")
	c.sync()
	ts.clock.Advance(time.Second) // on the server's clock, not the wall's
	lines := c.expectClosed()
	if !strings.Contains(lines[len(lines)-1], "Registration timed out") {
		t.Fatalf("got %q", lines)
	}
}

// A client that reconnects with a saved wrong password (HexChat does so
// forever) must not lock its owner out.
func TestSavedWrongPasswordReconnectsDoNotLock(t *testing.T) {
	ts := startServer(t)
	for range 6 {
		c := ts.dial("alice")
		c.register("alice", "typo")
		_, e := refusal(t, c)
		if !strings.Contains(e, "bad account or password") {
			t.Fatalf("got %q", e)
		}
		ts.clock.Advance(10 * time.Second)
	}
	c := ts.dial("alice")
	c.register("alice", "alicepw")
	c.expect(` 001 alice `)
}

// Watchers of an account whose session is replaced hear it come online
// and never hear a stale "offline" from the old session's cleanup.
func TestReplaceKeepsMonitorsTruthful(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.OnDuplicate = "replace" }))
	watcher := ts.login("bob")
	old := ts.login("alice")
	watcher.send("MONITOR + alice")
	watcher.expect(` 730 bob :?alice!`)
	fresh := ts.dial("alice")
	fresh.register("alice", "alicepw")
	fresh.expect(` 001 alice `)
	old.expectClosed()
	watcher.expect(` 730 bob :?alice!`)
	for _, l := range watcher.sync() {
		if strings.Contains(l, " 731 ") {
			t.Fatalf("watcher told the replaced account went offline: %q", l)
		}
	}
	watcher.send("MONITOR S")
	watcher.expect(` 730 bob :?alice!`)
}

// A user who quits and logs straight back in gets in: the ERROR and the
// closed socket reach the client before the old session's cleanup has
// let go of the account, and the new login waits for that instead of
// being refused as "already logged in".
func TestQuitThenLoginAtOnce(t *testing.T) {
	ts := startServer(t)
	for i := range 50 {
		c := ts.dial("alice")
		c.register("alice", "alicepw")
		c.expect(` 001 alice `)
		c.send("QUIT :round %d", i)
		c.expectClosed()
	}
}
