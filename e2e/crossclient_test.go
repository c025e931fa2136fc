package e2e

// Cross-client end to end: irssi, WeeChat and HexChat connected to one
// server at the same time (alice in irssi, bob in WeeChat, carol in
// HexChat), each checked through what the *other* real clients show.
//
// Each client is wrapped in a chatClient so a scenario can be written once
// for every pair: what to type (the guide's commands) and what to wait for
// in that client's own logs.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chatClient is one real client logged in as one account.
type chatClient interface {
	Client() string // "irssi", "WeeChat", "HexChat"
	Nick() string
	// Say types a line into the #lobby window/buffer/tab.
	Say(text string)
	// Msg types "/msg nick text".
	Msg(nick, text string)
	// Quit types "/quit reason".
	Quit(reason string)
	// WaitChannel waits until the #lobby log shows text said by from.
	WaitChannel(from, text string)
	// WaitQuery waits until the query with from shows text from from, and
	// returns when the client says it was sent (its timestamp, UTC).
	WaitQuery(from, text string, ref time.Time) time.Time
	// WaitQuitShown waits until the #lobby log shows nick quitting with
	// reason.
	WaitQuitShown(nick, reason string)
	// WaitOfflineReply waits until the server's "<nick> is offline" reply
	// (301) reached the client and returns the reply's server-time tag: the
	// time the message was stored.
	WaitOfflineReply(nick string) time.Time
	// Debug describes the client's state for failure messages.
	Debug() string
}

// channelWithRaw is the channel scenario between one real client and a
// raw connection (alice): the client's typed line reaches alice, and
// alice's line and the client's own show in its #lobby log.
func channelWithRaw(c chatClient, alice *rawClient, wait time.Duration) {
	out := uniq("hello from " + c.Client())
	c.Say(out)
	alice.Expect(`:`+c.Nick()+`!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(out)+`$`, wait)
	in := uniq("hello from alice")
	alice.Send("PRIVMSG #lobby :%s", in)
	c.WaitChannel("alice", in)
	c.WaitChannel(c.Nick(), out)
}

// crossWait is the deadline for one line to cross from one client to
// another. HexChat's flood control can hold a typed line for several
// seconds right after login, hence more than the per-client waits.
const crossWait = 25 * time.Second

// reasonRe matches a quit reason as clients show it: the server may add
// "Quit: " in front.
func reasonRe(reason string) string { return `(?:Quit: )?` + regexp.QuoteMeta(reason) }

// ---- irssi ----

type irssiChat struct {
	*irssiClient
	nick string
}

func (c *irssiChat) Client() string { return "irssi" }
func (c *irssiChat) Nick() string   { return c.nick }
func (c *irssiChat) Debug() string  { return c.debug() }
func (c *irssiChat) Say(text string) {
	c.Type("/window goto #lobby")
	c.Type(text)
}
func (c *irssiChat) Msg(nick, text string) { c.Type("/msg " + nick + " " + text) }
func (c *irssiChat) Quit(reason string)    { c.Type("/quit " + reason) }
func (c *irssiChat) WaitChannel(from, text string) {
	c.t.Helper()
	waitText(c.t, "irssi ("+c.nick+"): "+from+"'s line in #lobby", crossWait,
		`(?m)^\d\d:\d\d:\d\d <[ @+]?`+from+`> `+regexp.QuoteMeta(text)+`$`, c.debug, c.winLog("#lobby"))
}
func (c *irssiChat) WaitQuery(from, text string, ref time.Time) time.Time {
	c.t.Helper()
	m := waitText(c.t, "irssi ("+c.nick+"): "+from+"'s message in the query", crossWait,
		`(?m)^(\d\d:\d\d:\d\d) <`+from+`> `+regexp.QuoteMeta(text)+`$`, c.debug, c.winLog(from))
	return clockLine(c.t, m[1], ref)
}
func (c *irssiChat) WaitQuitShown(nick, reason string) {
	c.t.Helper()
	waitText(c.t, "irssi ("+c.nick+"): "+nick+" quitting", crossWait,
		`(?m)^\d\d:\d\d:\d\d -!- `+nick+` \[[^]]*\] has quit \[`+reasonRe(reason)+`\]$`, c.debug, c.winLog("#lobby"))
}
func (c *irssiChat) WaitOfflineReply(nick string) time.Time {
	c.t.Helper()
	m := waitText(c.t, "irssi ("+c.nick+"): 301 for "+nick, crossWait,
		`(?m)^>> (@\S+) :\S+ 301 `+c.nick+` `+nick+` :`+nick+` is offline`, c.debug, c.rawLog())
	return serverTime(c.t, m[1]+" x")
}

// ---- WeeChat ----

type weechatChat struct {
	*weechatClient
	nick string
}

func (c *weechatChat) Client() string { return "WeeChat" }
func (c *weechatChat) Nick() string   { return c.nick }
func (c *weechatChat) Debug() string  { return c.debug() }
func (c *weechatChat) Say(text string) {
	c.Type("/buffer irc." + c.net + ".#lobby")
	c.Type(text)
}
func (c *weechatChat) Msg(nick, text string) { c.Type("/msg " + nick + " " + text) }
func (c *weechatChat) Quit(reason string)    { c.Type("/quit " + reason) }
func (c *weechatChat) WaitChannel(from, text string) {
	c.t.Helper()
	waitText(c.t, "WeeChat ("+c.nick+"): "+from+"'s line in #lobby", crossWait,
		weechatLine(`[@+]?`+from, regexp.QuoteMeta(text)), c.debug, c.bufLog("#lobby"))
}
func (c *weechatChat) WaitQuery(from, text string, ref time.Time) time.Time {
	c.t.Helper()
	m := waitText(c.t, "WeeChat ("+c.nick+"): "+from+"'s message in the query", crossWait,
		`(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\t`+from+`\t`+regexp.QuoteMeta(text)+`$`, c.debug, c.bufLog(from))
	ts, err := time.ParseInLocation("2006-01-02 15:04:05", m[1], time.UTC)
	must(c.t, err)
	return ts
}
func (c *weechatChat) WaitQuitShown(nick, reason string) {
	c.t.Helper()
	waitText(c.t, "WeeChat ("+c.nick+"): "+nick+" quitting", crossWait,
		weechatLine(`<--`, nick+` \([^)]*\) has quit \(`+reasonRe(reason)+`\)`), c.debug, c.bufLog("#lobby"))
}
func (c *weechatChat) WaitOfflineReply(nick string) time.Time {
	c.t.Helper()
	m := waitText(c.t, "WeeChat ("+c.nick+"): 301 for "+nick, crossWait,
		`(?m)^#\d+ S> (@\S+) :\S+ 301 `+c.nick+` `+nick+` :`+nick+` is offline`, c.debug, c.wire.Path)
	return serverTime(c.t, m[1]+" x")
}

// ---- HexChat ----

type hexchatChat struct {
	*hexchat
	nick string
}

func (c *hexchatChat) Client() string { return "HexChat" }
func (c *hexchatChat) Nick() string   { return c.nick }
func (c *hexchatChat) Debug() string {
	return "--- title ---\n" + c.Title() + "\n--- logs ---\n" + c.AllLogs() + "\n--- wire ---\n" + c.tap.Text()
}
func (c *hexchatChat) Say(text string) {
	c.t.Helper()
	// Typed text goes to the tab in front; a query tab opened by an
	// incoming message does not come to the front.
	c.WaitTitle("#lobby", hxWait)
	c.Type(text)
}
func (c *hexchatChat) Msg(nick, text string) { c.Type("/msg " + nick + " " + text) }
func (c *hexchatChat) Quit(reason string) {
	c.t.Helper()
	// HexChat empties its send queue on disconnect: a QUIT typed while its
	// flood control still holds lines would never be sent.
	c.tap.WaitQuiet(c.t, 3*time.Second, crossWait)
	c.Type("/quit " + reason)
}
func (c *hexchatChat) WaitChannel(from, text string) {
	c.t.Helper()
	c.WaitLog("#lobby", `<`+from+`>\t`+regexp.QuoteMeta(text)+`$`, crossWait)
}
func (c *hexchatChat) WaitQuery(from, text string, ref time.Time) time.Time {
	c.t.Helper()
	line := c.WaitLog(from, `<`+from+`>\t`+regexp.QuoteMeta(text)+`$`, crossWait)
	return hxStamp(c.t, line, ref)
}
func (c *hexchatChat) WaitQuitShown(nick, reason string) {
	c.t.Helper()
	c.WaitLog("#lobby", `\*\t`+nick+` has quit \(`+reasonRe(reason)+`\)$`, crossWait)
}
func (c *hexchatChat) WaitOfflineReply(nick string) time.Time {
	c.t.Helper()
	var line string
	waitFor(c.t, "HexChat ("+c.nick+"): 301 for "+nick, crossWait, func() (bool, string) {
		rx := regexp.MustCompile(`S> (@\S+) :\S+ 301 ` + c.nick + ` ` + nick + ` :` + nick + ` is offline`)
		if m := rx.FindStringSubmatch(c.tap.Text()); m != nil {
			line = m[1]
			return true, ""
		}
		return false, c.Debug()
	})
	return serverTime(c.t, line+" x")
}

// ---- starters ----

// crossIrssi starts irssi for nick and connects it with the server
// password (not waiting for the join).
func crossIrssi(t *testing.T, s *server, nick string) *irssiChat {
	t.Helper()
	c := startIrssi(t, nick)
	c.ConnectPassword(s, nick+"pw", nick)
	return &irssiChat{c, nick}
}

// crossWeechat starts WeeChat for nick with the server password (not
// waiting for the join).
func crossWeechat(t *testing.T, s *server, nick string) *weechatChat {
	t.Helper()
	return &weechatChat{startWeechat(t, s, nick, "-password="+nick+"pw"), nick}
}

// crossHexchat starts HexChat for nick with the server password (not
// waiting for the join).
func crossHexchat(t *testing.T, s *server, nick string) *hexchatChat {
	t.Helper()
	return &hexchatChat{startHexchat(t, s, hexchatOptions{Nick: nick, Password: nick + "pw", NoWait: true}), nick}
}

// waitInLobby waits until c shows that it joined #lobby (so the server has
// it in the channel).
func waitInLobby(t *testing.T, c chatClient) {
	t.Helper()
	switch c := c.(type) {
	case *irssiChat:
		c.wait("#lobby topic", `Topic for #lobby: `, c.winLog("#lobby"))
	case *weechatChat:
		c.wait("#lobby topic", `Topic for #lobby is "`, c.bufLog("#lobby"))
	case *hexchatChat:
		c.WaitLog("#lobby", `\*\tNow talking on #lobby`, hxStartTimeout)
		c.WaitTitle("#lobby", hxWait)
	default:
		t.Fatalf("unknown client %T", c)
	}
}

// startTrio starts one server and alice in irssi, bob in WeeChat and
// carol in HexChat, all logging in at once, and waits until all three are
// in #lobby.
func startTrio(t *testing.T) (*server, []chatClient) {
	t.Helper()
	requireTools(t, "irssi", "weechat", "tmux", "hexchat", "Xvfb", "xdotool", "dbus-daemon")
	s := startServer(t, serverOptions{})
	// HexChat takes longest to start: start it first, the others meanwhile.
	hex := crossHexchat(t, s, "carol")
	irssi := crossIrssi(t, s, "alice")
	wee := crossWeechat(t, s, "bob")
	clients := []chatClient{irssi, wee, hex}
	for _, c := range clients {
		waitInLobby(t, c)
	}
	return s, clients
}

// others returns every client but c.
func others(all []chatClient, c chatClient) []chatClient {
	var out []chatClient
	for _, o := range all {
		if o != c {
			out = append(out, o)
		}
	}
	return out
}

func who(c chatClient) string { return c.Nick() + "/" + c.Client() }

// TestCrossClientChannel: a line typed into #lobby in each client shows in
// the #lobby of the other two.
func TestCrossClientChannel(t *testing.T) {
	t.Parallel()
	_, clients := startTrio(t)
	lines := map[chatClient]string{}
	for _, c := range clients {
		lines[c] = uniq("lobby line typed in " + c.Client())
		c.Say(lines[c])
	}
	for _, from := range clients {
		for _, to := range others(clients, from) {
			to.WaitChannel(from.Nick(), lines[from])
			t.Logf("%s's line typed in %s shown in %s", from.Nick(), from.Client(), to.Client())
		}
	}
}

// TestCrossClientPrivate: a private message for every ordered pair (six),
// each shown in the recipient's query with the sender.
func TestCrossClientPrivate(t *testing.T) {
	t.Parallel()
	_, clients := startTrio(t)
	type pm struct {
		from, to chatClient
		text     string
	}
	var pms []pm
	for _, from := range clients {
		for _, to := range others(clients, from) {
			p := pm{from, to, uniq(fmt.Sprintf("private from %s to %s", from.Client(), to.Client()))}
			from.Msg(to.Nick(), p.text)
			pms = append(pms, p)
		}
	}
	for _, p := range pms {
		p.to.WaitQuery(p.from.Nick(), p.text, time.Now())
		t.Logf("/msg %s from %s shown in %s's query with %s", p.to.Nick(), who(p.from), who(p.to), p.from.Nick())
	}
}

// checkOffline waits until to shows the offline message text from from in
// its query, at the time it was stored (sent) and not at login.
func checkOffline(t *testing.T, from, to chatClient, text string, sent, login time.Time) {
	t.Helper()
	shown := to.WaitQuery(from.Nick(), text, sent)
	if d := shown.Sub(sent.Truncate(time.Second)); d < -time.Second || d > time.Second || !shown.Before(login.Truncate(time.Second)) {
		t.Errorf("%s -> %s: offline message shown at %s; stored at %s, delivered after login at %s (server-time not used?)\n%s",
			who(from), who(to), shown.Format(time.TimeOnly), sent.UTC().Format("15:04:05.000"), login.UTC().Format("15:04:05.000"), to.Debug())
		return
	}
	t.Logf("%s -> %s (offline, then logged in with %s): shown at %s, stored at %s, logged in at %s",
		who(from), to.Nick(), to.Client(), shown.Format(time.TimeOnly), sent.UTC().Format("15:04:05.000"), login.UTC().Format("15:04:05.000"))
}

// TestCrossClientOffline: every ordered pair of clients, offline. Each user
// sends to users who are offline, then logs out; the recipients log in
// later with their own (different) client and see the messages at the
// time they were sent:
//
//	alice/irssi   -> bob, carol     (bob and carol offline)   then /quit
//	bob/WeeChat   logs in, sees alice's; -> alice, carol      then /quit
//	carol/HexChat logs in, sees alice's and bob's; -> alice, bob
//	alice/irssi   logs in again, sees bob's and carol's
//	bob/WeeChat   logs in again, sees carol's
func TestCrossClientOffline(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "weechat", "tmux", "hexchat", "Xvfb", "xdotool", "dbus-daemon")
	s := startServer(t, serverOptions{})
	// The clock must move on between sending and logging in, so a shown
	// time can tell the two apart.
	const gap = 2500 * time.Millisecond
	type stored struct {
		text string
		at   time.Time
	}
	msgs := map[[2]string]stored{} // [from, to] -> message
	send := func(from chatClient, to string) {
		t.Helper()
		text := uniq(fmt.Sprintf("offline from %s in %s to %s", from.Nick(), from.Client(), to))
		from.Msg(to, text)
		msgs[[2]string{from.Nick(), to}] = stored{text, from.WaitOfflineReply(to)}
	}
	expect := func(from, to chatClient, login time.Time) {
		t.Helper()
		m := msgs[[2]string{from.Nick(), to.Nick()}]
		checkOffline(t, from, to, m.text, m.at, login)
	}
	latest := func() time.Time {
		var l time.Time
		for _, m := range msgs {
			if m.at.After(l) {
				l = m.at
			}
		}
		return l
	}

	alice := crossIrssi(t, s, "alice")
	waitInLobby(t, alice)
	send(alice, "bob")
	send(alice, "carol")
	alice.Quit("back later")
	waitFor(t, "irssi to exit", irssiWait, func() (bool, string) { return !alice.tm.Alive(), alice.tm.Capture() })

	waitUntil(latest().Add(gap))
	login := time.Now()
	bob := crossWeechat(t, s, "bob")
	expect(alice, bob, login)
	send(bob, "alice")
	send(bob, "carol")
	bob.Quit("back later")
	waitFor(t, "WeeChat to exit", weechatWait, func() (bool, string) { return !bob.tm.Alive(), bob.tm.Capture() })

	waitUntil(latest().Add(gap))
	login = time.Now()
	carol := crossHexchat(t, s, "carol")
	expect(alice, carol, login)
	expect(bob, carol, login)
	send(carol, "alice")
	send(carol, "bob")

	waitUntil(latest().Add(gap))
	login = time.Now()
	alice2 := crossIrssi(t, s, "alice")
	expect(bob, alice2, login)
	expect(carol, alice2, login)

	login = time.Now()
	bob2 := crossWeechat(t, s, "bob")
	expect(carol, bob2, login)
	// alice's message was acknowledged by bob's first WeeChat session: it
	// must not come again.
	waitInLobby(t, bob2)
	bob2.Type("/quote PING :after-replay")
	bob2.wait("PONG after the replay", `(?m)^#1 S> .*PONG .*after-replay`, bob2.wire.Path)
	if all := readFiles(bob2.everyLog()); strings.Contains(all, msgs[[2]string{"alice", "bob"}].text) {
		t.Errorf("alice's offline message to bob was delivered again in bob's second session:\n%s", all)
	}
}

// TestCrossClientQuit: each client's /quit is shown by the other two. The
// quitter logs in again (a new instance) before the next one quits, so
// there are always three; HexChat quits last.
func TestCrossClientQuit(t *testing.T) {
	t.Parallel()
	s, clients := startTrio(t)
	irssi, wee, hex := clients[0], clients[1], clients[2]
	quit := func(c chatClient, rest ...chatClient) {
		t.Helper()
		reason := uniq(c.Client() + " says bye")
		c.Quit(reason)
		for _, o := range rest {
			o.WaitQuitShown(c.Nick(), reason)
			t.Logf("%s's /quit shown in %s", who(c), who(o))
		}
	}

	quit(irssi, wee, hex)
	waitFor(t, "irssi to exit", irssiWait, func() (bool, string) { return !irssi.(*irssiChat).tm.Alive(), irssi.Debug() })
	irssi = crossIrssi(t, s, "alice")
	waitInLobby(t, irssi)

	quit(wee, irssi, hex)
	waitFor(t, "WeeChat to exit", weechatWait, func() (bool, string) { return !wee.(*weechatChat).tm.Alive(), wee.Debug() })
	wee = crossWeechat(t, s, "bob")
	waitInLobby(t, wee)

	quit(hex, irssi, wee)
}
