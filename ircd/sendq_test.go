package ircd

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: the one a
// send queue writes to, and a line reader on the other.
func tcpPair(t *testing.T) (net.Conn, *bufio.Reader, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); peer.Close() })
	return conn, bufio.NewReader(peer), peer
}

func readLines(t *testing.T, r *bufio.Reader, peer net.Conn, n int) []string {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(waitTime))
	var got []string
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, strings.TrimRight(line, "\r\n"))
	}
	return got
}

// A deferred line stays queued, with no flusher running, until a line
// that is not deferred arrives, and then both go out in order.
func TestDeferredLineGoesOutWithNextLine(t *testing.T) {
	conn, r, peer := tcpPair(t)
	d := &deferredFlush{delay: time.Hour} // the timer never fires here
	q := newSendQueue(conn, 1<<20, time.Minute, nil)
	q.deferred = d
	q.pushDeferred([]byte("JOIN a\r\n"))
	q.pushDeferred([]byte("JOIN b\r\n"))
	if n, busy := q.backlog(); n != 16 || busy {
		t.Fatalf("after two deferred lines: %d bytes queued, flusher running %v; want 16, false", n, busy)
	}
	d.mu.Lock()
	listed := len(d.queues)
	d.mu.Unlock()
	if listed != 1 {
		t.Fatalf("queue listed %d times for its timer, want once", listed)
	}
	q.push([]byte("PRIVMSG #c :hi\r\n"))
	got := readLines(t, r, peer, 3)
	if want := []string{"JOIN a", "JOIN b", "PRIVMSG #c :hi"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// With nothing else to carry them, deferred lines go out when the timer
// fires; the first deferred line after that arms it again.
func TestDeferredLinesFlushedByTimer(t *testing.T) {
	conn, r, peer := tcpPair(t)
	d := &deferredFlush{delay: time.Millisecond}
	q := newSendQueue(conn, 1<<20, time.Minute, nil)
	q.deferred = d
	q.pushDeferred([]byte("QUIT :a\r\n"))
	if got := readLines(t, r, peer, 1); got[0] != "QUIT :a" {
		t.Fatalf("got %q", got)
	}
	q.pushDeferred([]byte("QUIT :b\r\n"))
	if got := readLines(t, r, peer, 1); got[0] != "QUIT :b" {
		t.Fatalf("got %q", got)
	}
}

// The period between flushes of deferred lines grows with how many queues
// the last one wrote (a storm's announcements into a big room), and falls
// back once the room is quiet.
func TestDeferredPeriodFollowsLoad(t *testing.T) {
	d := &deferredFlush{delay: 20 * time.Millisecond}
	fire := func(n int) time.Duration {
		for range n {
			d.queues = append(d.queues, &sendQueue{})
		}
		d.fire()
		return max(d.period, d.delay)
	}
	for _, c := range []struct {
		listed int
		want   time.Duration
	}{{10, 20 * time.Millisecond}, {10_000, 200 * time.Millisecond}, {100_000, maxDeferredPeriod}, {500, 20 * time.Millisecond}} {
		if got := fire(c.listed); got != c.want {
			t.Errorf("after a flush of %d queues the period is %v, want %v", c.listed, got, c.want)
		}
	}
}

// A JOIN announcement may wait for company, but never behind a line the
// joiner sends after it: bob sees alice join before her first message.
func TestJoinAnnouncedBeforeFirstMessage(t *testing.T) {
	ts := startServer(t)
	bob := ts.login("bob")
	for range 20 {
		alice := ts.login("alice")
		alice.send("PRIVMSG #lobby :first")
		line := bob.expect(`^:alice!\S+ (JOIN|PRIVMSG)`)
		if !strings.Contains(line, " JOIN ") {
			t.Fatalf("bob got %q before alice's JOIN", line)
		}
		bob.expect(`^:alice!\S+ PRIVMSG #lobby :first$`)
		alice.send("QUIT")
		alice.expectClosed()
		bob.expect(`^:alice!\S+ QUIT `)
	}
}

// Lines copied into a queue's own buffers (pushCopy) arrive intact and in
// order although the caller reuses one scratch buffer for all of them,
// through buffer refills, long lines, a full socket and both writers: a
// flusher goroutine, and an event loop's write batch.
func TestCopiedLinesSurviveScratchReuse(t *testing.T) {
	for _, batched := range []bool{false, true} {
		name := "flusher"
		if batched {
			name = "batch"
		}
		t.Run(name, func(t *testing.T) {
			conn, r, peer := tcpPair(t)
			q := newSendQueue(conn, 64<<20, time.Minute, nil)
			var raw syscall.RawConn
			var b *writeBatch
			if batched {
				var err error
				if raw, err = conn.(syscall.Conn).SyscallConn(); err != nil {
					t.Fatal(err)
				}
				b = writeBatches.Get().(*writeBatch)
				defer writeBatches.Put(b)
			}
			const n = 20000 // megabytes: more than the socket holds
			want := make([]string, n)
			var scratch []byte
			for i := range n {
				want[i] = fmt.Sprintf("PRIVMSG bob :%d %s", i, strings.Repeat("x", i%7*i%300+i%1000/999*2000))
				scratch = append(scratch[:0], want[i]...)
				scratch = append(scratch, "\r\n"...)
				if !q.enqueue(scratch, false, b, raw, true) {
					t.Fatalf("line %d refused", i)
				}
				clear(scratch) // what a reused buffer would hold next
				if b != nil && i%50 == 49 {
					b.flush()
				}
			}
			if b != nil {
				b.flush()
			}
			peer.SetReadDeadline(time.Now().Add(waitTime))
			for i := range n {
				got, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("line %d: %v", i, err)
				}
				if got = strings.TrimRight(got, "\r\n"); got != want[i] {
					t.Fatalf("line %d: got %.60q, want %.60q", i, got, want[i])
				}
			}
		})
	}
}
