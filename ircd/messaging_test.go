package ircd

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestChannelBroadcast(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	carol := ts.login("carol", "echo-message")
	carol.send("PRIVMSG #lobby :hello everyone")
	alice.expect(`^:carol!carol@127\.0\.0\.1 PRIVMSG #lobby :hello everyone$`)
	bob.expect(`^:carol!carol@127\.0\.0\.1 PRIVMSG #lobby :hello everyone$`)
	carol.expect(`^:carol!carol@127\.0\.0\.1 PRIVMSG #lobby :hello everyone$`) // echo-message
	alice.send("NOTICE #LOBBY :a notice")
	bob.expect(`:alice!.* NOTICE #lobby :a notice$`)
	alice.expectNone(`a notice`) // no echo without echo-message
}

func TestPartJoinAndOtherChannels(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	bob.send("PART #lobby :brb")
	bob.expect(`^:bob!.* PART #lobby :brb$`)
	alice.expect(`^:bob!.* PART #lobby :brb$`)
	alice.send("PRIVMSG #lobby :while you were out")
	bob.expectNone(`while you were out`)
	bob.send("PRIVMSG #lobby :hi")
	bob.expect(` 404 bob #lobby `)
	bob.send("JOIN #lobby")
	bob.expect(`^:bob!.* JOIN #lobby$`)
	bob.expect(` 366 bob #lobby `)
	alice.expect(`^:bob!.* JOIN #lobby$`)
	bob.send("JOIN #elsewhere")
	bob.expect(` 403 bob #elsewhere :No such channel \(this server has one channel: #lobby\)`)
	bob.send("PRIVMSG #elsewhere :x")
	bob.expect(` 403 bob #elsewhere `)
}

func TestPrivateMessageOnline(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob", "echo-message")
	bob.send("PRIVMSG Alice :psst")
	alice.expect(`^:bob!bob@127\.0\.0\.1 PRIVMSG alice :psst$`)
	bob.expect(`^:bob!bob@127\.0\.0\.1 PRIVMSG alice :psst$`)
	alice.send("PRIVMSG nobody :hello?")
	alice.expect(` 401 alice nobody :No such nick/channel`)
	alice.send("PRIVMSG")
	alice.expect(` 411 alice `)
	alice.send("PRIVMSG bob")
	alice.expect(` 412 alice `)
}

func TestOfflineMessageServerTime(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	sent := ts.clock.Now()
	alice.send("PRIVMSG bob :first")
	alice.expect(` 301 alice bob :bob is offline; your message will be delivered when they log in$`)
	ts.clock.Advance(90 * time.Second)
	alice.send("NOTICE bob :second")
	alice.expectNone(`301`) // NOTICE never triggers automatic replies
	ts.clock.Advance(time.Hour)

	bob := ts.login("bob", "server-time")
	m := bob.expectMatch(`^@time=([^ ]+) :alice!alice@127\.0\.0\.1 PRIVMSG bob :first$`)
	if m[1] != sent.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("time tag %s, sent at %s", m[1], sent)
	}
	bob.expect(`^@time=2026-03-14T15:10:56\.000Z :alice!alice@127\.0\.0\.1 NOTICE bob :second$`)
	token := bob.expectMatch(`PING :?(replay-\S+)$`)[1]
	// Not deleted until the PONG.
	if n, _ := ts.pending("bob"); n != 2 {
		t.Fatalf("pending before PONG = %d, want 2", n)
	}
	bob.send("PONG :%s", token)
	bob.sync()
	if n, _ := ts.pending("bob"); n != 0 {
		t.Fatalf("pending after PONG = %d, want 0", n)
	}
}

func TestOfflineReplayWithoutServerTime(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	alice.send("MESSAGE bob see you later")
	alice.expect(` 301 alice bob `)
	bob := ts.login("bob")
	bob.expect(`^:alice!alice@127\.0\.0\.1 PRIVMSG bob :\[2026-03-14 15:09:26 UTC\] see you later$`)
}

func TestOfflineRedeliveredWithoutPong(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	for _, text := range []string{"one", "two", "three"} {
		alice.send("PRIVMSG bob :%s", text)
		alice.expect(` 301 alice bob `)
	}
	bob := ts.login("bob")
	bob.expect(`PRIVMSG bob :\[.*\] one$`)
	bob.expect(`PRIVMSG bob :\[.*\] two$`)
	bob.expect(`PRIVMSG bob :\[.*\] three$`)
	bob.expect(`PING :?replay-`)
	bob.conn.Close() // dropped before answering: nothing may be lost
	ts.waitGone("bob")

	again := ts.login("bob")
	again.expect(`PRIVMSG bob :\[.*\] one$`)
	again.expect(`PRIVMSG bob :\[.*\] two$`)
	again.expect(`PRIVMSG bob :\[.*\] three$`)
	token := again.expectMatch(`PING :?(replay-\S+)$`)[1]
	again.send("PONG %s", token)
	again.send("QUIT")
	again.expectClosed()
	ts.waitGone("bob")

	last := ts.login("bob")
	last.expectNone(`PRIVMSG`)
}

func TestMessageWhileRecipientOnlineIsNotStored(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	ts.login("bob")
	alice.send("PRIVMSG bob :live")
	alice.expectNone(` 301 `)
	if n, _ := ts.pending("bob"); n != 0 {
		t.Fatalf("stored %d messages for an online user", n)
	}
}

func TestMailboxFull(t *testing.T) {
	ts := startServer(t, withMailboxLimit(2))
	alice := ts.login("alice")
	alice.send("PRIVMSG bob :1")
	alice.expect(` 301 alice bob `)
	alice.send("PRIVMSG bob :2")
	alice.expect(` 301 alice bob `)
	alice.send("PRIVMSG bob :3")
	alice.expect(` 531 alice bob :bob's mailbox is full; your message was not stored$`)
}

func TestUnknownOfflineTargets(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	alice.send("PRIVMSG zed :hi")
	alice.expect(` 401 alice zed `)
	alice.send("NOTICE zed :hi")
	alice.expectNone(` 401 `)
}

func TestAliases(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	alice.send("BROADCAST hello there  world")
	bob.expect(`:alice!.* PRIVMSG #lobby :hello there  world$`)
	alice.send("broadcast :with colon")
	bob.expect(`:alice!.* PRIVMSG #lobby ::?with colon$`)
	alice.send("MESSAGE bob :private words")
	bob.expect(`:alice!.* PRIVMSG bob :private words$`)
	alice.send("Message bob no colon here")
	bob.expect(`:alice!.* PRIVMSG bob :no colon here$`)
	alice.send("MESSAGE bob")
	alice.expect(` 461 alice MESSAGE `)
	alice.send("BROADCAST")
	alice.expect(` 461 alice BROADCAST `)
	bob.send("LOGOUT")
	lines := bob.expectClosed()
	if !strings.HasPrefix(lines[len(lines)-1], "ERROR :Closing link:") {
		t.Fatalf("LOGOUT: %q", lines)
	}
	alice.expect(`:bob!.* QUIT :`)
}

// The text of BROADCAST with a leading ':' is the rest without it.
func TestBroadcastColonExact(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	alice.send("BROADCAST :with colon")
	line := bob.expect(`PRIVMSG #lobby`)
	if !strings.HasSuffix(line, "#lobby :with colon") {
		t.Fatalf("got %q", line)
	}
}

func TestQuitAnnounced(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob")
	bob.send("QUIT :gone fishing")
	lines := bob.expectClosed()
	if lines[len(lines)-1] != "ERROR :Closing link: Quit: gone fishing" {
		t.Fatalf("got %q", lines)
	}
	alice.expect(`^:bob!bob@127\.0\.0\.1 QUIT :Quit: gone fishing$`)
}

func TestTagmsgAndClientTags(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "message-tags")
	bob := ts.login("bob")
	carol := ts.login("carol", "message-tags")
	carol.send("@+typing=active TAGMSG #lobby")
	alice.expect(`^@msgid=\S+;\+typing=active :carol!.* TAGMSG #lobby$`)
	bob.expectNone(`TAGMSG`)
	carol.send("@+draft/reply=abc;+x=y\\sz PRIVMSG #lobby :tagged")
	line := alice.expect(`PRIVMSG #lobby :tagged$`)
	if !strings.Contains(line, "+draft/reply=abc") || !strings.Contains(line, `+x=y\sz`) {
		t.Fatalf("client tags not relayed: %q", line)
	}
	if l := bob.expect(`PRIVMSG #lobby :tagged$`); strings.HasPrefix(l, "@") {
		t.Fatalf("tags sent to a client without message-tags: %q", l)
	}
}

func TestAccountTagAndExtendedJoin(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "account-tag", "extended-join")
	ts.login("bob")
	alice.expect(`^@account=bob :bob!bob@127\.0\.0\.1 JOIN #lobby bob :bob real$`)
}

var timeTag = regexp.MustCompile(`^@time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)

func TestServerTimeOnLiveMessages(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "server-time")
	bob := ts.login("bob")
	bob.send("PRIVMSG #lobby :timed")
	if l := alice.expect(`PRIVMSG #lobby :timed`); !timeTag.MatchString(l) {
		t.Fatalf("no time tag: %q", l)
	}
}

// Past announce_limit members, joins and quits are not announced, but
// NAMES and WHOELSE still tell the truth.
func TestAnnounceLimit(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) { c.AnnounceLimit = 2 }))
	alice := ts.login("alice")
	ts.login("bob")
	alice.expect(`:bob!\S+ JOIN #lobby$`) // 2 members: announced
	carol := ts.login("carol")            // 3 > 2: quiet
	carol.send("QUIT")
	carol.expectClosed()
	ts.waitGone("carol")
	for _, l := range alice.sync() {
		if strings.Contains(l, "carol") {
			t.Fatalf("carol's join or quit announced past the limit: %q", l)
		}
	}
	ts.login("dave")
	alice.send("NAMES #lobby")
	alice.expect(` 353 alice = #lobby :alice bob dave$`)
	alice.send("WHOELSE")
	alice.expect(`2 other users online`)
}

// echo-message also echoes a message that was stored for later.
func TestEchoOfStoredMessage(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "echo-message")
	alice.send("PRIVMSG Bob :for later")
	alice.expect(`^:alice!\S+ PRIVMSG bob :for later$`)
	alice.expect(` 301 alice bob `)
}

// With message-tags every relayed message carries a msgid (history and
// clients that drop duplicates need it): room lines, private ones, live
// or stored, each id different.
func TestRelayedMessagesCarryMsgid(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice", "message-tags", "echo-message")
	bob := ts.login("bob", "message-tags")
	plain := ts.login("carol")
	alice.send("PRIVMSG #lobby :one")
	alice.send("PRIVMSG bob :two")
	ids := map[string]bool{}
	for _, c := range []*testClient{alice, bob} {
		for _, re := range []string{`^@msgid=([^ ;]+)\S* :alice!\S+ PRIVMSG #lobby :one$`} {
			ids[c.expectMatch(re)[1]] = true
		}
	}
	if len(ids) != 1 {
		t.Fatalf("one line, ids %v: the echo and the relay must share it", ids)
	}
	two := bob.expectMatch(`^@msgid=([^ ;]+)\S* :alice!\S+ PRIVMSG bob :two$`)[1]
	if two == "" || ids[two] {
		t.Fatalf("private message id %q (room line's %v)", two, ids)
	}
	if l := plain.expect(`PRIVMSG #lobby :one$`); strings.HasPrefix(l, "@") {
		t.Fatalf("tags sent to a client without message-tags: %q", l)
	}
	alice.send("PRIVMSG dave :stored")
	alice.expect(` 301 alice dave `)
	dave := ts.login("dave", "message-tags")
	if id := dave.expectMatch(`^@msgid=([^ ;]+)\S* :alice!\S+ PRIVMSG dave :.*stored$`)[1]; id == "" || id == two {
		t.Fatalf("stored message id %q", id)
	}
}

// TestBatchedDeliveryForms: a run of lines read at once (one pump run,
// one write per recipient) reaches each recipient in order and in its own
// form: tags for a message-tags and server-time client (bob), none for a
// plain one (alice), nothing for one that silenced the sender (carol);
// the sender (dave) gets its echo.
func TestBatchedDeliveryForms(t *testing.T) {
	ts := startServer(t)
	alice := ts.login("alice")
	bob := ts.login("bob", "message-tags", "server-time")
	carol := ts.login("carol")
	dave := ts.login("dave", "echo-message")
	carol.send("SILENCE +dave!*@*")
	carol.expect(`SILENCE \+dave!\*@\*`)
	var b strings.Builder
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, "PRIVMSG alice :p%d\r\nPRIVMSG bob :t%d\r\nPRIVMSG carol :q%d\r\n", i, i, i)
	}
	b.WriteString("PRIVMSG #lobby :all\r\n")
	dave.sendRaw([]byte(b.String()))
	for i := range n {
		alice.expect(fmt.Sprintf(`^:dave!dave@127\.0\.0\.1 PRIVMSG alice :p%d$`, i))
		bob.expect(fmt.Sprintf(`^@msgid=[^ ;]+;time=\d{4}-\d\d-\d\dT[0-9:.]+Z :dave!dave@127\.0\.0\.1 PRIVMSG bob :t%d$`, i))
		dave.expect(fmt.Sprintf(`^:dave!dave@127\.0\.0\.1 PRIVMSG alice :p%d$`, i))
		dave.expect(fmt.Sprintf(`^:dave!dave@127\.0\.0\.1 PRIVMSG bob :t%d$`, i))
		dave.expect(fmt.Sprintf(`^:dave!dave@127\.0\.0\.1 PRIVMSG carol :q%d$`, i))
	}
	alice.expect(`^:dave!\S+ PRIVMSG #lobby :all$`)
	bob.expect(`^@msgid=[^ ;]+;time=\S+ :dave!\S+ PRIVMSG #lobby :all$`)
	dave.expect(`^:dave!\S+ PRIVMSG #lobby :all$`)
	carol.expectNone(`dave`)
}
