package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	b := appendPayload([]byte("[2026-11-25 17:03:00 UTC] "), 12, 345, 6789012345)
	sid, seq, at, ok := parsePayload(b)
	if !ok || sid != 12 || seq != 345 || at != 6789012345 {
		t.Fatalf("parsePayload(%q) = %d %d %d %v", b, sid, seq, at, ok)
	}
	for _, bad := range []string{"", "~b ", "~b 1 2", "~b 1 x 3", "hello"} {
		if _, _, _, ok := parsePayload([]byte(bad)); ok {
			t.Errorf("parsePayload(%q) accepted", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := int64(1); i <= 1000; i++ {
		h.record(int(i), i*int64(time.Microsecond))
	}
	s := h.summary()
	near := func(got time.Duration, want time.Duration) bool {
		return got >= want*95/100 && got <= want*105/100
	}
	if s.n != 1000 || !near(s.p50, 500*time.Microsecond) || !near(s.p99, 990*time.Microsecond) || s.max != time.Millisecond {
		t.Fatalf("summary = %+v", s)
	}
	for v := int64(0); v < 1<<40; v = v*3/2 + 1 {
		i := histIndex(v)
		if mid := histValue(i); v >= 64 && (mid < v*9/10 || mid > v*11/10) {
			t.Fatalf("value %d -> bucket %d -> %d", v, i, mid)
		}
	}
}

func TestLastParam(t *testing.T) {
	for in, want := range map[string]string{
		"#lobby :hello there": "hello there",
		":only":               "only",
		"irc.localhost tok":   "tok",
		"user0 bob :bob is offline; your message will be delivered": "bob is offline; your message will be delivered",
	} {
		if got := string(lastParam([]byte(in))); got != want {
			t.Errorf("lastParam(%q) = %q, want %q", in, got, want)
		}
	}
}

// server is bin/ircd built from this module and run as a subprocess.
type server struct {
	addr string
	pid  int
}

func startServer(t *testing.T) server {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ircd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lobbychat/ircd/cmd/ircd").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var users strings.Builder
	for i := range 400 {
		fmt.Fprintf(&users, "user%d pw%d\n", i, i)
	}
	os.WriteFile(filepath.Join(dir, "users.txt"), []byte(users.String()), 0o600)
	base := "[server]\nlisten = [\"127.0.0.1:0\"]\n[store]\npath = \"state/ircd.db\"\n"
	cfg := filepath.Join(dir, "config.toml")
	// Flood and connection limits off where the server has them.
	var limits []string
	for _, kv := range []string{"flood_rate = 0", "max_per_ip = 0", "max_clients = 0"} {
		os.WriteFile(cfg, []byte(base+"[limits]\n"+kv+"\n"), 0o600)
		if exec.Command(bin, "check", "-config", cfg).Run() == nil {
			limits = append(limits, kv)
		}
	}
	os.WriteFile(cfg, []byte(base+"[limits]\n"+strings.Join(limits, "\n")+"\n"), 0o600)

	logPath := filepath.Join(dir, "ircd.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
	})
	rx := regexp.MustCompile(`msg=listening addr=(\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if m := rx.FindSubmatch(b); m != nil {
			return server{addr: string(m[1]), pid: cmd.Process.Pid}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parseResult reads an ircbench result line.
func parseResult(t *testing.T, line string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("field %q is not key=value in %q", f, line)
		}
		m[k] = v
	}
	return m
}

// Every scenario at a tiny size against the real server: the line parses,
// reports success and no loss, and has the server's CPU.
func TestScenarios(t *testing.T) {
	srv := startServer(t)
	common := []string{"-addr", srv.addr, "-pid", strconv.Itoa(srv.pid), "-timeout", "10s", "-drain", "3s"}
	cases := []struct {
		args  []string
		check []string // keys that must be present
	}{
		{[]string{"connect", "-n", "10", "-hold", "200ms", "-first", "0"}, []string{"bytes_per_conn", "peak_bytes_per_conn", "srv_cpu_s_per_k_logins", "welcome_p99_ms"}},
		{[]string{"storm", "-n", "10", "-hold", "100ms", "-first", "20"}, []string{"all_joined_s"}},
		{[]string{"hold", "-n", "10", "-duration", "300ms", "-first", "40"}, []string{"alive", "disconnects"}},
		{[]string{"fanout", "-n", "10", "-senders", "3", "-window", "4", "-duration", "500ms", "-first", "60"}, []string{"srv_cpu_s_per_M_deliveries", "lat_p99_ms", "lost", "reordered"}},
		{[]string{"fanout", "-n", "10", "-senders", "2", "-rate", "40", "-duration", "500ms", "-first", "80"}, []string{"lat_p99_ms"}},
		{[]string{"privmsg", "-n", "10", "-window", "20", "-duration", "500ms", "-first", "100"}, []string{"srv_cpu_s_per_M_deliveries", "lost", "srv_reads_per_delivery", "srv_writes_per_delivery"}},
		{[]string{"offline", "-msgs", "50", "-senders", "3", "-first", "120"}, []string{"replay_ms", "received"}},
		{[]string{"offline-store", "-senders", "5", "-recipients", "3", "-duration", "500ms", "-first", "140"}, []string{"stored_per_s", "ack_p99_ms"}},
	}
	for _, tc := range cases {
		name := tc.args[0] + strings.Join(tc.args[1:3], "")
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := realMain(append(append([]string{}, common...), tc.args...), &out, &errb)
			line := strings.TrimSpace(out.String())
			if code != 0 || strings.Count(line, "\n") != 0 {
				t.Fatalf("exit %d, want one line; stdout %q stderr %q", code, line, errb.String())
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
			if v := r["srv_cpu_s"]; v == "" || v == "NA" {
				t.Errorf("no server CPU: %s", line)
			}
			for _, k := range tc.check {
				if _, ok := r[k]; !ok {
					t.Errorf("no %s: %s", k, line)
				}
			}
		})
	}
}

// recConn records every Write as one element.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, append([]byte(nil), b...))
	c.mu.Unlock()
	return len(b), nil
}

// A closed-loop sender writes one line per write() unless -batch allows
// more; with -batch it puts every free window slot into one write.
func TestSenderLinesPerWrite(t *testing.T) {
	for _, tc := range []struct{ batch, wantWrites int }{{1, 10}, {32, 1}} {
		tr := newTraffic(1, 10, tc.batch, 1, 0)
		rc := &recConn{}
		c := &conn{nc: rc}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			tr.send(c, 0, "user1", stop, time.Now())
			close(done)
		}()
		// Nobody receives, so the sender stops when its 10 slots are used.
		deadline := time.Now().Add(5 * time.Second)
		for tr.sent[0].Load() < 10 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		<-done
		rc.mu.Lock()
		writes := rc.writes
		rc.mu.Unlock()
		lines := 0
		for _, w := range writes {
			lines += bytes.Count(w, []byte("\r\n"))
			if tc.batch == 1 && bytes.Count(w, []byte("\r\n")) != 1 {
				t.Errorf("batch 1: a write carried %q", w)
			}
		}
		if lines != 10 || len(writes) != tc.wantWrites {
			t.Errorf("batch %d: %d lines in %d writes, want 10 in %d", tc.batch, lines, len(writes), tc.wantWrites)
		}
	}
}
