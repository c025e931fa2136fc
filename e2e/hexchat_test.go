package e2e

// End-to-end tests that drive HexChat (GTK) against bin/ircd.
//
// Each test gets its own Xvfb display (Xvfb picks a free number itself via
// -displayfd), its own session dbus-daemon (hexchat uses D-Bus for its
// single-instance/remote interface) and a throwaway config dir (hexchat -d).
// HexChat reaches the server through a small recording proxy, so a failure
// report can show the exact wire lines. Input is typed into HexChat's input
// box with xdotool, like a user would; assertions read the log files HexChat
// writes (irc_logging = 1, one file per tab: logs/<network>/<tab>.log).
//
// Set HEXCHAT_SCREENSHOT=/path/file.png to have TestHexchatChannelMessages
// save a screenshot of HexChat in #lobby. The guide's pictures
// (docs/img/*.png) are made by `make screenshots` (screenshots_test.go).

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	hxWidth, hxHeight = 820, 460          // Xvfb screen and HexChat window size
	hxStartTimeout    = 30 * time.Second  // start to "Now talking on #lobby"
	hxWait            = 15 * time.Second  // one message to show up
	hxStampLayout     = "Jan 02 15:04:05" // HexChat's default stamp_log_format "%b %d %H:%M:%S"
	hxNetwork         = "E2E"             // servlist network name; logs go to logs/e2e/
)

// hexchatOptions describe the HexChat user.
type hexchatOptions struct {
	Nick     string
	Password string
	SASL     bool   // login method L=6 (SASL PLAIN) instead of L=7 (server password)
	Conf     string // extra hexchat.conf lines
	NoWait   bool   // don't wait for the join to #lobby (login is expected to fail)
}

// hexchat is one running HexChat instance with its display, bus and proxy.
type hexchat struct {
	t       *testing.T
	Dir     string // the -d config dir
	Display string // ":N"
	env     []string
	tap     *hxTap
	win     string // main window id, for xdotool
	started time.Time
	stop    func() // stops HexChat, at cleanup
}

// startHexchat starts Xvfb, dbus-daemon and HexChat, dismisses the
// "Running IRC as root" dialog if it shows, and (unless NoWait) waits until
// HexChat has joined #lobby. Everything is stopped by PID at cleanup.
func startHexchat(t *testing.T, s *server, opt hexchatOptions) *hexchat {
	t.Helper()
	requireTools(t, "hexchat", "Xvfb", "xdotool", "dbus-daemon")
	h := &hexchat{t: t, Dir: t.TempDir(), started: time.Now()}
	h.tap = startHxTap(t, s.Addr)

	h.Display = startXvfb(t)
	bus := startDbus(t)
	home := filepath.Join(h.Dir, "home")
	must(t, os.MkdirAll(home, 0o700))
	h.env = append(os.Environ(),
		"DISPLAY="+h.Display,
		"DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"TZ=UTC",
		"NO_AT_BRIDGE=1", // no accessibility bus warnings
		"LC_ALL=C.UTF-8",
	)

	login := 7
	if opt.SASL {
		login = 6
	}
	// F=8: auto-connect, not "use global user info"; C= runs after 001.
	servlist := fmt.Sprintf(`v=2.16.1

N=%s
I=%s
i=%s_
U=%s
R=%s
P=%s
L=%d
E=UTF-8 (Unicode)
F=8
D=0
S=127.0.0.1/%d
C=echo HXMARK logged in

`, hxNetwork, opt.Nick, opt.Nick, opt.Nick, opt.Nick, opt.Password, login, h.tap.Port)
	conf := fmt.Sprintf(`version = 2.16.1
irc_logging = 1
irc_logmask = %%n/%%c.log
stamp_log = 1
gui_slist_skip = 1
gui_join_dialog = 0
gui_quit_dialog = 0
gui_tray = 0
gui_win_left = 0
gui_win_top = 0
gui_win_width = %d
gui_win_height = %d
irc_nick1 = %s
irc_nick2 = %s_
irc_user_name = %s
irc_real_name = %s
%s
`, hxWidth, hxHeight, opt.Nick, opt.Nick, opt.Nick, opt.Nick, opt.Conf)
	must(t, os.WriteFile(filepath.Join(h.Dir, "servlist.conf"), []byte(servlist), 0o600))
	must(t, os.WriteFile(filepath.Join(h.Dir, "hexchat.conf"), []byte(conf), 0o600))

	out, err := os.Create(filepath.Join(h.Dir, "hexchat.out"))
	must(t, err)
	// Registered before the dump below, so it runs after it (cleanups run
	// last-first): the screenshot shows HexChat still running.
	t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
		out.Close()
	})

	// On failure (or with HEXCHAT_DUMP=1): keep a screenshot and show the
	// logs and the wire.
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("HEXCHAT_DUMP") == "" {
			return
		}
		shot := filepath.Join(os.TempDir(), "hexchat-"+strings.ReplaceAll(t.Name(), "/", "_")+".png")
		if err := hxImport(h.Display, shot); err == nil {
			t.Logf("screenshot of HexChat: %s", shot)
		}
		t.Logf("HexChat logs:\n%s", h.AllLogs())
		t.Logf("wire (C> HexChat to server, S> server to HexChat):\n%s", h.tap.Text())
		b, _ := os.ReadFile(filepath.Join(h.Dir, "hexchat.out"))
		t.Logf("hexchat stdout/stderr:\n%s", b)
	})

	if !h.launch(out) {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("HexChat exited before showing a window:\n%s", b)
	}
	if !opt.NoWait {
		h.WaitLog("#lobby", `\*\tNow talking on #lobby`, hxStartTimeout)
		h.WaitTitle("#lobby", hxWait)
	}
	return h
}

// stopProcess ends a process we started: SIGTERM, then SIGKILL.
func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}

// startXvfb starts a virtual X server on a display it picks itself
// (-displayfd avoids races between parallel tests) and returns ":N".
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	// -noreset: by default an X server resets when its last client
	// disconnects, and a client connecting during the reset fails. The
	// xdotool polls below connect and disconnect while HexChat starts, so
	// HexChat sometimes died with "cannot open display" under load (10 of
	// 532 connects failed in a loop by hand without it, 0 of 425 with it).
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-noreset", "-screen", "0", fmt.Sprintf("%dx%dx24", hxWidth, hxHeight), "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	logf, err := os.Create(filepath.Join(t.TempDir(), "xvfb.log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	w.Close()
	t.Cleanup(func() { stopProcess(cmd, 5*time.Second); logf.Close() })
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		num <- strings.TrimSpace(line)
	}()
	select {
	case n := <-num:
		if _, err := strconv.Atoi(n); err != nil {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("Xvfb did not report a display number (%q):\n%s", n, b)
		}
		return ":" + n
	case <-time.After(15 * time.Second):
		t.Fatal("Xvfb did not start within 15s")
	}
	return ""
}

// startDbus starts a private session bus and returns its address.
func startDbus(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { stopProcess(cmd, 5*time.Second) })
	addr := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, r)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return a
	case <-time.After(15 * time.Second):
		t.Fatal("dbus-daemon did not start within 15s")
	}
	return ""
}

// xdo runs xdotool on this instance's display.
func (h *hexchat) xdo(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// launch starts HexChat (stopped at cleanup) and waits for its main
// window; it reports false if HexChat exited first, so a start that fails
// fails the test at once with HexChat's output.
func (h *hexchat) launch(out *os.File) bool {
	h.t.Helper()
	// -n: no plugins (python/perl/lua), faster start, nothing else talking.
	cmd := exec.Command("hexchat", "-n", "-d", h.Dir)
	cmd.Env = h.env
	cmd.Stdout, cmd.Stderr = out, out
	must(h.t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	h.stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	return h.findMainWindow(exited)
}

// findMainWindow waits for HexChat's main window, pressing Return on any
// nameless dialog first: run as root, HexChat starts with a modal
// "Running IRC as root is stupid!" message box and waits for it. It
// reports false if HexChat exits meanwhile.
func (h *hexchat) findMainWindow(exited <-chan struct{}) bool {
	h.t.Helper()
	deadline := time.Now().Add(hxStartTimeout)
	state := ""
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ids, _ := h.xdo("search", "--onlyvisible", "--class", "hexchat")
		var main, dialog string
		names := []string{}
		for _, id := range strings.Fields(ids) {
			name, err := h.xdo("getwindowname", id)
			if err != nil {
				continue
			}
			names = append(names, fmt.Sprintf("%s=%q", id, name))
			switch {
			case strings.Contains(name, "HexChat"):
				main = id
			case name == "":
				dialog = id
			}
		}
		state = strings.Join(names, " ")
		if dialog != "" {
			h.xdo("windowfocus", "--sync", dialog)
			h.xdo("key", "Return")
		} else if main != "" {
			h.win = main
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.t.Fatalf("HexChat's main window did not appear within %v; visible windows: %s", hxStartTimeout, state)
	return false
}

// Title is the main window's title: "nick @ Network / #tab - HexChat".
func (h *hexchat) Title() string {
	name, _ := h.xdo("getwindowname", h.win)
	return name
}

// WaitTitle waits until the window title shows the tab name, i.e. that tab
// is in front and typed text goes to it.
func (h *hexchat) WaitTitle(tab string, timeout time.Duration) {
	h.t.Helper()
	waitFor(h.t, "HexChat's front tab to be "+tab, timeout, func() (bool, string) {
		title := h.Title()
		return strings.Contains(title, "/ "+tab+" - HexChat"), "title: " + title
	})
}

// Type types a line into HexChat's input box and presses Return, as a
// user would (xdotool into the focused main window).
func (h *hexchat) Type(line string) {
	h.t.Helper()
	if out, err := h.xdo("windowfocus", "--sync", h.win); err != nil {
		h.t.Fatalf("xdotool windowfocus: %v %s", err, out)
	}
	if out, err := h.xdo("type", "--delay", "8", "--", line); err != nil {
		h.t.Fatalf("xdotool type %q: %v %s", line, err, out)
	}
	if out, err := h.xdo("key", "Return"); err != nil {
		h.t.Fatalf("xdotool key Return: %v %s", err, out)
	}
}

// logFiles lists HexChat's log files; tab "" means all of them.
func (h *hexchat) logFiles(tab string) []string {
	pat := "*.log"
	if tab != "" {
		pat = tab + ".log"
	}
	files, _ := filepath.Glob(filepath.Join(h.Dir, "logs", "*", pat))
	return files
}

// Log returns what HexChat logged for one tab ("#lobby", "bob"); "" means
// every tab, including the server tab, whose file is renamed when HexChat
// learns the network name, so it is best read this way.
func (h *hexchat) Log(tab string) string {
	var b strings.Builder
	for _, f := range h.logFiles(tab) {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// AllLogs returns every log file with its name, for failure reports.
func (h *hexchat) AllLogs() string {
	var b strings.Builder
	for _, f := range h.logFiles("") {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "==> %s <==\n%s\n", strings.TrimPrefix(f, h.Dir+"/"), data)
	}
	return b.String()
}

// WaitLog waits until a line HexChat logged for tab matches re and
// returns that line (timestamp, tab, text).
func (h *hexchat) WaitLog(tab, re string, timeout time.Duration) string {
	h.t.Helper()
	rx := regexp.MustCompile(re)
	var found string
	what := fmt.Sprintf("HexChat to log %q", re)
	if tab != "" {
		what += " in " + tab + ".log"
	}
	waitFor(h.t, what, timeout, func() (bool, string) {
		text := h.Log(tab)
		for _, line := range strings.Split(text, "\n") {
			if rx.MatchString(line) {
				found = line
				return true, ""
			}
		}
		return false, h.AllLogs()
	})
	return found
}

// hxCount counts the lines of text that match re.
func hxCount(text, re string) int {
	rx := regexp.MustCompile(re)
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if rx.MatchString(line) {
			n++
		}
	}
	return n
}

// hxStamp parses the timestamp HexChat put at the start of a log line.
func hxStamp(t *testing.T, line string, ref time.Time) time.Time {
	t.Helper()
	if len(line) < len(hxStampLayout) {
		t.Fatalf("no timestamp in log line %q", line)
	}
	ts, err := time.Parse(hxStampLayout, line[:len(hxStampLayout)])
	if err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	ref = ref.UTC()
	return time.Date(ref.Year(), ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), 0, time.UTC)
}

func hxImport(display, path string) error {
	cmd := exec.Command("import", "-window", "root", path)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("import -window root: %v: %s", err, out)
	}
	return nil
}

// hexchatScreenshot saves the whole X display (HexChat fills it) as a PNG.
func hexchatScreenshot(t *testing.T, display, path string) {
	t.Helper()
	requireTools(t, "import")
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	if err := hxImport(display, path); err != nil {
		t.Fatal(err)
	}
}

// hxTap is a recording TCP proxy: HexChat connects to Port, every line is
// kept with its time, connection number and direction.
type hxTap struct {
	Port     int
	start    time.Time
	mu       sync.Mutex
	lines    []string
	conns    int
	lastSent time.Time // when HexChat last sent a line
}

func startHxTap(t *testing.T, target string) *hxTap {
	t.Helper()
	tp := &hxTap{start: time.Now()}
	tp.Port = startRelay(t, target, func(n int, dir, line string) {
		if dir == "--" && line == "connected" {
			tp.mu.Lock()
			tp.conns = n
			tp.mu.Unlock()
		}
		tp.add(n, dir, line)
	})
	return tp
}

func (tp *hxTap) add(conn int, dir, line string) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.lines = append(tp.lines, fmt.Sprintf("%7.3fs #%d %s %s", time.Since(tp.start).Seconds(), conn, dir, line))
	if dir == "C>" {
		tp.lastSent = time.Now()
	}
}

// WaitQuiet waits until HexChat has sent nothing for d. HexChat's flood
// control (net_throttle, on by default) charges 2s per line sent and holds
// lines once 10s are owed; its login burst owes about 12s, so lines typed
// within ~2s of connecting sit in its queue.
func (tp *hxTap) WaitQuiet(t *testing.T, d, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("HexChat to send nothing for %v", d), timeout, func() (bool, string) {
		tp.mu.Lock()
		last := tp.lastSent
		tp.mu.Unlock()
		return !last.IsZero() && time.Since(last) >= d, tp.Text()
	})
}

// Text returns the recorded lines so far.
func (tp *hxTap) Text() string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return strings.Join(tp.lines, "\n")
}

// Sent returns the lines HexChat sent (without prefixes).
func (tp *hxTap) Sent() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []string
	for _, l := range tp.lines {
		if _, rest, ok := strings.Cut(l, " C> "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// Connections is how many TCP connections HexChat has opened.
func (tp *hxTap) Connections() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.conns
}

// WaitSent waits until HexChat has sent a line matching re.
func (tp *hxTap) WaitSent(t *testing.T, re string, timeout time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found string
	waitFor(t, fmt.Sprintf("HexChat to send %q", re), timeout, func() (bool, string) {
		for _, l := range tp.Sent() {
			if rx.MatchString(l) {
				found = l
				return true, ""
			}
		}
		return false, tp.Text()
	})
	return found
}

// hxRaw logs a raw client in and returns it.
func hxRaw(t *testing.T, s *server, nick string) *rawClient {
	t.Helper()
	c := dialRaw(t, s)
	c.Login(nick, nick+"pw")
	return c
}

// hxSync returns once the server has handled every line c sent before
// (each connection's commands run in order).
func hxSync(c *rawClient, token string) {
	c.t.Helper()
	c.Send("PING :%s", token)
	c.Expect(` PONG .*`+regexp.QuoteMeta(token), 10*time.Second)
}

// hxMarker makes message texts unique to one run.
func hxMarker(word string) string {
	return fmt.Sprintf("%s-%d", word, time.Now().UnixNano()%1e9)
}

// ---------------------------------------------------------------------------

// TestHexchatLoginServerPassword: login method "Server password" (L=7).
func TestHexchatLoginServerPassword(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	h := startHexchat(t, s, hexchatOptions{Nick: "alice", Password: "alicepw"})

	bob.Expect(`^(@\S+ )?:alice!\S+ JOIN :?#lobby`, hxWait)
	h.WaitLog("", `\*\tWelcome to the E2ENet IRC Network alice!`, hxWait)
	h.WaitLog("", `HXMARK logged in`, hxWait)
	// HexChat put bob in its user list: the NAMES reply it logs nothing for,
	// but the topic line proves the JOIN handling ran.
	h.WaitLog("#lobby", `\*\tTopic for #lobby is: e2e lobby`, hxWait)

	h.tap.WaitSent(t, `^PASS alicepw$`, hxWait)
	for _, l := range h.tap.Sent() {
		if strings.HasPrefix(l, "AUTHENTICATE") {
			t.Errorf("L=7 login used SASL: %q", l)
		}
	}
}

// TestHexchatLoginSASL: login method "SASL (username + password)" (L=6).
func TestHexchatLoginSASL(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	h := startHexchat(t, s, hexchatOptions{Nick: "dave", Password: "davepw", SASL: true})

	bob.Expect(`^(@\S+ )?:dave!\S+ JOIN :?#lobby`, hxWait)
	h.WaitLog("", `\*\tAuthenticating via SASL as dave \(PLAIN\)`, hxWait)
	h.WaitLog("", `\*\tSASL authentication successful`, hxWait)
	h.WaitLog("", `\*\tWelcome to the E2ENet IRC Network dave!`, hxWait)

	h.tap.WaitSent(t, `^AUTHENTICATE PLAIN$`, hxWait)
	for _, l := range h.tap.Sent() {
		if strings.HasPrefix(l, "PASS") {
			t.Errorf("SASL login also sent a server password: %q", l)
		}
	}
}

// TestHexchatWrongPasswordDoesNotLockAccount: HexChat with a wrong saved
// password shows the server's refusal, and its automatic reconnects must
// not lock the account (3 failures lock it for 60s) for the real user.
func TestHexchatWrongPasswordDoesNotLockAccount(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	// net_reconnect_delay stays at HexChat's default (10s).
	h := startHexchat(t, s, hexchatOptions{Nick: "bob", Password: "wrongpw", NoWait: true})

	h.WaitLog("", `\*\tPassword incorrect$`, hxStartTimeout)
	h.WaitLog("", `\*\tClosing link: Unauthorized \(bad account or password\)$`, hxWait)
	first := time.Now()

	// Give HexChat the time for two reconnects (2 x 10s + margin), or stop
	// early once it has made three attempts.
	const window = 25 * time.Second
	for time.Since(first) < window && hxCount(h.Log(""), `Closing link: Unauthorized`) < 3 {
		time.Sleep(200 * time.Millisecond)
	}
	attempts := h.tap.Connections()
	hcLog := h.Log("")

	bob := dialRaw(t, s)
	ok, last := bob.TryLogin("bob", "bobpw")
	if ok {
		t.Logf("real user logged in after HexChat made %d attempt(s) with a wrong password", attempts)
		return
	}
	t.Errorf("the right password was refused after HexChat's automatic reconnects with a wrong one:\n  raw client got: %s\n"+
		"  HexChat connections so far: %d (reconnects every %s)\n"+
		"  HexChat ignores \"ERROR :Closing link: Unauthorized (...)\": it logged %d \"Cycling to next server\" line(s)\n"+
		"  attempt times (HexChat log):\n%s\n  server log:\n%s",
		last, attempts, hxGaps(t, hcLog), hxCount(hcLog, `Cycling to next server`),
		hxGrep(hcLog, `Connected\. Now logging in|Closing link|Cycling`), hxGrep(s.Log(), `login|lockout`))
}

// hxGrep returns the lines of text matching re, indented.
func hxGrep(text, re string) string {
	rx := regexp.MustCompile(re)
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if rx.MatchString(line) {
			out = append(out, "    "+line)
		}
	}
	return strings.Join(out, "\n")
}

// hxGaps describes the time between HexChat's connection attempts.
func hxGaps(t *testing.T, hcLog string) string {
	var times []time.Time
	for _, line := range strings.Split(hcLog, "\n") {
		if strings.Contains(line, "Connected. Now logging in.") {
			times = append(times, hxStamp(t, line, time.Now()))
		}
	}
	var gaps []string
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]).String())
	}
	if len(gaps) == 0 {
		return "(no reconnect seen)"
	}
	return strings.Join(gaps, ", ")
}

// TestHexchatChannelMessages: #lobby messages both ways with a raw client.
func TestHexchatChannelMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	carol := hxRaw(t, s, "carol")
	h := startHexchat(t, s, hexchatOptions{Nick: "alice", Password: "alicepw"})
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, hxWait)

	shot := os.Getenv("HEXCHAT_SCREENSHOT")
	if shot != "" {
		// HexChat 2.16 prints "Failed loading notification plugin" (there is
		// no notification daemon on the private bus) into a tab soon after
		// start; clear #lobby of it so the picture shows the chat only.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(h.Log(""), "Failed loading notification plugin") {
			time.Sleep(100 * time.Millisecond)
		}
		h.Type("/clear")
	}

	fromBob := "Hi alice, welcome to the lobby!"
	bob.Send("PRIVMSG #lobby :%s", fromBob)
	h.WaitLog("#lobby", `<bob>\t`+regexp.QuoteMeta(fromBob)+`$`, hxWait)

	fromAlice := "Thanks bob! This line was typed into HexChat."
	h.Type(fromAlice)
	bob.Expect(`^(@\S+ )?:alice!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(fromAlice)+`$`, hxWait)
	carol.Expect(`^(@\S+ )?:alice!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(fromAlice)+`$`, hxWait)
	h.WaitLog("#lobby", `<alice>\t`+regexp.QuoteMeta(fromAlice)+`$`, hxWait)

	fromCarol := "Hello both, nice to see you here."
	carol.Send("PRIVMSG #lobby :%s", fromCarol)
	h.WaitLog("#lobby", `<carol>\t`+regexp.QuoteMeta(fromCarol)+`$`, hxWait)

	if shot != "" {
		time.Sleep(500 * time.Millisecond) // let GTK paint the last line
		hexchatScreenshot(t, h.Display, shot)
		t.Logf("screenshot saved to %s", shot)
	}
}

// TestHexchatPrivateMessages: private messages both ways.
func TestHexchatPrivateMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	h := startHexchat(t, s, hexchatOptions{Nick: "alice", Password: "alicepw"})
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, hxWait)

	fromBob := "psst alice " + hxMarker("b")
	bob.Send("PRIVMSG alice :%s", fromBob)
	// A private message opens a query tab named after the sender.
	h.WaitLog("bob", `<bob>\t`+regexp.QuoteMeta(fromBob)+`$`, hxWait)
	if strings.Contains(h.Log("#lobby"), fromBob) {
		t.Errorf("bob's private message was shown in #lobby:\n%s", h.Log("#lobby"))
	}

	fromAlice := "hi bob, privately " + hxMarker("a")
	h.Type("/msg bob " + fromAlice)
	bob.Expect(`^(@\S+ )?:alice!\S+ PRIVMSG bob :`+regexp.QuoteMeta(fromAlice)+`$`, hxWait)
	// With bob's query tab open, HexChat shows the sent text there.
	h.WaitLog("bob", `<alice>\t`+regexp.QuoteMeta(fromAlice)+`$`, hxWait)
}

// TestHexchatOfflineMessage: a message to an offline account is shown when
// HexChat logs in as it, with its original time (HexChat asks for
// server-time), and is not delivered a second time.
func TestHexchatOfflineMessage(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	text := "left for you while offline " + hxMarker("o")
	bob.Send("PRIVMSG dave :%s", text)
	bob.Expect(` 301 bob dave :dave is offline`, 10*time.Second)
	sentAt := time.Now().UTC()
	// Let the clock move on so "sent" and "delivered" times differ.
	time.Sleep(2500 * time.Millisecond)

	h := startHexchat(t, s, hexchatOptions{Nick: "dave", Password: "davepw"})
	h.WaitLog("", `Capabilities acknowledged: .*\bserver-time\b`, hxWait)
	line := h.WaitLog("bob", `<bob>\t.*`+regexp.QuoteMeta(text), hxWait)
	if strings.Contains(line, "UTC] ") {
		t.Errorf("offline message carries the text timestamp meant for clients without server-time: %q", line)
	}
	shown := hxStamp(t, line, sentAt)
	if d := shown.Sub(sentAt.Truncate(time.Second)); d < -time.Second || d > time.Second {
		t.Errorf("HexChat shows the offline message at %s, but it was sent at %s (server-time not used?): %q",
			shown.Format(time.TimeOnly), sentAt.Format(time.TimeOnly), line)
	}
	// HexChat answers the PING queued after the replay: that deletes it.
	h.tap.WaitSent(t, `^PONG :?replay-`, hxWait)

	h.Type("/quit")
	t.Logf("bob saw: %s", bob.Expect(`:dave!\S+ QUIT`, hxWait))
	dave := dialRaw(t, s)
	dave.Login("dave", "davepw")
	dave.Send("PING :after-replay")
	got := dave.Expect(`PONG .*after-replay|`+regexp.QuoteMeta(text), 10*time.Second)
	if strings.Contains(got, text) {
		t.Errorf("the offline message was delivered again after HexChat had received it: %q", got)
	}
}

// TestHexchatWhoelse: /whoelse and /wholasthr typed in HexChat go out as
// raw commands and the server's NOTICE replies show in HexChat.
func TestHexchatWhoelse(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	dave := hxRaw(t, s, "dave")
	dave.Send("QUIT :gone")
	dave.Expect(`^ERROR `, 10*time.Second)
	bob := hxRaw(t, s, "bob")
	hxRaw(t, s, "carol")
	h := startHexchat(t, s, hexchatOptions{Nick: "alice", Password: "alicepw"})
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, hxWait)

	// HexChat sends unknown /commands as raw lines; the replies are server
	// NOTICEs, which HexChat shows in the server tab (not in #lobby, where
	// the command was typed).
	h.Type("/whoelse")
	h.tap.WaitSent(t, `^(?i)whoelse$`, hxWait)
	h.WaitLog("", `\tOnline: bob carol$`, hxWait)
	h.WaitLog("", `\t2 other users online$`, hxWait)

	h.Type("/wholasthr")
	h.tap.WaitSent(t, `^(?i)wholasthr$`, hxWait)
	h.WaitLog("", `\tLast hour: bob \(online now\), carol \(online now\), dave \(left \d\d:\d\d UTC, \d+s ago\)$`, hxWait)
	h.WaitLog("", `\t3 other users connected in the last hour$`, hxWait)
}

// TestHexchatBlockUnblock: /block bob and /unblock bob typed in HexChat
// (sent as BLOCK/UNBLOCK, aliases of SILENCE +/-).
func TestHexchatBlockUnblock(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	carol := hxRaw(t, s, "carol")
	h := startHexchat(t, s, hexchatOptions{Nick: "alice", Password: "alicepw"})
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, hxWait)

	before := hxMarker("bob-before-block")
	bob.Send("PRIVMSG #lobby :%s", before)
	h.WaitLog("#lobby", `<bob>\t`+before+`$`, hxWait)

	h.Type("/block bob")
	h.tap.WaitSent(t, `^(?i)block bob$`, hxWait)
	// alice's next line reaching bob proves the server handled BLOCK first.
	sync1 := hxMarker("alice-sync1")
	h.Type(sync1)
	bob.Expect(`:alice!\S+ PRIVMSG #lobby :`+sync1, hxWait)

	blockedChan, blockedPM := hxMarker("bob-chan-while-blocked"), hxMarker("bob-pm-while-blocked")
	mark := len(bob.seen)
	bob.Send("PRIVMSG #lobby :%s", blockedChan)
	bob.Send("PRIVMSG alice :%s", blockedPM)
	hxSync(bob, "after-blocked")
	for _, l := range bob.seen[mark:] {
		if !strings.Contains(l, " PONG ") {
			t.Errorf("bob was told something about his blocked messages: %q", l)
		}
	}
	// carol's line is queued to alice after anything bob's could have been.
	fence := hxMarker("carol-fence")
	carol.Send("PRIVMSG #lobby :%s", fence)
	h.WaitLog("#lobby", `<carol>\t`+fence+`$`, hxWait)
	if all := h.Log(""); strings.Contains(all, blockedChan) || strings.Contains(all, blockedPM) {
		t.Errorf("HexChat shows bob's messages while bob is blocked:\n%s", hxGrep(all, "while-blocked"))
	}

	h.Type("/unblock bob")
	h.tap.WaitSent(t, `^(?i)unblock bob$`, hxWait)
	sync2 := hxMarker("alice-sync2")
	h.Type(sync2)
	bob.Expect(`:alice!\S+ PRIVMSG #lobby :`+sync2, hxWait)

	afterChan, afterPM := hxMarker("bob-chan-after-unblock"), hxMarker("bob-pm-after-unblock")
	bob.Send("PRIVMSG #lobby :%s", afterChan)
	bob.Send("PRIVMSG alice :%s", afterPM)
	h.WaitLog("#lobby", `<bob>\t`+afterChan+`$`, hxWait)
	h.WaitLog("bob", `<bob>\t`+afterPM+`$`, hxWait)

	// The issue pins the ircu-style echo ":alice SILENCE +bob!*@*", which
	// HexChat prints as "GARBAGE: ..."; BLOCK/UNBLOCK therefore also
	// confirm with a server NOTICE, which HexChat shows readably.
	t.Run("readable_confirmation", func(t *testing.T) {
		log := h.Log("")
		for _, want := range []string{`Blocked bob!\*@\*`, `Unblocked bob!\*@\*`} {
			if hxGrep(log, want) == "" {
				t.Errorf("no readable confirmation %q in HexChat's log:\n%s", want, log)
			}
		}
		if g := hxGrep(log, `GARBAGE`); g != "" {
			t.Logf("known oddity (the pinned SILENCE echo): %s", g)
		}
	})
}

// TestHexchatQuit: /quit in HexChat; a raw client sees the QUIT.
func TestHexchatQuit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	bob := hxRaw(t, s, "bob")
	h := startHexchat(t, s, hexchatOptions{Nick: "alice", Password: "alicepw"})
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, hxWait)

	// HexChat empties its send queue on disconnect, so a QUIT typed while
	// its flood control still holds lines (the first ~2s after login) is
	// never sent. Quit like a user who has been connected for a moment.
	h.tap.WaitQuiet(t, 3*time.Second, hxWait)
	reason := hxMarker("see you later")
	h.Type("/quit " + reason)
	h.tap.WaitSent(t, `^QUIT :`+reason+`$`, hxWait)
	bob.Expect(`^(@\S+ )?:alice!\S+ QUIT :.*`+reason, hxWait)
	h.WaitLog("", `\*\tDisconnected`, hxWait)
}
