package e2e

// Helpers shared by the terminal clients (irssi, WeeChat): a detached tmux
// session on a private socket, log-file polling, and a recording TCP proxy
// that keeps the wire lines between a client and the server.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tmuxSession is one program running in a detached tmux session on its own
// tmux server (socket), so tests never see each other's sessions.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
	pid    int // the program's process (env execs it)
}

var tmuxSeq atomic.Int64

// startTmux runs argv in a new detached 200x50 tmux session. env entries
// (KEY=VALUE) are set for the program. The session is killed at cleanup.
func startTmux(t *testing.T, name string, env []string, argv ...string) *tmuxSession {
	t.Helper()
	requireTools(t, "tmux")
	ts := &tmuxSession{
		t:      t,
		socket: fmt.Sprintf("e2e-%d-%d", os.Getpid(), tmuxSeq.Add(1)),
		name:   name,
	}
	args := []string{"new-session", "-d", "-s", name, "-x", "200", "-y", "50", "--", "env"}
	args = append(args, env...)
	args = append(args, argv...)
	if out, err := ts.cmd(args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session %v: %v\n%s", argv, err, out)
	}
	t.Cleanup(ts.Kill)
	out, err := ts.cmd("display-message", "-p", "-t", ts.name, "#{pane_pid}").Output()
	if err != nil {
		t.Fatalf("tmux display-message: %v", err)
	}
	ts.pid, err = strconv.Atoi(strings.TrimSpace(string(out)))
	must(t, err)
	return ts
}

func (ts *tmuxSession) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("tmux", append([]string{"-f", "/dev/null", "-L", ts.socket}, args...)...)
	env := os.Environ()
	if os.Getenv("TERM") == "" || os.Getenv("TERM") == "dumb" {
		env = append(env, "TERM=xterm-256color")
	}
	cmd.Env = env
	return cmd
}

// Type types line literally into the session and presses Enter.
func (ts *tmuxSession) Type(line string) {
	ts.t.Helper()
	if out, err := ts.cmd("send-keys", "-t", ts.name, "-l", "--", line).CombinedOutput(); err != nil {
		ts.t.Fatalf("tmux send-keys %q: %v\n%s", line, err, out)
	}
	if out, err := ts.cmd("send-keys", "-t", ts.name, "Enter").CombinedOutput(); err != nil {
		ts.t.Fatalf("tmux send-keys Enter: %v\n%s", err, out)
	}
}

// Capture returns what the terminal shows now (the visible screen).
func (ts *tmuxSession) Capture() string {
	out, err := ts.cmd("capture-pane", "-p", "-J", "-t", ts.name).Output()
	if err != nil {
		return fmt.Sprintf("(capture-pane failed: %v)", err)
	}
	return string(out)
}

// CaptureANSI returns the visible screen with colours and attributes as
// escape sequences, trailing spaces kept (for rendering a picture).
func (ts *tmuxSession) CaptureANSI() (string, error) {
	out, err := ts.cmd("capture-pane", "-p", "-e", "-N", "-t", ts.name).Output()
	return string(out), err
}

// Resize sets the terminal to cols x rows; the program redraws.
func (ts *tmuxSession) Resize(cols, rows int) {
	ts.t.Helper()
	if out, err := ts.cmd("resize-window", "-t", ts.name, "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows)).CombinedOutput(); err != nil {
		ts.t.Fatalf("tmux resize-window: %v\n%s", err, out)
	}
}

// Alive reports whether the session (and so the program) is still running.
func (ts *tmuxSession) Alive() bool {
	return ts.cmd("has-session", "-t", ts.name).Run() == nil
}

// Kill ends the session by name, then its private tmux server, and waits
// (up to 10s, then SIGKILL) for the program to exit, so that it no longer
// writes into its home folder when t.TempDir removes it.
func (ts *tmuxSession) Kill() {
	ts.cmd("kill-session", "-t", ts.name).Run()
	ts.cmd("kill-server").Run()
	if ts.pid == 0 {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(ts.pid) {
		if time.Now().After(deadline) {
			syscall.Kill(ts.pid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processAlive reports whether pid is still running (a zombie counts as
// gone: it no longer writes files).
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state letter follows the ")" that ends the command name.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// readFiles returns the contents of every file matching the glob patterns,
// each preceded by a "==> path <==" header, for polling and for failure
// messages.
func readFiles(patterns ...string) string {
	var b strings.Builder
	for _, p := range patterns {
		matches, _ := filepath.Glob(p)
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "==> %s <==\n%s\n", m, data)
		}
	}
	return b.String()
}

// waitText polls the files matching patterns until re matches their text,
// and returns the first match (with submatches). extra is appended to the
// failure message (e.g. a screen capture).
func waitText(t *testing.T, what string, timeout time.Duration, re string, extra func() string, patterns ...string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found []string
	waitFor(t, what+" (/"+re+"/ in "+strings.Join(patterns, ", ")+")", timeout, func() (bool, string) {
		text := readFiles(patterns...)
		if found = rx.FindStringSubmatch(text); found != nil {
			return true, ""
		}
		if extra != nil {
			text += "\n--- more ---\n" + extra()
		}
		return false, text
	})
	return found
}

// holdFor checks for d that bad stays false; it fails at once when bad
// turns true. It is for "this must not happen within d" checks.
func holdFor(t *testing.T, what string, d time.Duration, bad func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if yes, state := bad(); yes {
			t.Fatalf("%s; state:\n%s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countMatches counts the matches of re in the files matching patterns.
func countMatches(re string, patterns ...string) int {
	return len(regexp.MustCompile(re).FindAllStringIndex(readFiles(patterns...), -1))
}

// wireLog is a recording TCP proxy between a client and the server: the
// client connects to Addr; every line is written to Path prefixed with the
// connection number and "C>" (client to server) or "S>" (server to client).
// startRelay listens on loopback and relays every connection to target
// line by line, calling record(conn, dir, line) for each line ("C>" client
// to server, "S>" back) and for "connected", "closed" and dial errors
// (dir "--"). It returns the port; everything stops at test cleanup.
func startRelay(t *testing.T, target string, record func(conn int, dir, line string)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var wg sync.WaitGroup
	var open sync.Map // net.Conn -> struct{}
	t.Cleanup(func() {
		l.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				record(n, "--", fmt.Sprintf("dial %s: %v", target, err))
				c.Close()
				continue
			}
			open.Store(c, struct{}{})
			open.Store(up, struct{}{})
			record(n, "--", "connected")
			wg.Add(2)
			pipe := func(dst, src net.Conn, dir string) {
				defer wg.Done()
				r := bufio.NewReader(src)
				for {
					line, err := r.ReadString('\n')
					if line != "" {
						record(n, dir, strings.TrimRight(line, "\r\n"))
						if _, werr := io.WriteString(dst, line); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				// Either side ending ends the whole connection.
				dst.Close()
				src.Close()
				if dir == "S>" {
					record(n, "--", "closed")
				}
			}
			go pipe(up, c, "C>")
			go pipe(c, up, "S>")
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// wireLog records a client's wire lines to a file through startRelay.
type wireLog struct {
	Addr  string
	Path  string
	Port  int
	conns atomic.Int64
	mu    sync.Mutex
	f     *os.File
}

func startWireLog(t *testing.T, s *server) *wireLog {
	t.Helper()
	w := &wireLog{Path: filepath.Join(t.TempDir(), "wire.log")}
	var err error
	w.f, err = os.Create(w.Path)
	must(t, err)
	// Registered first, so it runs after the relay's cleanup has stopped
	// every pipe (cleanups run last-in first-out).
	t.Cleanup(func() { w.mu.Lock(); w.f.Close(); w.mu.Unlock() })
	w.Port = startRelay(t, s.Addr, func(n int, dir, line string) {
		if dir == "--" {
			if line == "connected" {
				w.conns.Store(int64(n))
			}
			w.write(fmt.Sprintf("#%d %s\n", n, line))
			return
		}
		w.write(fmt.Sprintf("#%d %s %s\n", n, dir, line))
	})
	w.Addr = fmt.Sprintf("127.0.0.1:%d", w.Port)
	return w
}

func (w *wireLog) write(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.WriteString(s)
}

// Connections is how many connections the client has made so far.
func (w *wireLog) Connections() int { return int(w.conns.Load()) }

// Text returns the recorded wire lines so far.
func (w *wireLog) Text() string {
	b, _ := os.ReadFile(w.Path)
	return string(b)
}

// clockLine parses "HH:MM:SS" into today's time in UTC (the clients run
// with TZ=UTC), picking the day that puts it nearest to ref.
func clockLine(t *testing.T, hms string, ref time.Time) time.Time {
	t.Helper()
	c, err := time.Parse("15:04:05", hms)
	must(t, err)
	ref = ref.UTC()
	best := time.Time{}
	for _, d := range []int{-1, 0, 1} {
		day := ref.AddDate(0, 0, d)
		v := time.Date(day.Year(), day.Month(), day.Day(), c.Hour(), c.Minute(), c.Second(), 0, time.UTC)
		if best.IsZero() || absDur(v.Sub(ref)) < absDur(best.Sub(ref)) {
			best = v
		}
	}
	return best
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// uniq makes a short marker unique to this test run, so a log line can only
// match the message this test sent.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e9)
}

// serverTime reads the @time tag of a raw line (the raw client asks for
// server-time).
func serverTime(t *testing.T, line string) time.Time {
	t.Helper()
	m := regexp.MustCompile(`^@(?:\S*;)?time=([^; ]+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no time tag in %q", line)
	}
	ts, err := time.Parse(time.RFC3339Nano, m[1])
	must(t, err)
	return ts
}

// waitUntil waits for the wall clock to pass at (letting time move on so
// timestamps of "then" and "now" differ); it is not a wait for a reply.
func waitUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

// TryLogin logs a raw client in like Login but reports a refusal instead of
// failing: ok is true on the end of NAMES, else last is the ERROR line.
func (c *rawClient) TryLogin(nick, pass string) (ok bool, last string) {
	c.t.Helper()
	c.Send("CAP LS 302")
	c.Send("CAP REQ :server-time")
	c.Send("CAP END")
	c.Send("PASS %s", pass)
	c.Send("NICK %s", nick)
	c.Send("USER %s 0 * :%s", nick, nick)
	line := c.Expect(` 366 `+nick+` |^(@\S+ )?ERROR `, 10*time.Second)
	return strings.Contains(line, " 366 "), line
}

// Sync waits until the server has handled everything this client sent
// before (one reader runs each connection's commands in order).
func (c *rawClient) Sync() {
	c.t.Helper()
	tok := uniq("sync")
	c.Send("PING :%s", tok)
	c.Expect(` PONG .*`+tok, 10*time.Second)
}

// Seen returns every line this raw client has read so far.
func (c *rawClient) Seen() string { return strings.Join(c.seen, "") }
