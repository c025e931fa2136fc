package ircd

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// historyLines sends a CHATHISTORY request and returns the texts of the
// lines in its batch.
func historyLines(c *testClient, req string) []string {
	c.t.Helper()
	c.send("%s", req)
	c.expect(`BATCH \+\S+ chathistory #lobby$`)
	var out []string
	rx := regexp.MustCompile(`^@batch=\S+ :\S+ PRIVMSG #lobby :(.*)$`)
	for {
		l := c.expect(`^@batch=|BATCH -`)
		if strings.Contains(l, "BATCH -") {
			return out
		}
		if m := rx.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
}

func TestChathistory(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.History = 5 }))
	alice := ts.login("alice")
	var ids []string
	watcher := ts.login("carol", "message-tags", "batch")
	for i := range 7 {
		alice.send("PRIVMSG #lobby :m%d", i)
		ids = append(ids, watcher.expectMatch(fmt.Sprintf(`^@msgid=([^ ;]+)\S* :alice!\S+ PRIVMSG #lobby :m%d$`, i))[1])
		ts.clock.Advance(time.Second)
	}
	bob := ts.login("bob", "batch", "message-tags", "server-time")
	bob.send("VERSION")
	bob.expect(` 005 bob .*CHATHISTORY=100`)
	// The ring keeps the last 5.
	if got := historyLines(bob, "CHATHISTORY LATEST #lobby * 10"); strings.Join(got, " ") != "m2 m3 m4 m5 m6" {
		t.Fatalf("LATEST *: %q", got)
	}
	if got := historyLines(bob, "CHATHISTORY LATEST #lobby * 2"); strings.Join(got, " ") != "m5 m6" {
		t.Fatalf("LATEST * 2: %q", got)
	}
	if got := historyLines(bob, "CHATHISTORY BEFORE #lobby msgid="+ids[5]+" 2"); strings.Join(got, " ") != "m3 m4" {
		t.Fatalf("BEFORE m5: %q", got)
	}
	if got := historyLines(bob, "CHATHISTORY AFTER #lobby msgid="+ids[3]+" 2"); strings.Join(got, " ") != "m4 m5" {
		t.Fatalf("AFTER m3: %q", got)
	}
	if got := historyLines(bob, "CHATHISTORY LATEST #lobby msgid="+ids[4]+" 10"); strings.Join(got, " ") != "m5 m6" {
		t.Fatalf("LATEST after m4: %q", got)
	}
	at := formatTime(ts.clock.Now().Add(-3 * time.Second))
	if got := historyLines(bob, "CHATHISTORY BEFORE #lobby timestamp="+at+" 10"); strings.Join(got, " ") != "m2 m3" {
		t.Fatalf("BEFORE %s: %q", at, got)
	}
	// Each line keeps its original time and id.
	bob.send("CHATHISTORY LATEST #lobby * 1")
	line := bob.expect(`PRIVMSG #lobby :m6$`)
	if !strings.Contains(line, "msgid="+ids[6]) || !strings.Contains(line, "time=2026-03-14T15:09:32.000Z") {
		t.Fatalf("history line %q: want msgid %s and the time it was sent", line, ids[6])
	}
	// Silenced senders stay hidden in history too.
	bob.send("SILENCE +alice")
	bob.expect(`SILENCE \+alice!\*@\*$`)
	if got := historyLines(bob, "CHATHISTORY LATEST #lobby * 10"); len(got) != 0 {
		t.Fatalf("silenced sender's lines in history: %q", got)
	}
	bob.send("CHATHISTORY AROUND #lobby * 10")
	bob.expect(`FAIL CHATHISTORY INVALID_PARAMS `)
	bob.send("CHATHISTORY LATEST #lobby bogus 10")
	bob.expect(`FAIL CHATHISTORY INVALID_PARAMS `)
	// Without the batch capability the lines come bare.
	dave := ts.login("dave")
	dave.send("CHATHISTORY LATEST #lobby * 1")
	if l := dave.expect(`PRIVMSG #lobby :`); !strings.HasPrefix(l, ":alice!") {
		t.Fatalf("for a client without batch: %q", l)
	}
}

func TestChathistoryOff(t *testing.T) {
	ts := startServer(t) // History 0
	alice := ts.login("alice")
	alice.send("CHATHISTORY LATEST #lobby * 10")
	alice.expect(`FAIL CHATHISTORY UNKNOWN_COMMAND `)
}
