package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// While a sender stores a steady stream of offline messages, the server
// is SIGKILLed and restarted at random moments. Every message the sender
// saw confirmed (301) must reach the recipient, in order, and nothing may
// come again once the recipient has acknowledged it.
func TestCrashesLoseNoConfirmedMessage(t *testing.T) {
	d := newDaemon(t, "[limits]\nflood_rate = 0")
	// One sender stores hundreds of messages here: no per-sender share.
	cfg := "[server]\nlisten = [\"127.0.0.1:0\"]\n[store]\npath = \"state/ircd.db\"\nmailbox_per_sender = 0\n[limits]\nflood_rate = 0\n"
	if err := os.WriteFile(filepath.Join(d.dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	const restarts = 5
	var confirmed []int // sequence numbers the sender saw a 301 for
	next := 0
	var alice *lineConn
	for round := range restarts + 1 {
		alice = d.login("alice")
		stop := time.After(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		if round == restarts {
			stop = time.After(200 * time.Millisecond) // the last round ends cleanly
		}
		confirmed = append(confirmed, sendUntil(t, alice, &next, stop)...)
		if round < restarts {
			// Kill while messages are in flight: the sender's window is
			// still open when the process dies.
			alice.c.Write([]byte(fmt.Sprintf("PRIVMSG bob :m%d\r\nPRIVMSG bob :m%d\r\n", next, next+1)))
			next += 2
			d.signal(syscall.SIGKILL)
			d.start()
		}
	}
	if len(confirmed) < 20 {
		t.Fatalf("only %d messages confirmed; the test did not exercise much", len(confirmed))
	}
	// The last round's messages in flight are handled before bob logs in,
	// so all of them are in his first replay (those that reach his login
	// are delivered after it, and this test acknowledges only the first).
	fmt.Fprintf(alice.c, "PING :drained\r\n")
	alice.expect(`PONG .*drained$`)

	bob := d.login("bob")
	got := readReplay(t, bob)
	seen := map[int]bool{}
	last := -1
	for _, n := range got {
		if n <= last {
			t.Fatalf("out of order or repeated: m%d after m%d", n, last)
		}
		last = n
		seen[n] = true
	}
	for _, n := range confirmed {
		if !seen[n] {
			t.Fatalf("confirmed message m%d lost (%d confirmed, %d delivered)", n, len(confirmed), len(got))
		}
	}
	t.Logf("%d restarts, %d messages confirmed, %d delivered (the extra were in flight at a kill)", restarts, len(confirmed), len(got))

	// Acknowledged, then killed at once: nothing comes again.
	d.signal(syscall.SIGKILL)
	d.start()
	again := d.login("bob")
	fmt.Fprintf(again.c, "PING :after\r\n")
	line := again.expect(`PONG|PRIVMSG`)
	if strings.Contains(line, "PRIVMSG") {
		t.Fatalf("acknowledged message delivered again: %q", line)
	}
}

// sendUntil sends numbered messages to bob with a window of 8 in flight
// and returns the numbers confirmed with 301 before stop (or the kill).
func sendUntil(t *testing.T, alice *lineConn, next *int, stop <-chan time.Time) []int {
	t.Helper()
	var confirmed, inflight []int
	send := func() {
		fmt.Fprintf(alice.c, "PRIVMSG bob :m%d\r\n", *next)
		inflight = append(inflight, *next)
		*next++
	}
	for range 8 {
		send()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-stop:
			return confirmed
		default:
		}
		alice.c.SetReadDeadline(time.Now().Add(time.Until(deadline)))
		line, err := alice.r.ReadString('\n')
		if err != nil {
			t.Fatalf("sender: %v", err)
		}
		if strings.Contains(line, " 301 alice bob ") {
			// Commands run in order, so the k-th 301 confirms the k-th message.
			confirmed = append(confirmed, inflight[0])
			inflight = inflight[1:]
			send()
		}
	}
}

var replayed = regexp.MustCompile(`PRIVMSG bob :\[[^]]*\] m(\d+)$`)

// readReplay reads bob's replay up to the PING, acknowledges it and
// returns the message numbers in arrival order.
func readReplay(t *testing.T, bob *lineConn) []int {
	t.Helper()
	var got []int
	bob.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := bob.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading replay: %v after %d messages", err, len(got))
		}
		line = strings.TrimRight(line, "\r\n")
		if m := replayed.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			got = append(got, n)
			continue
		}
		if tok, ok := strings.CutPrefix(line, ":"); ok && strings.Contains(tok, " PING ") {
			fmt.Fprintf(bob.c, "PONG %s\r\n", line[strings.Index(line, "PING ")+5:])
			fmt.Fprintf(bob.c, "PING :acked\r\n")
			bob.expect(`PONG .*acked$`) // the ack (and its fsync) is done
			return got
		}
	}
}
