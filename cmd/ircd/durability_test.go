package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testDaemon is bin/ircd run as a subprocess, as an operator runs it.
type testDaemon struct {
	t   *testing.T
	bin string
	dir string
	// Where the current run listens. The config says port 0 and start
	// reads the bound addresses from the run's log: a port picked by the
	// test and freed before the daemon binds it can be taken meanwhile by
	// another test's server, which the test would then talk to.
	addr, tlsAddr, metricsAddr string
	cmd                        *exec.Cmd
	log                        string // the current run's log file
	// exited is closed when the current run's process has been reaped;
	// exitErr is its Wait result.
	exited  chan struct{}
	exitErr error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ircd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func newDaemon(t *testing.T, extra ...string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\n[store]\npath = \"state/ircd.db\"\n%s\n", strings.Join(extra, "\n"))
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600)
	os.WriteFile(filepath.Join(dir, "users.txt"), []byte("alice alicepw\nbob bobpw\n"), 0o600)
	d := &testDaemon{t: t, bin: buildBinary(t), dir: dir}
	t.Cleanup(func() {
		if d.cmd != nil {
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

func (d *testDaemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.bin, "-config", filepath.Join(d.dir, "config.toml"))
	d.log = filepath.Join(d.dir, fmt.Sprintf("log-%d", time.Now().UnixNano()))
	log, _ := os.Create(d.log)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	cmd, exited := d.cmd, make(chan struct{})
	d.exited = exited
	go func() { d.exitErr = cmd.Wait(); close(exited) }()
	cfg, _ := os.ReadFile(filepath.Join(d.dir, "config.toml"))
	d.addr = waitLogMatch(d.t, d, `msg=listening addr=(\S+) tls=false`)
	d.tlsAddr, d.metricsAddr = "", ""
	if strings.Contains(string(cfg), "[tls]") {
		d.tlsAddr = waitLogMatch(d.t, d, `msg=listening addr=(\S+) tls=true`)
	}
	if strings.Contains(string(cfg), "[metrics]") {
		d.metricsAddr = waitLogMatch(d.t, d, `msg="metrics listening" addr=(\S+)`)
	}
}

func (d *testDaemon) signal(sig syscall.Signal) error {
	d.cmd.Process.Signal(sig)
	<-d.exited
	d.cmd = nil
	return d.exitErr
}

type lineConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dial connects to the daemon without logging in.
func (d *testDaemon) dial() *lineConn {
	d.t.Helper()
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return &lineConn{t: d.t, c: c, r: bufio.NewReader(c)}
}

func (d *testDaemon) login(nick string) *lineConn {
	d.t.Helper()
	lc := d.dial()
	c := lc.c
	fmt.Fprintf(c, "PASS %spw\r\nNICK %s\r\nUSER %s 0 * :%s\r\n", nick, nick, nick, nick)
	lc.expect(` 366 ` + nick + ` `)
	return lc
}

func (lc *lineConn) expect(re string) string {
	lc.t.Helper()
	return lc.expectWithin(re, 5*time.Second)
}

// expectWithin is expect with a wait of its own.
func (lc *lineConn) expectWithin(re string, wait time.Duration) string {
	lc.t.Helper()
	rx := regexp.MustCompile(re)
	lc.c.SetReadDeadline(time.Now().Add(wait))
	var seen []string
	for {
		line, err := lc.r.ReadString('\n')
		if err != nil {
			lc.t.Fatalf("waiting for %q: %v; saw %q", re, err, seen)
		}
		line = strings.TrimRight(line, "\r\n")
		seen = append(seen, line)
		if rx.MatchString(line) {
			return line
		}
	}
}

// A message confirmed with 301 survives SIGKILL: it was fsynced first.
func TestOfflineMessageSurvivesSIGKILL(t *testing.T) {
	d := newDaemon(t)
	d.start()
	alice := d.login("alice")
	fmt.Fprintf(alice.c, "PRIVMSG bob :written before the crash\r\n")
	alice.expect(` 301 alice bob `)
	d.signal(syscall.SIGKILL)

	d.start()
	bob := d.login("bob")
	bob.expect(`^:alice!alice@127\.0\.0\.1 PRIVMSG bob :\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] written before the crash$`)
}

// SIGTERM: clients are told, the process exits 0, state is kept.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	d := newDaemon(t)
	d.start()
	alice := d.login("alice")
	fmt.Fprintf(alice.c, "SILENCE +bob\r\n")
	alice.expect(`SILENCE \+bob`)
	d.cmd.Process.Signal(syscall.SIGTERM)
	alice.expect(`^ERROR :Server shutting down$`)
	<-d.exited
	if d.exitErr != nil {
		t.Fatalf("exit: %v", d.exitErr)
	}
	d.cmd = nil
	if _, err := os.Stat(filepath.Join(d.dir, "state", "ircd.db")); err != nil {
		t.Fatalf("store folder not created: %v", err)
	}
	d.start()
	alice = d.login("alice")
	fmt.Fprintf(alice.c, "SILENCE\r\n")
	alice.expect(` 271 alice alice :?bob!\*@\*$`)
}

// SIGHUP reloads users.txt: a new account can log in at once.
func TestSIGHUPReloadsUsers(t *testing.T) {
	d := newDaemon(t)
	d.start()
	os.WriteFile(filepath.Join(d.dir, "users.txt"), []byte("alice alicepw\nbob bobpw\nerin erinpw\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	// Wait for the reload before trying: early failures would count
	// toward erin's lockout.
	waitLog(t, d, "reloaded users file")
	d.login("erin")
}
