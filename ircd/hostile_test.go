package ircd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// Tests for holes an attacker found (issue: hostile input, round two).

// TARGMAX=TAGMSG:4 is enforced as for PRIVMSG, and a target named twice
// gets the line once: 70 targets once turned 60 KB of input into 303 MB
// of output.
func TestTagmsgTargetLimitAndRepeats(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "message-tags")
	bob := ts.login("bob", "message-tags")
	big := "+t=" + strings.Repeat("x", 3000)
	targets := strings.TrimSuffix(strings.Repeat("#lobby,", 70), ",")
	alice.send("@%s TAGMSG %s", big, targets)
	alice.expect(` 407 alice #lobby,#lobby,\S* :Too many targets`)
	alice.send("@+t=1 TAGMSG #lobby,#LOBBY,#lobby,#Lobby")
	alice.send("@+t=2 TAGMSG bob,BOB,bob")
	alice.send("PRIVMSG bob,Bob,bob,bob :once")
	alice.send("NOTICE #lobby,#lobby :once too")
	alice.sync() // everything alice sent is queued to bob before his PONG
	lines := bob.sync()
	count := func(sub string) int {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, sub) {
				n++
			}
		}
		return n
	}
	for sub, want := range map[string]int{"+t=1 ": 1, "+t=2 ": 1, "PRIVMSG bob :once": 1, "NOTICE #lobby :once too": 1, "+t=x": 0} {
		if got := count(sub); got != want {
			t.Errorf("%q reached bob %d times, want %d; lines:\n%s", sub, got, want, strings.Join(lines, "\n"))
		}
	}
	alice.send("PRIVMSG a,b,c,d,e :five")
	alice.expect(` 407 alice a,b,c,d,e :Too many targets`)
}

// Client tag keys are relayed only when they follow the message-tags
// grammar; tags over a client's 4094 bytes get 417; a relayed line's tag
// section stays within 8191 bytes.
func TestClientTagKeysValidatedAndBounded(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "message-tags", "server-time", "account-tag")
	bob := ts.login("bob", "message-tags", "server-time", "account-tag")
	alice.sendRaw([]byte("@+a\xffb=v PRIVMSG #lobby :not UTF-8\r\n"))
	alice.expect(`FAIL PRIVMSG INVALID_UTF8 `) // UTF8ONLY: refused whole
	for _, key := range []string{"+a\x1bb", "+a\x00b", "+a\rb", "+", "+/x", "+a.b/", "+x:y", "+a/b/c"} {
		alice.sendRaw([]byte("@" + key + "=v;+ok=1 PRIVMSG #lobby :bad key " + fmt.Sprintf("%q", key) + "\r\n"))
		line := bob.expect(`PRIVMSG #lobby :bad key`)
		tags, _, _ := strings.Cut(line, " ")
		if !strings.Contains(tags, "+ok=1") || strings.Count(tags, ";") != 3 { // account, msgid, +ok, time
			t.Errorf("key %q: relayed tags %q", key, tags)
		}
	}
	alice.send("@+example.com/my-tag=1;+draft/reply=x PRIVMSG #lobby :good keys")
	line := bob.expect(`PRIVMSG #lobby :good keys`)
	if !strings.Contains(line, "+example.com/my-tag=1") || !strings.Contains(line, "+draft/reply=x") {
		t.Errorf("valid keys dropped: %q", line)
	}

	alice.send("@+big=%s PRIVMSG #lobby :too many tag bytes", strings.Repeat("b", 4095-len("+big=")))
	alice.expect(` 417 alice :Input line was too long$`)
	max := "+big=" + strings.Repeat("b", 4094-len("+big="))
	alice.send("@%s PRIVMSG #lobby :most tag bytes", max)
	line = bob.expect(`PRIVMSG #lobby :most tag bytes`)
	if tags, _, _ := strings.Cut(line, " "); len(tags)-1 > maxTagsLen || !strings.Contains(tags, max) {
		t.Fatalf("relayed tag section of %d bytes (limit %d), big tag kept: %v", len(tags)-1, maxTagsLen, strings.Contains(tags, max))
	}
	for _, l := range bob.sync() {
		if strings.Contains(l, "too many tag bytes") {
			t.Fatalf("over-long tags relayed: %.80q", l)
		}
	}
}

// selfSignedTLS returns a server config with a fresh certificate for
// 127.0.0.1, and a client config that trusts it.
func selfSignedTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "irc.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// A TLS handshake must finish within the registration timeout: 20
// connections that sent nothing, or only a record header, once stayed
// open for good (2,000 of them filled the server).
func TestStalledTLSHandshakesTimeOut(t *testing.T) {
	srvTLS, cliTLS := selfSignedTLS(t)
	ts := startServer(t, withTLS(srvTLS), withConfig(func(c *Config) { c.RegTimeout = 300 * time.Millisecond }))
	var conns []net.Conn
	for i := range 20 {
		c, err := net.DialTimeout("tcp", ts.addr, waitTime)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 1 {
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}) // a handshake record header, then nothing
		}
		conns = append(conns, c)
	}
	start := time.Now()
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(waitTime))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("conn %d: not closed by the server: %v", i, err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stalled handshakes closed after %v, registration timeout is 300ms", d)
	}
	waitFor(t, "stalled connections to be forgotten", func() bool { return ts.srv.Stats().Connections == 0 })

	// A real TLS client still logs in.
	raw, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTime}, "tcp", ts.addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	alice := &testClient{t: t, name: "alice", conn: raw, r: bufio.NewReader(raw)}
	alice.register("alice", "alicepw")
	alice.expect(` 001 alice `)
}

// Shutdown does not wait for a handshake that is stalled.
func TestShutdownEndsStalledTLSHandshake(t *testing.T) {
	srvTLS, _ := selfSignedTLS(t)
	ts := startServer(t, withTLS(srvTLS))
	c, err := net.DialTimeout("tcp", ts.addr, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the connection to be accepted", func() bool { return ts.srv.Stats().Connections == 1 })
	start := time.Now()
	ts.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v with a stalled handshake", d)
	}
}

// "PASS account:password" reads the same whatever NICK says: it used to
// log in when NICK was not an account and fail when it was, which told a
// logged-in user which names exist.
func TestPassAccountFormIgnoresWhetherNickIsAnAccount(t *testing.T) {
	ts := startServer(t)
	for _, nick := range []string{"bob", "nosuchuser"} {
		c := ts.dial(nick)
		c.send("PASS carol:carolpw")
		c.send("NICK %s", nick)
		c.send("USER u 0 * :r")
		c.expect(` 001 carol `)
		c.send("QUIT")
		c.expectClosed()
		ts.waitGone("carol")

		bad := ts.dial(nick)
		bad.send("PASS carol:wrong-" + nick)
		bad.send("NICK %s", nick)
		bad.send("USER u 0 * :r")
		lines := bad.expectClosed()
		if last := lines[len(lines)-1]; last != "ERROR :Closing link: "+unauthorized {
			t.Fatalf("NICK %s: got %q", nick, last)
		}
	}
}

func TestSplitPass(t *testing.T) {
	for _, tc := range []struct{ nick, pass, account, password string }{
		{"alice", "alicepw", "alice", "alicepw"},
		{"x", "alice:alicepw", "alice", "alicepw"},
		{"bob", "alice:alicepw", "alice", "alicepw"},
		{"alice", "alice:pa:ss", "alice", "pa:ss"}, // a ':' in the password
		{"alice", "1abc:def", "alice", "1abc:def"}, // not a name before ':'
		{"alice", ":secret", "alice", ":secret"},
	} {
		a, p := splitPass(tc.nick, tc.pass)
		if a != tc.account || p != tc.password {
			t.Errorf("splitPass(%q, %q) = %q, %q; want %q, %q", tc.nick, tc.pass, a, p, tc.account, tc.password)
		}
	}
}

// A SASL attempt that fails and a retry that succeeds is a login, not
// "900 logged in" followed by 464 and ERROR.
func TestSASLRetryAfterFailure(t *testing.T) {
	ts := startServer(t)
	c := ts.dial("alice")
	c.send("CAP LS 302")
	c.send("CAP REQ :sasl")
	c.expect(`ACK :sasl`)
	c.send("AUTHENTICATE PLAIN")
	c.expect(`AUTHENTICATE \+$`)
	c.send("AUTHENTICATE %s", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")))
	c.expect(` 904 `)
	c.send("AUTHENTICATE PLAIN")
	c.expect(`AUTHENTICATE \+$`)
	c.send("AUTHENTICATE %s", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00alicepw")))
	c.expect(` 903 `)
	c.send("CAP END")
	c.send("NICK alice")
	c.send("USER alice 0 * :alice")
	line := c.expect(` (001|464) `)
	if !strings.Contains(line, " 001 alice ") {
		t.Fatalf("after a successful SASL retry: %q", line)
	}
}

// A failed login logs the account only if it is one: what was typed as a
// name may be part of a password ("PASS Sunny:Day99" with a wrong NICK).
func TestFailedLoginLogsNoUnknownName(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, withConfig(func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}))
	c := ts.dial("x")
	c.send("PASS Sunny:Day99")
	c.send("NICK alcie")
	c.send("USER u 0 * :r")
	c.expectClosed()
	b := ts.dial("y")
	b.register("bob", "wrong")
	b.expectClosed()
	waitFor(t, "the failures to be logged", func() bool { return strings.Count(logs.String(), "login failed") == 2 })
	l := logs.String()
	for _, secret := range []string{"Sunny", "Day99", "alcie"} {
		if strings.Contains(l, secret) {
			t.Errorf("log contains %q:\n%s", secret, l)
		}
	}
	if !strings.Contains(l, "account=bob") {
		t.Errorf("a known account's failure should name it:\n%s", l)
	}
}

// One sender cannot fill someone's mailbox: it gets a share, says so in
// the 531, and naming the recipient four times in one command stores the
// message once (PRIVMSG bob,bob,bob,bob once filled a mailbox in 75 s).
func TestMailboxShareAndRepeatedTargets(t *testing.T) {
	ts := startServer(t, withMailboxShare(3), withMailboxLimit(5))
	alice := ts.login("alice")
	alice.send("PRIVMSG bob,BOB,bob,Bob :one")
	alice.expect(` 301 alice bob `)
	alice.send("PRIVMSG bob :two")
	alice.send("PRIVMSG bob :three")
	alice.send("PRIVMSG bob :four")
	alice.expect(` 531 alice bob :You have filled your share of bob's mailbox; your message was not stored until they read what you sent$`)
	if n, _ := ts.pending("bob"); n != 3 {
		t.Fatalf("bob has %d stored, want 3", n)
	}
	carol := ts.login("carol")
	carol.send("PRIVMSG bob :from carol")
	carol.expect(` 301 carol bob `) // others still get in
	dave := ts.login("dave")
	dave.send("PRIVMSG bob :from dave")
	dave.expect(` 301 dave bob `)
	dave.send("PRIVMSG bob :over the limit")
	dave.expect(` 531 dave bob :bob's mailbox is full; your message was not stored$`)
}

// WHOIS of a user who is logging in reads only published values (it once
// raced with the session's signon time being set; -race finds it).
func TestWhoisWhileLoggingIn(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			fmt.Fprintf(alice.conn, "WHOIS bob\r\n")
		}
	}()
	for range 5 {
		bob := ts.login("bob")
		bob.send("QUIT")
		bob.expectClosed()
		ts.waitGone("bob")
	}
	<-done
	alice.sync()
}
