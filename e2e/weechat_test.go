package e2e

// WeeChat end to end: WeeChat 3.8 runs in a detached tmux session with a
// throwaway -d DIR. What the person sees is read from the logger plugin's
// per-buffer files (logs/irc.server.e2e.weechatlog, irc.e2e.#lobby...,
// irc.e2e.<nick>...) with flush_delay 0. WeeChat connects through a
// recording proxy (wireLog) so failure messages show the wire lines.

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type weechatClient struct {
	t    *testing.T
	dir  string
	net  string // the WeeChat server name: "e2e"
	tm   *tmuxSession
	wire *wireLog
}

const weechatWait = 15 * time.Second

// startWeechat starts WeeChat with one server "e2e" (through the recording
// proxy) added with serverOpts (e.g. "-password=bobpw -nicks=bob") and
// connects to it.
func startWeechat(t *testing.T, s *server, nick, serverOpts string) *weechatClient {
	t.Helper()
	return startWeechatNamed(t, s, "e2e", nick, serverOpts)
}

// startWeechatNamed is startWeechat with the WeeChat server named net.
func startWeechatNamed(t *testing.T, s *server, net, nick, serverOpts string) *weechatClient {
	t.Helper()
	requireTools(t, "weechat", "tmux")
	c := &weechatClient{t: t, dir: t.TempDir(), net: net, wire: startWireLog(t, s)}
	cmds := []string{
		"/set logger.file.flush_delay 0",
		"/set weechat.look.buffer_time_format %H:%M:%S",
		// Two typed lines that reach WeeChat in one read (a loaded
		// machine) look like a paste, and WeeChat holds them behind a
		// "Paste 2 lines? [ctrl-Y] Yes [ctrl-N] No" question.
		"/set weechat.look.paste_max_lines -1",
		fmt.Sprintf("/server add %s 127.0.0.1/%d -nicks=%s -username=%s %s", net, c.wire.Port, nick, nick, serverOpts),
		// WeeChat 4 defaults to TLS; this server speaks plain text.
		"/set irc.server." + net + ".tls off",
		// WeeChat spaces out typed commands by 2s by default (anti-flood).
		"/set irc.server." + net + ".anti_flood_prio_high 0",
		"/set irc.server." + net + ".anti_flood_prio_low 0",
		"/connect " + net,
	}
	c.tm = startTmux(t, "weechat-"+nick, []string{"TZ=UTC", "LANG=C.UTF-8", "HOME=" + c.dir},
		"weechat", "-d", c.dir, "-r", strings.Join(cmds, ";"))
	c.wait("connecting", `irc: connecting to server 127\.0\.0\.1/`, c.serverLog())
	return c
}

func (c *weechatClient) log(buffer string) string {
	return filepath.Join(c.dir, "logs", buffer+".weechatlog")
}
func (c *weechatClient) serverLog() string         { return c.log("irc.server." + c.net) }
func (c *weechatClient) bufLog(name string) string { return c.log("irc." + c.net + "." + name) }
func (c *weechatClient) everyLog() string          { return filepath.Join(c.dir, "logs", "*.weechatlog") }
func (c *weechatClient) Type(line string)          { c.tm.Type(line) }
func (c *weechatClient) debug() string {
	return "--- screen ---\n" + c.tm.Capture() + "\n--- wire ---\n" + c.wire.Text()
}

func (c *weechatClient) wait(what, re string, files ...string) []string {
	c.t.Helper()
	return waitText(c.t, "weechat: "+what, weechatWait, re, c.debug, files...)
}

// waitJoined waits until the #lobby buffer shows the topic and n nicks.
func (c *weechatClient) waitJoined(n int) {
	c.t.Helper()
	c.wait("#lobby topic", `Topic for #lobby is "e2e lobby"`, c.bufLog("#lobby"))
	c.wait("#lobby names", fmt.Sprintf(`Channel #lobby: %d nicks`, n), c.bufLog("#lobby"))
}

func connectedWeechat(t *testing.T, s *server, nick string, n int) *weechatClient {
	t.Helper()
	c := startWeechat(t, s, nick, "-password="+nick+"pw")
	c.waitJoined(n)
	return c
}

// weechatLine matches a logger line: date, time, prefix, message (tab
// separated).
func weechatLine(prefix, msg string) string {
	return `(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\t` + prefix + `\t` + msg + `$`
}

func TestWeechatPasswordLogin(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")

	c := startWeechat(t, s, "bob", "-password=bobpw")
	alice.Expect(`:bob!\S+ JOIN #lobby`, weechatWait)
	c.waitJoined(2)
	c.wait("welcome", `Welcome to the E2ENet IRC Network bob!`, c.serverLog())
	c.wait("PASS on the wire", `(?m)^#1 C> PASS bobpw$`, c.wire.Path)
}

func TestWeechatSASLLogin(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")

	c := startWeechat(t, s, "dave", "-sasl_mechanism=plain -sasl_username=dave -sasl_password=davepw")
	alice.Expect(`:dave!\S+ JOIN #lobby`, weechatWait)
	c.waitJoined(2)
	c.wait("SASL success shown", weechatLine("--", `SASL authentication successful`), c.serverLog())
	c.wait("AUTHENTICATE on the wire", `(?m)^#1 C> AUTHENTICATE PLAIN$`, c.wire.Path)
	if regexp.MustCompile(`(?m)^#\d+ C> PASS `).MatchString(c.wire.Text()) {
		t.Errorf("WeeChat sent PASS on a SASL login:\n%s", c.wire.Text())
	}
}

func TestWeechatWrongPassword(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})

	// WeeChat reconnects after autoreconnect_delay (10s by default),
	// doubling each time; 2s makes the same loop happen inside the test:
	// attempts at about 0s, 2s, 6s, 14s.
	c := startWeechat(t, s, "carol", "-password=wrongpw -autoreconnect_delay=2")
	c.wait("464 shown", `Password incorrect`, c.serverLog())
	c.wait("ERROR shown", `Closing link: Unauthorized \(bad account or password\)`, c.serverLog())

	// Give the reconnect loop time for four attempts (or stop early if the
	// fourth has been answered).
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && countMatches(`(?m)^#\d+ closed$`, c.wire.Path) < 4 {
		time.Sleep(200 * time.Millisecond)
	}
	attempts := c.wire.Connections()
	c.tm.Kill() // the real user logs in while the loop is stopped

	refusals := regexp.MustCompile(`(?m)^#\d+ S> ERROR :.*$`).FindAllString(c.wire.Text(), -1)
	t.Logf("WeeChat made %d connection attempts with the wrong password; server replies:\n%s", attempts, strings.Join(refusals, "\n"))
	t.Logf("WeeChat showed:\n%s", strings.Join(regexp.MustCompile(`(?m)^.*(reconnecting to server in|Password incorrect|Too many|Closing link).*$`).FindAllString(readFiles(c.serverLog()), -1), "\n"))

	real := dialRaw(t, s)
	if ok, last := real.TryLogin("carol", "carolpw"); !ok {
		t.Errorf("after %d automatic WeeChat attempts with a wrong saved password, the real user is locked out: %s\n"+
			"wire lines of WeeChat's attempts:\n%s\nserver log:\n%s", attempts, last, c.wire.Text(), s.Log())
	}
}

func TestWeechatChannelMessage(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	channelWithRaw(&weechatChat{connectedWeechat(t, s, "bob", 2), "bob"}, alice, weechatWait)
}

func TestWeechatPrivateMessage(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	c := connectedWeechat(t, s, "bob", 2)

	in := uniq("psst bob")
	alice.Send("PRIVMSG bob :%s", in)
	c.wait("alice's message in a new query buffer", weechatLine("alice", in), c.bufLog("alice"))

	out := uniq("hi alice")
	c.Type("/query alice")
	c.Type(out)
	alice.Expect(`:bob!\S+ PRIVMSG alice :`+out+`$`, weechatWait)
	c.wait("own reply in the query", weechatLine("bob", out), c.bufLog("alice"))
}

func TestWeechatOfflineMessage(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	text := uniq("while you were out")
	alice.Send("PRIVMSG bob :%s", text)
	sent := serverTime(t, alice.Expect(` 301 alice bob :bob is offline`, 5*time.Second))

	// Let the clock move on so the delivery time differs from the send time.
	waitUntil(sent.Add(3 * time.Second))
	login := time.Now()
	c := startWeechat(t, s, "bob", "-password=bobpw")
	m := c.wait("offline message in the query", `(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\talice\t`+text+`$`, c.bufLog("alice"))
	shown, err := time.ParseInLocation("2006-01-02 15:04:05", m[1], time.UTC)
	must(t, err)
	// The log line carries the original send time (server-time), to the
	// second, not the delivery time.
	if d := shown.Sub(sent.Truncate(time.Second)); d < -time.Second || d > time.Second || !shown.Before(login.Truncate(time.Second)) {
		t.Errorf("offline message shown at %s; sent at %s, delivered after %s\n%s", m[1], sent.UTC().Format("15:04:05.000"), login.UTC().Format("15:04:05.000"), c.debug())
	}
	c.wait("time tag on the wire", `(?m)^#1 S> @\S*\btime=\S+ :alice!\S+ PRIVMSG bob :`+text+`$`, c.wire.Path)
}

func TestWeechatWhoelse(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	carol := dialRaw(t, s)
	carol.Login("carol", "carolpw")
	carol.Send("QUIT :gone")
	carol.Expect(`^ERROR `, 5*time.Second)
	c := connectedWeechat(t, s, "bob", 2)

	c.Type("/quote whoelse")
	c.wait("WHOELSE reply", weechatLine("--", `irc\.e2e\.test: Online: alice`), c.serverLog())
	c.wait("WHOELSE count", weechatLine("--", `irc\.e2e\.test: 1 other user online`), c.serverLog())

	c.Type("/quote wholasthr")
	c.wait("WHOLASTHR reply", weechatLine("--", `irc\.e2e\.test: Last hour: alice \(online now\), carol \(left \d\d:\d\d UTC, \d+s ago\)`), c.serverLog())
	c.wait("WHOLASTHR count", weechatLine("--", `irc\.e2e\.test: 2 other users connected in the last hour`), c.serverLog())

	dave := dialRaw(t, s)
	dave.Login("dave", "davepw")
	c.Type("/alias add whoelse quote WHOELSE")
	c.wait("alias added", `Alias "whoelse" => "quote WHOELSE" created`, c.everyLog())
	c.Type("/whoelse")
	c.wait("/whoelse alias reply", weechatLine("--", `irc\.e2e\.test: Online: alice dave`), c.serverLog())
	c.wait("/whoelse alias count", weechatLine("--", `irc\.e2e\.test: 2 other users online`), c.serverLog())
	c.wait("alias on the wire", `(?m)^#1 C> WHOELSE$`, c.wire.Path)
}

func TestWeechatSilence(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	bob := dialRaw(t, s)
	bob.Login("bob", "bobpw")
	carol := dialRaw(t, s)
	carol.Login("carol", "carolpw")
	c := connectedWeechat(t, s, "alice", 3)

	c.Type("/quote silence +bob")
	c.wait("SILENCE confirmation on the wire", `(?m)^#1 S> .*:alice!\S+ SILENCE \+bob!\*@\*$`, c.wire.Path)
	shown := c.wait("SILENCE confirmation shown", `(?m)^.*SILENCE \+bob!\*@\*.*$`, c.serverLog())
	if strings.Contains(shown[0], "=!=") {
		t.Logf("ODDITY: WeeChat shows the server's SILENCE confirmation as an error: %q", shown[0])
	}

	blockedChan, blockedPriv := uniq("bob in channel while blocked"), uniq("bob private while blocked")
	bob.Send("PRIVMSG #lobby :%s", blockedChan)
	bob.Send("PRIVMSG alice :%s", blockedPriv)
	bob.Sync()
	// carol's lines are queued to alice after bob's would have been.
	markChan, markPriv := uniq("carol marker"), uniq("carol private marker")
	carol.Send("PRIVMSG #lobby :%s", markChan)
	carol.Send("PRIVMSG alice :%s", markPriv)
	c.wait("carol's channel marker", weechatLine("carol", markChan), c.bufLog("#lobby"))
	c.wait("carol's private marker", weechatLine("carol", markPriv), c.bufLog("carol"))
	if all := readFiles(c.everyLog()); strings.Contains(all, blockedChan) || strings.Contains(all, blockedPriv) {
		t.Errorf("a silenced sender's lines were shown:\n%s", all)
	}

	c.Type("/quote silence -bob")
	c.wait("unsilence confirmation on the wire", `(?m)^#1 S> .*:alice!\S+ SILENCE -bob!\*@\*$`, c.wire.Path)
	openChan, openPriv := uniq("bob in channel after unblock"), uniq("bob private after unblock")
	bob.Send("PRIVMSG #lobby :%s", openChan)
	bob.Send("PRIVMSG alice :%s", openPriv)
	c.wait("bob's channel line after unblock", weechatLine("bob", openChan), c.bufLog("#lobby"))
	c.wait("bob's private line after unblock", weechatLine("bob", openPriv), c.bufLog("bob"))
}

func TestWeechatQuit(t *testing.T) {
	t.Parallel()
	requireTools(t, "weechat", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	c := connectedWeechat(t, s, "bob", 2)

	c.Type("/quit see you later")
	alice.Expect(`:bob!\S+ QUIT :(Quit: )?see you later$`, weechatWait)
	waitFor(t, "WeeChat to exit", weechatWait, func() (bool, string) { return !c.tm.Alive(), c.tm.Capture() })
}
