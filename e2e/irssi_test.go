package e2e

// irssi end to end: irssi 1.4 runs in a detached tmux session with a
// throwaway --home. What the person sees is read from irssi's own logs: one
// log of every window at level ALL (all.log) and autolog's per-window files
// (logs/<tag>/<window>.log), with seconds in the timestamps. /connect
// -rawlog keeps the wire lines for failure messages.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type irssiClient struct {
	t    *testing.T
	home string
	tm   *tmuxSession
}

const irssiWait = 15 * time.Second

// startIrssi starts irssi for nick (not yet connected) and waits until its
// log is open.
func startIrssi(t *testing.T, nick string) *irssiClient {
	t.Helper()
	requireTools(t, "irssi", "tmux")
	home := t.TempDir()
	// server_reconnect_time is 2s (default 5min) so a reconnect that
	// should not happen would happen inside the test.
	cfg := fmt.Sprintf(`settings = {
  core = {
    real_name = %[1]q;
    user_name = %[1]q;
    nick = %[1]q;
    log_timestamp = "%%H:%%M:%%S ";
    server_reconnect_time = "2";
    settings_autosave = "no";
  };
  # Typing several lines at once (tmux send-keys) must not stop at
  # irssi's "Hit Ctrl-K to paste" question.
  "fe-text" = { paste_detect_time = "0"; };
  "fe-common/core" = {
    autolog = "yes";
    autolog_path = %[2]q;
    autolog_level = "all";
  };
};
logs = { %[3]q = { auto_open = "yes"; level = "ALL"; }; };
`, nick, filepath.Join(home, "logs", "$tag", "$0.log"), filepath.Join(home, "all.log"))
	must(t, os.WriteFile(filepath.Join(home, "config"), []byte(cfg), 0o600))
	c := &irssiClient{t: t, home: home}
	c.tm = startTmux(t, "irssi-"+nick, []string{"TZ=UTC", "LANG=C.UTF-8", "HOME=" + home}, "irssi", "--home", home)
	c.wait("irssi to start", `Irssi v\d`, c.allLog())
	return c
}

func (c *irssiClient) allLog() string         { return filepath.Join(c.home, "all.log") }
func (c *irssiClient) rawLog() string         { return filepath.Join(c.home, "raw.log") }
func (c *irssiClient) winLog(w string) string { return filepath.Join(c.home, "logs", "*", w+".log") }
func (c *irssiClient) everyLog() []string {
	return []string{c.allLog(), filepath.Join(c.home, "logs", "*", "*.log")}
}

// debug is what a failure message shows besides the polled files.
func (c *irssiClient) debug() string {
	return "--- screen ---\n" + c.tm.Capture() + "\n--- raw log ---\n" + readFiles(c.rawLog())
}

func (c *irssiClient) wait(what, re string, files ...string) []string {
	c.t.Helper()
	return waitText(c.t, "irssi: "+what, irssiWait, re, c.debug, files...)
}

// Type types a line into irssi's current window.
func (c *irssiClient) Type(line string) { c.tm.Type(line) }

// ConnectPassword is the documented way to log in with a server password:
// /connect HOST PORT PASSWORD NICK.
func (c *irssiClient) ConnectPassword(s *server, pass, nick string) {
	c.Type(fmt.Sprintf("/connect -rawlog %s 127.0.0.1 %d %s %s", c.rawLog(), s.Port, pass, nick))
}

// ConnectSASL is the documented way to log in with SASL PLAIN.
func (c *irssiClient) ConnectSASL(s *server, user, pass string) {
	c.Type(fmt.Sprintf("/network add -sasl_mechanism plain -sasl_username %s -sasl_password %s -nick %s E2E", user, pass, user))
	c.Type(fmt.Sprintf("/server add -network E2E 127.0.0.1 %d", s.Port))
	c.Type(fmt.Sprintf("/connect -rawlog %s E2E", c.rawLog()))
}

// waitJoined waits until the #lobby window shows the topic and the names
// with n nicks.
func (c *irssiClient) waitJoined(n int) {
	c.t.Helper()
	c.wait("#lobby topic", `Topic for #lobby: e2e lobby`, c.winLog("#lobby"))
	c.wait("#lobby names", fmt.Sprintf(`#lobby: Total of %d nicks`, n), c.winLog("#lobby"))
}

// connectedIrssi starts a server-password irssi session for nick and waits for
// it to be in #lobby with n nicks.
func connectedIrssi(t *testing.T, s *server, nick string, n int) *irssiClient {
	t.Helper()
	c := startIrssi(t, nick)
	c.ConnectPassword(s, nick+"pw", nick)
	c.waitJoined(n)
	return c
}

func TestIrssiPasswordLogin(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")

	c := startIrssi(t, "bob")
	c.ConnectPassword(s, "bobpw", "bob")
	alice.Expect(`:bob!\S+ JOIN #lobby`, irssiWait)
	c.waitJoined(2)
	c.wait("names list", `\[ alice\] \[ bob\]`, c.winLog("#lobby"))
	c.wait("welcome", `Welcome to the E2ENet IRC Network bob!`, c.allLog())
	c.wait("PASS on the wire", `(?m)^<< PASS bobpw$`, c.rawLog())
}

func TestIrssiSASLLogin(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")

	c := startIrssi(t, "dave")
	c.ConnectSASL(s, "dave", "davepw")
	alice.Expect(`:dave!\S+ JOIN #lobby`, irssiWait)
	c.waitJoined(2)
	c.wait("SASL success shown", `-!- SASL authentication succeeded`, c.allLog())
	c.wait("AUTHENTICATE on the wire", `(?m)^<< AUTHENTICATE PLAIN$`, c.rawLog())
	if raw := readFiles(c.rawLog()); regexp.MustCompile(`(?m)^<< PASS `).MatchString(raw) {
		t.Errorf("irssi sent PASS on a SASL login:\n%s", raw)
	}
}

func TestIrssiWrongPassword(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})

	c := startIrssi(t, "carol")
	c.ConnectPassword(s, "wrongpw", "carol")
	c.wait("464 shown", `-!- Password incorrect`, c.allLog())
	c.wait("ERROR shown", `ERROR Closing link: Unauthorized \(bad account or password\)`, c.allLog())

	// irssi reconnects after server_reconnect_time (2s here) unless the
	// ERROR says "Unauthorized": for 8s there must be no second attempt.
	holdFor(t, "irssi reconnected after Unauthorized", 8*time.Second, func() (bool, string) {
		n := countMatches(`(?i)connecting to 127\.0\.0\.1`, c.allLog())
		fails := strings.Count(s.Log(), `msg="login failed" account=carol`)
		return n > 1 || fails > 1, fmt.Sprintf("irssi connects: %d, failed logins in server log: %d\n%s\n%s", n, fails, readFiles(c.allLog()), s.Log())
	})
	if fails := strings.Count(s.Log(), `msg="login failed" account=carol`); fails != 1 {
		t.Errorf("server logged %d failed logins for carol, want 1:\n%s", fails, s.Log())
	}

	// The real carol is not locked out.
	real := dialRaw(t, s)
	if ok, last := real.TryLogin("carol", "carolpw"); !ok {
		t.Fatalf("after irssi's wrong password, the right password was refused: %s\nserver log:\n%s", last, s.Log())
	}
}

func TestIrssiChannelMessage(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	channelWithRaw(&irssiChat{connectedIrssi(t, s, "bob", 2), "bob"}, alice, irssiWait)
}

func TestIrssiPrivateMessage(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	c := connectedIrssi(t, s, "bob", 2)

	in := uniq("psst bob")
	alice.Send("PRIVMSG bob :%s", in)
	c.wait("query window opened", `Starting query in \S+ with alice`, c.allLog())
	c.wait("alice's message in the query", `(?m)^\d\d:\d\d:\d\d <alice> `+in+`$`, c.winLog("alice"))

	out := uniq("hi alice")
	c.Type("/query alice")
	c.Type(out)
	alice.Expect(`:bob!\S+ PRIVMSG alice :`+out+`$`, irssiWait)
	c.wait("own reply in the query", `(?m)^\d\d:\d\d:\d\d <bob> `+out+`$`, c.winLog("alice"))
}

func TestIrssiOfflineMessage(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	text := uniq("while you were out")
	alice.Send("PRIVMSG bob :%s", text)
	sent := serverTime(t, alice.Expect(` 301 alice bob :bob is offline`, 5*time.Second))

	// Let the clock move on so the delivery time differs from the send time.
	waitUntil(sent.Add(3 * time.Second))
	login := time.Now()
	c := startIrssi(t, "bob")
	c.ConnectPassword(s, "bobpw", "bob")
	m := c.wait("offline message in the query", `(?m)^(\d\d:\d\d:\d\d) <alice> `+text+`$`, c.winLog("alice"))
	shown := clockLine(t, m[1], sent)
	// The log line carries the original send time (server-time), to the
	// second, not the delivery time.
	if d := shown.Sub(sent.Truncate(time.Second)); d < -time.Second || d > time.Second || !shown.Before(login.Truncate(time.Second)) {
		t.Errorf("offline message shown at %s; sent at %s, delivered after %s\n%s", m[1], sent.UTC().Format("15:04:05.000"), login.UTC().Format("15:04:05.000"), c.debug())
	}
	c.wait("time tag on the wire", `(?m)^>> @\S*\btime=\S+ :alice!\S+ PRIVMSG bob :`+text+`$`, c.rawLog())
}

func TestIrssiWhoelse(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	carol := dialRaw(t, s)
	carol.Login("carol", "carolpw")
	carol.Send("QUIT :gone")
	carol.Expect(`^ERROR `, 5*time.Second)
	c := connectedIrssi(t, s, "bob", 2)

	c.Type("/quote whoelse")
	c.wait("WHOELSE reply", `(?m)irc\.e2e\.test Online: alice$`, c.allLog())
	c.wait("WHOELSE count", `(?m)irc\.e2e\.test 1 other user online$`, c.allLog())

	c.Type("/quote wholasthr")
	c.wait("WHOLASTHR reply", `(?m)irc\.e2e\.test Last hour: alice \(online now\), carol \(left \d\d:\d\d UTC, \d+s ago\)$`, c.allLog())
	c.wait("WHOLASTHR count", `(?m)irc\.e2e\.test 2 other users connected in the last hour$`, c.allLog())

	dave := dialRaw(t, s)
	dave.Login("dave", "davepw")
	c.Type("/alias whoelse quote WHOELSE")
	c.wait("alias added", `Alias whoelse added`, c.allLog())
	c.Type("/whoelse")
	c.wait("/whoelse alias reply", `(?m)irc\.e2e\.test Online: alice dave$`, c.allLog())
	c.wait("/whoelse alias count", `(?m)irc\.e2e\.test 2 other users online$`, c.allLog())
	c.wait("alias on the wire", `(?m)^<< WHOELSE$`, c.rawLog())
}

func TestIrssiSilence(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	bob := dialRaw(t, s)
	bob.Login("bob", "bobpw")
	carol := dialRaw(t, s)
	carol.Login("carol", "carolpw")
	c := connectedIrssi(t, s, "alice", 3)

	c.Type("/silence +bob")
	c.wait("silence confirmed", `Silenced bob!\*@\*`, c.allLog())
	c.wait("what irssi sends", `(?m)^<< (?i:silence) \+bob$`, c.rawLog())

	blockedChan, blockedPriv := uniq("bob in channel while blocked"), uniq("bob private while blocked")
	bob.Send("PRIVMSG #lobby :%s", blockedChan)
	bob.Send("PRIVMSG alice :%s", blockedPriv)
	bob.Sync()
	// carol's lines are queued to alice after bob's would have been.
	markChan, markPriv := uniq("carol marker"), uniq("carol private marker")
	carol.Send("PRIVMSG #lobby :%s", markChan)
	carol.Send("PRIVMSG alice :%s", markPriv)
	c.wait("carol's channel marker", `< carol> `+markChan, c.winLog("#lobby"))
	c.wait("carol's private marker", `<carol> `+markPriv, c.winLog("carol"))
	if all := readFiles(c.everyLog()...); strings.Contains(all, blockedChan) || strings.Contains(all, blockedPriv) {
		t.Errorf("a silenced sender's lines were shown:\n%s", all)
	}

	c.Type("/unsilence bob")
	c.wait("unsilence confirmed", `Unsilenced bob!\*@\*`, c.allLog())
	c.wait("what irssi sends for /unsilence", `(?m)^<< (?i:silence) -bob$`, c.rawLog())
	openChan, openPriv := uniq("bob in channel after unblock"), uniq("bob private after unblock")
	bob.Send("PRIVMSG #lobby :%s", openChan)
	bob.Send("PRIVMSG alice :%s", openPriv)
	c.wait("bob's channel line after unblock", `< bob> `+openChan, c.winLog("#lobby"))
	c.wait("bob's private line after unblock", `<bob> `+openPriv, c.winLog("bob"))
}

func TestIrssiQuit(t *testing.T) {
	t.Parallel()
	requireTools(t, "irssi", "tmux")
	s := startServer(t, serverOptions{})
	alice := dialRaw(t, s)
	alice.Login("alice", "alicepw")
	c := connectedIrssi(t, s, "bob", 2)

	c.Type("/quit see you later")
	alice.Expect(`:bob!\S+ QUIT :(Quit: )?see you later$`, irssiWait)
	waitFor(t, "irssi to exit", irssiWait, func() (bool, string) { return !c.tm.Alive(), c.tm.Capture() })
}
