package ircd

import (
	"fmt"
	"strings"
	"testing"
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
	for _, key := range []string{"+a\x1bb", "+a\xffb", "+a\x00b", "+a\rb", "+", "+/x", "+a.b/", "+x:y", "+a/b/c"} {
		alice.sendRaw([]byte("@" + key + "=v;+ok=1 PRIVMSG #lobby :bad key " + fmt.Sprintf("%q", key) + "\r\n"))
		line := bob.expect(`PRIVMSG #lobby :bad key`)
		tags, _, _ := strings.Cut(line, " ")
		if !strings.Contains(tags, "+ok=1") || strings.Count(tags, ";") != 2 { // account, +ok, time
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
