package ircd

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// A message sent while its recipient logs in arrives, live or stored, and
// never twice unless a replay went unacknowledged (the client left before
// answering its PING, so it gets those messages again, by design). Three
// A message sent while its recipient logs in arrives, live or stored, and
// never twice unless a replay went unacknowledged (the client left before
// answering its PING, so it gets those messages again, by design). Three
// senders send without pause while bob logs in and out twenty times.
func TestLoginRacesSendsExactlyOnce(t *testing.T) {
	ts := startServer(t, withConfig(func(c *Config) {
		if testing.Verbose() {
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}))
	const burst = 60 // messages each sender sends as each login starts
	const sessions = 25
	senders := []string{"alice", "carol", "dave"}
	sent := make([]int, len(senders))
	var wg sync.WaitGroup
	var clients []*testClient
	var gos []chan struct{}
	for i, name := range senders {
		c := ts.login(name)
		clients = append(clients, c)
		goCh := make(chan struct{})
		gos = append(gos, goCh)
		wg.Go(func() {
			for range goCh {
				for range burst {
					c.conn.SetWriteDeadline(time.Now().Add(waitTime))
					if _, err := fmt.Fprintf(c.conn, "PRIVMSG bob :m-%s-%d\r\n", name, sent[i]); err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					sent[i]++
				}
			}
		})
	}

	msgRe := regexp.MustCompile(`PRIVMSG bob :(?:\[[^]]*\] )?(m-\S+)$`) // stored ones start with their time
	pingRe := regexp.MustCompile(`PING :?(replay-\S+)$`)
	type delivery struct {
		session    int
		unanswered bool // the session ended with a replay PING it never answered
	}
	got := map[string][]delivery{}
	// session logs bob in, answers every replay PING it sees, and leaves
	// when the PING it sent after registering comes back.
	session := func(n int) {
		bob := ts.dial("bob")
		bob.register("bob", "bobpw")
		var mine []string
		unanswered, quit := false, false
		deadline := time.Now().Add(waitTime)
		for {
			line, err := bob.readLine(deadline)
			if err != nil {
				if !quit {
					t.Fatalf("session %d: %v; got %d lines, recent:\n%s", n, err, len(bob.log), bob.recent())
				}
				break
			}
			if m := msgRe.FindStringSubmatch(line); m != nil {
				mine = append(mine, m[1])
			}
			if m := pingRe.FindStringSubmatch(line); m != nil {
				if quit {
					unanswered = true
				} else {
					bob.send("PONG :%s", m[1])
				}
			}
			switch {
			case quit:
			case strings.Contains(line, " 366 bob "):
				// Registration, with its replay, is done once 366 is
				// out: this PING is answered after what is queued now.
				bob.send("PING end-%d", n)
			case strings.Contains(line, " PONG ") && strings.HasSuffix(line, fmt.Sprintf("end-%d", n)):
				bob.send("QUIT")
				quit = true
			}
		}
		for _, m := range mine {
			got[m] = append(got[m], delivery{n, unanswered})
		}
		ts.waitGone("bob")
	}
	for n := range sessions {
		for _, g := range gos {
			g <- struct{}{} // the burst races this login
		}
		session(n)
	}
	for _, g := range gos {
		close(g)
	}
	wg.Wait()
	for i, c := range clients {
		// Each stored message waits for its commit: allow for hundreds.
		for _, l := range c.syncWithin(30 * time.Second) {
			if strings.Contains(l, " 531 ") || strings.Contains(l, " 401 ") {
				t.Errorf("%s was refused: %q", senders[i], l)
			}
		}
	}
	session(sessions) // after the senders stopped: gets everything left

	live, total := 0, 0
	for i, name := range senders {
		for n := range sent[i] {
			id := fmt.Sprintf("m-%s-%d", name, n)
			ds := got[id]
			total++
			switch {
			case len(ds) == 0:
				t.Errorf("%s lost", id)
			case len(ds) > 1:
				excused := false
				for _, d := range ds[:len(ds)-1] {
					excused = excused || d.unanswered
				}
				if !excused {
					t.Errorf("%s delivered %d times, in sessions %v, each acknowledged", id, len(ds), ds)
				}
			}
			if len(ds) > 0 && ds[0].session < sessions {
				live++
			}
		}
	}
	if n, _ := ts.pending("bob"); n != 0 {
		t.Errorf("%d messages still stored after the last session acknowledged", n)
	}
	t.Logf("%d messages sent, %d reached one of the %d racing sessions", total, live, sessions)
}

// A sender's "mail waiting" during a login must not start a replay of its
// own: the login's replay reads the mailbox again when it is done.
// Otherwise that replay could outlast registration, and what the session
// held back would follow a QUIT (TestLoginRacesSendsExactlyOnce once saw
// messages lost and others twice this way, under load).
func TestMailWaitingDuringLoginFoldsIntoItsReplay(t *testing.T) {
	c := &client{}
	c.mail.holding = true
	c.mailWaiting()
	c.mail.mu.Lock()
	running, again := c.mail.running, c.mail.again
	c.mail.mu.Unlock()
	if running || !again {
		t.Fatalf("running %v, again %v: want the login's replay to go round once more", running, again)
	}
}
