package ircd

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Conformance gaps the public irctest suite found (issue 12), and what a
// client expects of the same commands.

func TestUserNeedsARealname(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("x")
	c.send("PASS alicepw")
	c.send("NICK alice")
	c.send("USER alice 0 * :")
	c.expect(` 461 \* USER :Not enough parameters$`)
	c.send("USER alice 0 * :Alice A")
	c.expect(` 001 alice `)
}

// With UTF8ONLY advertised, a message that is not UTF-8 is refused with
// FAIL ... INVALID_UTF8 and not relayed; other commands are handled with
// the bytes replaced, and WARN says so.
func TestInvalidUTF8Answered(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	alice.sendRaw([]byte("PRIVMSG #lobby :caf\xe9\r\n"))
	alice.expect(`^:irc\.test FAIL PRIVMSG INVALID_UTF8 :`)
	alice.sendRaw([]byte("AWAY :l\xe0-bas\r\n"))
	alice.expect(`FAIL AWAY INVALID_UTF8 `)
	alice.sendRaw([]byte("WHOIS b\xffb\r\n"))
	alice.expect(`WARN WHOIS INVALID_UTF8 `)
	alice.expect(` 401 alice `)
	alice.send("PRIVMSG #lobby :café")
	bob.expect(`PRIVMSG #lobby :café$`)
	for _, l := range bob.log {
		if strings.Contains(l, "caf\xe9") || strings.Contains(l, "caf\uFFFD") {
			t.Fatalf("invalid UTF-8 relayed: %q", l)
		}
	}
}

// SASL: a payload growing past the limit over many chunks is a failed
// authentication (904); one chunk over 400 bytes is too long (905).
func TestSASLPayloadLimits(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("x")
	c.send("CAP REQ :sasl")
	c.send("AUTHENTICATE PLAIN")
	c.expect(`AUTHENTICATE \+$`)
	chunk := strings.Repeat("A", 400)
	for range 4 {
		c.send("AUTHENTICATE %s", chunk)
	}
	c.expect(` 904 \* :SASL authentication failed`)
	c.send("AUTHENTICATE PLAIN")
	c.expect(`AUTHENTICATE \+$`)
	c.send("AUTHENTICATE %s", strings.Repeat("A", 401))
	c.expect(` 905 \* :SASL message too long$`)
	// A lockout is said in the 904, as the closing ERROR would.
	for i := range 3 {
		b := ts.dial("g")
		b.register("carol", "wrong"+string(rune('a'+i)))
		b.expectClosed()
	}
	c.send("AUTHENTICATE PLAIN")
	c.expect(`AUTHENTICATE \+$`)
	c.send("AUTHENTICATE %s", base64.StdEncoding.EncodeToString([]byte("\x00carol\x00carolpw")))
	c.expect(` 904 \* :SASL authentication failed: too many failed logins, retry in \d+s$`)
}

// WHOWAS gives the user's real username, host and realname.
func TestWhowasKeepsTheUser(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.dial("bob")
	bob.send("PASS bobpw")
	bob.send("NICK bob")
	bob.send("USER bobby 0 * :Bob Builder")
	bob.expect(` 366 bob `)
	bob.send("QUIT")
	bob.expectClosed()
	ts.waitGone("bob")
	alice.send("WHOWAS bob")
	alice.expect(` 314 alice bob bobby 127\.0\.0\.1 \* :Bob Builder$`)
	alice.expect(` 369 alice bob `)
}
