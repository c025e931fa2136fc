package ircd

import (
	"testing"
)

func TestSilenceListAndEcho(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	alice.send("SILENCE +Bob")
	alice.expect(`^:alice!alice@127\.0\.0\.1 SILENCE \+bob!\*@\*$`)
	alice.send("SILENCE +*!*@10.0.0.*")
	alice.expect(`SILENCE \+\*!\*@10\.0\.0\.\*$`)
	alice.send("SILENCE")
	alice.expect(` 271 alice alice :?bob!\*@\*$`)
	alice.expect(` 271 alice alice :?\*!\*@10\.0\.0\.\*$`)
	alice.expect(` 272 alice alice :End of Silence List$`)
	alice.send("SILENCE -bob")
	alice.expect(`SILENCE -bob!\*@\*$`)
	alice.send("SILENCE -bob")
	alice.expect(` 952 alice bob!\*@\* `)
	alice.send("silence")
	alice.expect(` 271 alice alice :?\*!\*@10\.0\.0\.\*$`)
	alice.expect(` 272 alice alice `)
}

func TestSilenceListFull(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.SilenceLimit = 2 }))
	alice := ts.login("alice")
	alice.send("SILENCE +a1")
	alice.expect(`SILENCE \+a1!`)
	alice.send("SILENCE +a2")
	alice.expect(`SILENCE \+a2!`)
	alice.send("SILENCE +a3")
	alice.expect(` 511 alice a3!\*@\* :Your silence list is full$`)
}

func TestSilencedPrivateMessagesDropped(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	alice.send("SILENCE +bob")
	alice.expect(`SILENCE \+bob`)
	bob.send("PRIVMSG alice :can you hear me")
	bob.expectNone(`.`) // the sender sees exactly what any sender sees
	alice.expectNone(`can you hear me`)

	alice.send("QUIT")
	alice.expectClosed()
	ts.waitGone("alice")
	// Offline: the same 301 as anyone gets, but nothing stored.
	bob.send("PRIVMSG alice :stored?")
	bob.expect(` 301 bob alice :alice is offline; your message will be delivered when they log in$`)
	if n, _ := ts.pending("alice"); n != 0 {
		t.Fatalf("silenced message stored: %d", n)
	}
}

func TestSilencedChannelLinesHidden(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	carol := ts.login("carol")
	alice.send("BLOCK bob")
	alice.expect(`^:alice!\S+ SILENCE \+bob!\*@\*$`)
	alice.expect(`NOTICE alice :Blocked bob!\*@\*`)
	bob.send("PRIVMSG #lobby :from bob")
	carol.expect(`:bob!.* PRIVMSG #lobby :from bob$`)
	alice.expectNone(`from bob`)
	alice.send("UNBLOCK bob")
	alice.expect(`^:alice!\S+ SILENCE -bob!\*@\*$`)
	bob.send("PRIVMSG #lobby :again")
	alice.expect(`:bob!.* PRIVMSG #lobby :again$`)
}

func TestSilencePersistsAcrossReconnectAndRestart(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	alice.send("SILENCE +carol")
	alice.expect(`SILENCE \+carol`)
	alice.send("QUIT")
	alice.expectClosed()
	ts.waitGone("alice")

	alice = ts.login("alice")
	alice.send("SILENCE")
	alice.expect(` 271 alice alice :?carol!\*@\*$`)
	alice.send("QUIT")
	alice.expectClosed()

	ts.restart()
	alice = ts.login("alice")
	alice.send("SILENCE")
	alice.expect(` 271 alice alice :?carol!\*@\*$`)
	carol := ts.login("carol")
	carol.send("PRIVMSG alice :after restart")
	carol.send("PRIVMSG #lobby :channel after restart")
	alice.expectNone(`after restart`)
}
