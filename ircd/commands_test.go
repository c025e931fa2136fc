package ircd

import (
	"strings"
	"testing"
)

func TestStandardQueries(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	ts.login("bob")
	steps := []struct{ send, expect string }{
		{"PING :xyz", `PONG irc\.test :xyz$`},
		{"MODE alice", ` 221 alice :?\+i$`},
		{"MODE alice +i", ``},
		{"MODE alice +z", ` 501 alice `},
		{"MODE bob +i", ` 502 alice `},
		{"MODE #lobby", ` 324 alice #lobby :?\+nt$`},
		{"MODE #lobby b", ` 368 alice #lobby `},
		{"MODE #lobby +m", ` 482 alice #lobby `},
		{"WHO #lobby", ` 352 alice #lobby bob 127\.0\.0\.1 irc\.test bob H :0 bob real$`},
		{"WHO bob", ` 315 alice bob `},
		{"WHOIS bob", ` 311 alice bob bob 127\.0\.0\.1 \* :bob real$`},
		{"WHOIS nobody", ` 401 alice nobody `},
		{"WHOWAS nobody", ` 406 alice nobody `},
		{"ISON bob carol alice", ` 303 alice :bob alice$`},
		{"USERHOST bob", ` 302 alice :bob=\+bob@127\.0\.0\.1$`},
		{"NAMES #lobby", ` 353 alice = #lobby :alice bob$`},
		{"NAMES #nothere", ` 366 alice #nothere `},
		{"TOPIC #lobby", ` 332 alice #lobby :the topic$`},
		{"TOPIC #lobby :new", ` 482 alice #lobby `},
		{"LIST", ` 322 alice #lobby 2 :the topic$`},
		{"MOTD", ` 372 alice :- hello$`},
		{"LUSERS", ` 251 alice :There are 2 users`},
		{"VERSION", ` 351 alice lobbyircd`},
		{"TIME", ` 391 alice irc\.test :Sat, 14 Mar 2026 15:09:26 UTC$`},
		{"FROBNICATE", ` 421 alice FROBNICATE :Unknown command$`},
		{"WHOIS", ` 461 alice WHOIS :Not enough parameters$`},
		{"JOIN", ` 461 alice JOIN `},
		{"NICK other", ` 447 alice other `},
		{"USER a b c d", ` 462 alice `},
	}
	for _, s := range steps {
		alice.send(s.send)
		if s.expect != "" {
			alice.expect(s.expect)
		}
	}
	alice.expectNone(` 4\d\d alice MODE`) // "MODE alice +i" was accepted quietly
}

func TestAway(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "away-notify")
	bob := ts.login("bob")
	bob.send("AWAY :lunch")
	bob.expect(` 306 bob `)
	alice.expect(`^:bob!\S+ AWAY :lunch$`)
	alice.send("PRIVMSG bob :you there?")
	alice.expect(` 301 alice bob :lunch$`)
	alice.send("WHO #lobby")
	alice.expect(` 352 alice #lobby bob .* bob G `)
	bob.send("AWAY")
	bob.expect(` 305 bob `)
	alice.expect(`^:bob!\S+ AWAY$`)
}

func TestMonitor(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	alice.send("MONITOR + bob,carol")
	alice.expect(` 731 alice :?bob,carol$`)
	bob := ts.login("bob")
	alice.expect(` 730 alice :?bob!bob@127\.0\.0\.1$`)
	alice.send("MONITOR L")
	alice.expect(` 732 alice :?bob,carol$`)
	alice.expect(` 733 alice `)
	bob.send("QUIT")
	alice.expect(` 731 alice :?bob$`)
	alice.send("MONITOR - bob")
	alice.send("MONITOR S")
	alice.expect(` 731 alice :?carol$`)
}

func TestCommandsCaseInsensitive(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	alice.send("privmsg bob :lower")
	bob.expect(`PRIVMSG bob :lower$`)
	alice.send("Whoelse")
	alice.expect(`NOTICE alice :1 other user online$`)
	alice.send("silence +carol")
	alice.expect(`SILENCE \+carol`)
}

func TestSplitRest(t *testing.T) {
	cases := []struct {
		raw  string
		n    int
		args []string
		text string
	}{
		{"BROADCAST hello  world", 0, nil, "hello  world"},
		{"BROADCAST :hello world", 0, nil, "hello world"},
		{"@a=b :pfx MESSAGE bob :hi there", 1, []string{"bob"}, "hi there"},
		{"MESSAGE  bob   hi", 1, []string{"bob"}, "hi"},
	}
	for _, c := range cases {
		args, text, ok := splitRest(c.raw, c.n)
		if !ok || text != c.text || strings.Join(args, ",") != strings.Join(c.args, ",") {
			t.Errorf("splitRest(%q) = %q %q %v", c.raw, args, text, ok)
		}
	}
	if _, _, ok := splitRest("MESSAGE", 1); ok {
		t.Error("MESSAGE without a target accepted")
	}
}
