package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runTool runs ircbench with args and returns its parsed result line,
// failing the test unless it exits 0 with ok=1 and no loss.
func runTool(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var out, errb bytes.Buffer
	code := realMain(args, &out, &errb)
	line := strings.TrimSpace(out.String())
	if code != 0 || line == "" || strings.Contains(line, "\n") {
		t.Fatalf("ircbench %q: exit %d, want one line; stdout %q stderr %q", args, code, line, errb.String())
	}
	r := parseResult(t, line)
	if r["ok"] != "1" {
		t.Fatalf("not ok: %s", line)
	}
	for _, k := range []string{"lost", "reordered", "disconnects", "failed"} {
		if v, ok := r[k]; ok && v != "0" {
			t.Errorf("%s=%s: %s", k, v, line)
		}
	}
	return r
}

// Our server joins every user itself: -join detect must notice that and
// send no JOIN of its own.
func TestJoinDetectOurServer(t *testing.T) {
	srv := startServer(t)
	r := runTool(t, "-addr", srv.addr, "-pid", strconv.Itoa(srv.pid), "-timeout", "10s",
		"-join", "detect", "-first", "300", "connect", "-n", "5", "-hold", "100ms")
	if r["client_joins"] != "0" || r["welcomed"] != "5" {
		t.Fatalf("client_joins=%s welcomed=%s, want 0 and 5", r["client_joins"], r["welcomed"])
	}
}

// fakeServer is a minimal IRC server that does not join anyone by itself
// (like InspIRCd): it welcomes NICK+USER with 001 and 422, answers PING and
// JOIN, relays PRIVMSG between its users, and records every line it read.
type fakeServer struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	users map[string]net.Conn
}

func startFake(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln, users: map[string]net.Conn{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(nc)
		}
	}()
	return f
}

func (f *fakeServer) serve(nc net.Conn) {
	defer nc.Close()
	sc := bufio.NewScanner(nc)
	nick := "*"
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		f.mu.Lock()
		f.lines = append(f.lines, line)
		f.mu.Unlock()
		cmd, rest, _ := strings.Cut(line, " ")
		switch cmd {
		case "NICK":
			nick = rest
			f.mu.Lock()
			f.users[nick] = nc
			f.mu.Unlock()
		case "USER":
			fmt.Fprintf(nc, ":fake 001 %s :Welcome\r\n:fake 422 %s :MOTD File is missing\r\n", nick, nick)
		case "PING":
			fmt.Fprintf(nc, ":fake PONG fake %s\r\n", rest)
		case "JOIN":
			fmt.Fprintf(nc, ":%s!u@h JOIN %s\r\n:fake 353 %s = %s :%s\r\n:fake 366 %s %s :End of /NAMES list.\r\n", nick, rest, nick, rest, nick, nick, rest)
		case "PRIVMSG":
			to, _, _ := strings.Cut(rest, " ")
			f.mu.Lock()
			dst := f.users[to]
			f.mu.Unlock()
			if dst != nil {
				fmt.Fprintf(dst, ":%s!u@h %s\r\n", nick, line)
			}
		}
	}
}

func (f *fakeServer) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// A server without accounts and without auto-join: -auth none sends no
// PASS, and both -join client and -join detect get every user into the
// channel by sending JOIN themselves; -join none joins nothing.
func TestJoinWithoutAutoJoin(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		f := startFake(t)
		r := runTool(t, "-addr", f.ln.Addr().String(), "-timeout", "5s", "-auth", "none", "-join", "none",
			"connect", "-n", "3", "-hold", "50ms")
		if r["client_joins"] != "0" || r["welcomed"] != "3" || f.count("JOIN") != 0 {
			t.Fatalf("client_joins=%s welcomed=%s, %d JOINs read; want 0, 3, 0", r["client_joins"], r["welcomed"], f.count("JOIN"))
		}
	})
	for _, mode := range []string{"client", "detect"} {
		t.Run(mode, func(t *testing.T) {
			f := startFake(t)
			r := runTool(t, "-addr", f.ln.Addr().String(), "-timeout", "5s", "-auth", "none", "-join", mode,
				"connect", "-n", "4", "-hold", "50ms")
			if r["client_joins"] != "4" || r["welcomed"] != "4" {
				t.Fatalf("client_joins=%s welcomed=%s, want 4 and 4", r["client_joins"], r["welcomed"])
			}
			if n := f.count("PASS"); n != 0 {
				t.Errorf("%d PASS lines sent with -auth none", n)
			}
			if n := f.count("JOIN #lobby"); n != 4 {
				t.Errorf("server read %d JOIN #lobby, want 4", n)
			}
			if n := f.count("PING :" + string(joinCheck)); (mode == "detect") != (n == 4) {
				t.Errorf("-join %s: %d join-check PINGs", mode, n)
			}
			// Traffic works the same way on such a server.
			runTool(t, "-addr", f.ln.Addr().String(), "-timeout", "5s", "-auth", "none", "-join", mode,
				"-first", "10", "-drain", "2s", "privmsg", "-n", "4", "-window", "5", "-duration", "200ms")
		})
	}
}

const inspircdBin = "/usr/sbin/inspircd"

// startInspIRCd runs a real InspIRCd with the config make bench gives it
// (scripts/inspircd-peer.sh) on a free loopback port, in the foreground.
func startInspIRCd(t *testing.T) server {
	t.Helper()
	if _, err := os.Stat(inspircdBin); err != nil {
		t.Skip("!!! " + inspircdBin + " IS NOT INSTALLED: the side-by-side test against InspIRCd did not run (apt-get install -y inspircd) !!!")
	}
	if testing.Short() {
		t.Skip("runs InspIRCd")
	}
	script, err := filepath.Abs("../../scripts/inspircd-peer.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for try := 0; try < 5; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cfg, err := exec.Command("bash", script, "config", dir, strconv.Itoa(port)).Output()
		if err != nil {
			t.Fatalf("%s config: %v", script, err)
		}
		os.WriteFile(filepath.Join(dir, "inspircd.conf"), cfg, 0o600)
		args := []string{"--config", filepath.Join(dir, "inspircd.conf"), "--nofork"}
		if os.Geteuid() == 0 {
			args = append(args, "--runasroot")
		}
		outPath := filepath.Join(dir, "inspircd.out")
		out, err := os.Create(outPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(inspircdBin, args...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
			out.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(outPath)
			switch {
			case bytes.Contains(b, []byte("failed to bind")):
			case bytes.Contains(b, []byte("is now running")):
				t.Cleanup(stop)
				return server{addr: "127.0.0.1:" + strconv.Itoa(port), pid: cmd.Process.Pid}
			case time.Now().Before(deadline):
				select {
				case <-exited:
					t.Fatalf("InspIRCd exited:\n%s", b)
				case <-time.After(20 * time.Millisecond):
				}
				continue
			default:
				stop()
				t.Fatalf("InspIRCd did not start:\n%s", b)
			}
			stop() // the port was taken meanwhile: another one
			break
		}
	}
	t.Fatal("InspIRCd could not bind a port in 5 tries")
	return server{}
}

// A tiny scenario of each kind against a real InspIRCd, as make bench
// runs it there: no PASS, the client sends its own JOIN.
func TestAgainstInspIRCd(t *testing.T) {
	srv := startInspIRCd(t)
	common := []string{"-addr", srv.addr, "-pid", strconv.Itoa(srv.pid), "-timeout", "10s", "-drain", "3s", "-auth", "none"}
	for _, tc := range []struct {
		join  string
		args  []string
		check string
	}{
		{"client", []string{"connect", "-n", "10", "-hold", "200ms", "-first", "0"}, "bytes_per_conn"},
		{"detect", []string{"connect", "-n", "5", "-hold", "100ms", "-first", "20"}, "srv_cpu_s_per_k_logins"},
		{"client", []string{"fanout", "-n", "10", "-senders", "3", "-window", "4", "-duration", "500ms", "-first", "40"}, "srv_cpu_s_per_M_deliveries"},
		{"client", []string{"privmsg", "-n", "10", "-window", "20", "-duration", "500ms", "-first", "60"}, "srv_cpu_s_per_M_deliveries"},
	} {
		t.Run(tc.args[0]+"-"+tc.join, func(t *testing.T) {
			r := runTool(t, append(append(append([]string{}, common...), "-join", tc.join), tc.args...)...)
			if v := r[tc.check]; v == "" || v == "NA" {
				t.Errorf("no %s: %v", tc.check, r)
			}
			if r["client_joins"] != r["n"] {
				t.Errorf("client_joins=%s, want one per connection (%s): InspIRCd does not auto-join", r["client_joins"], r["n"])
			}
		})
	}
}
