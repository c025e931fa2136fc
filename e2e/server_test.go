// Package e2e drives real IRC clients (irssi, WeeChat, HexChat) and raw
// sockets against the built bin/ircd. Tests skip, loudly, when a client
// is not installed; `make e2e` sets E2E_REQUIRE=1 to make that a failure.
package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var ircdBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ircd-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ircdBin = filepath.Join(dir, "ircd")
	build := exec.Command("go", "build", "-o", ircdBin, "../cmd/ircd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ircd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTools skips (or fails under E2E_REQUIRE=1) when a program is missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			msg := fmt.Sprintf("END-TO-END SKIPPED: %s is not installed (apt-get install irssi weechat-curses weechat-plugins tmux hexchat xvfb xdotool dbus-daemon chromium)", n)
			if os.Getenv("E2E_REQUIRE") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// server is one running bin/ircd with its own config and data folder.
type server struct {
	// Where it listens, read from its log: the config says port 0, since
	// a port picked here and freed before the server binds it can be
	// taken meanwhile by another test's server.
	Addr       string // 127.0.0.1:port
	Port       int
	TLSPort    int // 0 without a [tls] listener
	WebPort    int // 0 without a [web] listen (its first one)
	WebTLSPort int // 0 without a [web] tls_listen (its first one)
	Dir        string
	cmd        *exec.Cmd
	exited     chan struct{} // closed when cmd has been reaped
	log        *os.File
}

// serverOptions tweak the generated config.
type serverOptions struct {
	Users    string // users.txt contents; default alice/bob/carol/dave with <name>pw
	Extra    string // appended TOML
	Lockout  string
	Accounts string // more lines for the [accounts] table
}

const defaultUsers = "alice alicepw\nbob bobpw\ncarol carolpw\ndave davepw\n"

// startServer starts bin/ircd on a free loopback port and waits until it
// accepts connections. It is stopped (SIGTERM) at test cleanup.
func startServer(t *testing.T, opt serverOptions) *server {
	t.Helper()
	dir := t.TempDir()
	if opt.Users == "" {
		opt.Users = defaultUsers
	}
	if opt.Lockout == "" {
		opt.Lockout = "60s"
	}
	cfg := fmt.Sprintf(`[server]
name = "irc.e2e.test"
network = "E2ENet"
motd = "e2e server"
listen = ["127.0.0.1:0"]
[channel]
name = "#lobby"
topic = "e2e lobby"
[accounts]
lockout = %q
%s
[store]
path = "data/ircd.db"
%s
`, opt.Lockout, opt.Accounts, opt.Extra)
	return startServerConfig(t, dir, cfg, opt.Users)
}

// startServerConfig starts bin/ircd in dir with the given config.toml and
// users.txt contents; cfg should listen on 127.0.0.1:0 (and may have a
// [tls] listener there too). It is stopped (SIGTERM) at test cleanup.
func startServerConfig(t *testing.T, dir string, cfg, users string) *server {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "users.txt"), []byte(users), 0o600))
	s := &server{Dir: dir}
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) start(t *testing.T) {
	t.Helper()
	if err := s.tryStart(); err != nil {
		t.Fatal(err)
	}
}

// tryStart starts the server and waits until it listens; an error if it
// exits first (its log then says why) or takes more than 10 s.
func (s *server) tryStart() error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "ircd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(s.Dir, "config.toml"))
	if err != nil {
		return err
	}
	logStart := len(s.Log()) // this run's lines only
	s.log = logf
	s.cmd = exec.Command(ircdBin, "-config", filepath.Join(s.Dir, "config.toml"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		s.cmd = nil
		return err
	}
	cmd, exited := s.cmd, make(chan struct{})
	s.exited = exited
	go func() { cmd.Wait(); close(exited) }()
	want := `msg=listening addr=127\.0\.0\.1:(\d+) tls=false`
	// A section counts when its header is not commented out (the shipped
	// config.toml has "# [tls]").
	if regexp.MustCompile(`(?m)^\s*\[tls\]`).Match(cfg) {
		want += `(?s:.*)msg=listening addr=127\.0\.0\.1:(\d+) tls=true`
	}
	rx := regexp.MustCompile(want)
	// The web listeners: wait for the first plain and the first TLS one
	// when the [web] section has them.
	var webRx, webTLSRx *regexp.Regexp
	if plain, secure := webListeners(string(cfg)); plain || secure {
		if plain {
			webRx = regexp.MustCompile(`msg="web listening" addr=127\.0\.0\.1:(\d+) tls=false`)
		}
		if secure {
			webTLSRx = regexp.MustCompile(`msg="web listening" addr=127\.0\.0\.1:(\d+) tls=true`)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := s.Log()[logStart:]
		m := rx.FindStringSubmatch(log)
		var wm, wtm []string
		if webRx != nil {
			wm = webRx.FindStringSubmatch(log)
		}
		if webTLSRx != nil {
			wtm = webTLSRx.FindStringSubmatch(log)
		}
		if m != nil && (webRx == nil || wm != nil) && (webTLSRx == nil || wtm != nil) {
			s.Port, _ = strconv.Atoi(m[1])
			s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
			if len(m) > 2 {
				s.TLSPort, _ = strconv.Atoi(m[2])
			}
			if wm != nil {
				s.WebPort, _ = strconv.Atoi(wm[1])
			}
			if wtm != nil {
				s.WebTLSPort, _ = strconv.Atoi(wtm[1])
			}
			return nil
		}
		select {
		case <-exited:
			s.log.Close()
			s.cmd = nil
			return fmt.Errorf("server exited before listening:\n%s", s.Log()[logStart:])
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(nil)
			return fmt.Errorf("server did not start listening:\n%s", s.Log()[logStart:])
		}
	}
}

// webListeners reports whether cfg's [web] section has listen and
// tls_listen addresses.
func webListeners(cfg string) (plain, secure bool) {
	section := ""
	for _, l := range strings.Split(cfg, "\n") {
		l = strings.TrimSpace(l)
		if m := regexp.MustCompile(`^\[(\w+)\]`).FindStringSubmatch(l); m != nil {
			section = m[1]
			continue
		}
		if section != "web" {
			continue
		}
		if regexp.MustCompile(`^listen\s*=\s*\[\s*"`).MatchString(l) {
			plain = true
		}
		if regexp.MustCompile(`^tls_listen\s*=\s*\[\s*"`).MatchString(l) {
			secure = true
		}
	}
	return plain, secure
}

func (s *server) stop(t *testing.T) { s.stopSignal(os.Interrupt) }

// stopSignal stops the server with sig (killing it if it has not exited
// 15 s later) and waits until it has.
func (s *server) stopSignal(sig os.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.log.Close()
	s.cmd = nil
}

// Log returns the server's log so far.
func (s *server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "ircd.log"))
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// rawClient is an nc-like line client for checking what others see.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	seen []string
}

func dialRaw(t *testing.T, s *server) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) Send(format string, args ...any) {
	c.t.Helper()
	_, err := fmt.Fprintf(c.conn, format+"\r\n", args...)
	must(c.t, err)
}

// Expect reads lines until one matches re, or fails after timeout.
func (c *rawClient) Expect(re string, timeout time.Duration) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		c.conn.SetReadDeadline(deadline)
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("waiting for %q: %v; saw:\n%s", re, err, strings.Join(c.seen, ""))
		}
		c.seen = append(c.seen, line)
		if line := strings.TrimRight(line, "\r\n"); rx.MatchString(line) {
			return line
		}
	}
}

// Login logs a raw client in with PASS/NICK/USER and waits for the NAMES end.
func (c *rawClient) Login(nick, pass string) {
	c.t.Helper()
	if ok, last := c.TryLogin(nick, pass); !ok {
		c.t.Fatalf("login as %s refused: %s", nick, last)
	}
}

// waitFor polls cond until true or the deadline; cond reads files or panes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last state:\n%s", timeout, what, last)
}
