package ircd

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lobbychat/ircd/accounts"
)

// An attacker with many connections must not outrun the lockout by
// sending every guess at the same moment: 60 simultaneous logins once had
// 59 wrong passwords checked before the lock began. Here 100 connections
// send PASS/NICK/USER for one bcrypt account at once, each with another
// wrong password. Exactly max_failures (3) of them may be checked; every
// other one is refused unchecked, and the lockout is counted once.
func TestParallelGuessesCannotOutrunLockout(t *testing.T) {
	ts := startServer(t) // max_failures 3, lockout 1m, no per-address throttle
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 8) // slow enough for the whole burst to arrive during the first checks
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	db, err := accounts.Parse(strings.NewReader("alice "+hash("alicepw")+"\nbob "+hash("bobpw")+"\n"), "users.txt")
	if err != nil {
		t.Fatal(err)
	}
	ts.acc.Swap(db)

	const n = 100
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = ts.dial(fmt.Sprintf("guess%d", i))
	}
	// Every login leaves in one write, all released together.
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.conn.SetWriteDeadline(time.Now().Add(waitTime))
			_, err := fmt.Fprintf(c.conn, "PASS guess-%d\r\nNICK alice\r\nUSER alice 0 * :a\r\n", i)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Each connection gets a 464 and an ERROR, then is closed.
	replies := make([]string, n)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(waitTime)
			for {
				line, err := c.readLine(deadline)
				if err != nil {
					return
				}
				replies[i] = line
			}
		}()
	}
	wg.Wait()
	var checked, locked int
	for i, e := range replies {
		switch {
		case e == "ERROR :Closing link: Unauthorized (bad account or password)":
			checked++ // distinct wrong passwords: each such reply is one evaluated guess
		case strings.HasPrefix(e, "ERROR :Closing link: Unauthorized (too many failed logins, retry in "):
			locked++
		default:
			t.Errorf("connection %d: last line %q, want a refusal", i, e)
		}
	}
	if checked != 3 || locked != n-3 {
		t.Errorf("%d wrong guesses checked and %d refused unchecked, want 3 and %d", checked, locked, n-3)
	}
	if got := ts.srv.Stats().Lockouts; got != 1 {
		t.Errorf("Stats().Lockouts = %d, want 1 (one lockout)", got)
	}

	// The lock holds against the right password, and for the full minute.
	c := ts.dial("alice")
	c.register("alice", "alicepw")
	if _, e := refusal(t, c); e != "ERROR :Closing link: Unauthorized (too many failed logins, retry in 60s)" {
		t.Fatalf("right password during the lock: %q", e)
	}
	ts.login("bob") // other accounts are untouched
	ts.clock.Advance(time.Minute)
	ts.login("alice")
	if got := ts.srv.Stats().Lockouts; got != 1 {
		t.Errorf("Stats().Lockouts = %d after the lock, want 1", got)
	}
}
