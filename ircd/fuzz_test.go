package ircd

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzLineReader: any byte stream yields bounded lines or errLineFlood,
// never a panic, and lines never contain '\n'.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("PING x\r\nPONG y\n"))
	f.Add([]byte("\r\n\n\r\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lr := &lineReader{r: bytes.NewReader(data)}
		for range len(data) + 2 {
			line, err := lr.readLine()
			if err == io.EOF || err == errLineFlood {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(line) > maxLineLen || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("bad line of %d bytes", len(line))
			}
			lr.shrink()
		}
	})
}

// stutterReader hands out data in chunks of varying size with "no data
// ready" between them, as a polled socket does.
type stutterReader struct {
	data  []byte
	sizes []byte // chunk sizes, used in turn
	ready bool   // the next Read returns data; else errWouldBlock
	i     int
}

func (r *stutterReader) Read(b []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.ready = !r.ready; !r.ready {
		return 0, errWouldBlock
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)]) + 1
		r.i++
	}
	n = copy(b, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

// FuzzLineReaderPolled: reading a stream that keeps running dry (the
// poller's path, which gives the buffer back whenever no partial line is
// pending) yields exactly the lines of reading it in one go.
func FuzzLineReaderPolled(f *testing.F) {
	f.Add([]byte("PING x\r\nPONG y\n"), []byte{3, 0, 7})
	f.Add([]byte(strings.Repeat("a", 700)+"\nb\n"), []byte{200})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		type result struct {
			line string
			err  error
		}
		read := func(lr *lineReader) (out []result) {
			for range 4*len(data) + 8 {
				line, err := lr.readLine()
				if err == errWouldBlock {
					lr.release()
					continue
				}
				out = append(out, result{string(line), err})
				if err != nil {
					return out
				}
				lr.shrink()
			}
			t.Fatal("reader did not finish")
			return nil
		}
		want := read(&lineReader{r: bytes.NewReader(data)})
		// Unpolled, and polled (a short read is taken as the socket
		// running dry, without asking it again).
		for _, polled := range []bool{false, true} {
			got := read(&lineReader{r: &stutterReader{data: data, sizes: sizes}, polled: polled})
			if len(got) != len(want) {
				t.Fatalf("%d results polled, %d in one go", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("result %d: polled %+v, in one go %+v", i, got[i], want[i])
				}
			}
		}
	})
}

// FuzzSession sends fuzzed lines over a real connection of a logged-in
// client, then checks the server still answers and another user is fine.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"PRIVMSG #lobby :hi\nWHOELSE\n",
		"SILENCE +bob\nSILENCE -bob\nSILENCE\n",
		"CAP REQ :server-time\nCAP LIST\nMONITOR + bob\nMONITOR S\n",
		"@+a=b TAGMSG bob\nAWAY :x\nAWAY\nPART #lobby\nJOIN #lobby\n",
		"MESSAGE bob hello\nBROADCAST :x\nBLOCK carol\nUNBLOCK carol\n",
		"AUTHENTICATE PLAIN\nAUTHENTICATE +\nNICK x\nUSER a b c d\n",
		"WHO *\nWHOIS bob\nWHOWAS carol\nISON a b\nUSERHOST a b\nMODE #lobby b\n",
		"\x00\xff\r\n:\n@\n@a\n PRIVMSG\n",
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f)
	bob := ts.login("bob")
	f.Fuzz(func(t *testing.T, data []byte) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := &testClient{t: t, name: "alice", conn: conn, r: bufio.NewReader(conn)}
		c.register("alice", "alicepw")
		c.expect(` 366 alice `)
		data = bytes.ReplaceAll(data, []byte("QUIT"), []byte("QUUX")) // stay connected
		data = bytes.ReplaceAll(data, []byte("LOGOUT"), []byte("LOGOFF"))
		c.sendRaw(append(data, '\n'))
		c.sendRaw([]byte("\r\n"))
		if lines := c.syncOrClosed(); lines == nil {
			return // the server may close on a newline-less flood; that is allowed
		}
		c.send("QUIT")
		c.expectClosed()
		iter := *ts // helpers report to this iteration's t, not to f
		iter.t = t
		iter.waitGone("alice")
		bob.t = t
		bob.sync()
	})
}

// syncOrClosed is sync, but returns nil if the server closed the connection.
func (c *testClient) syncOrClosed() []string {
	c.send("PING fuzz-sync")
	var lines []string
	deadline := time.Now().Add(waitTime)
	for {
		line, err := c.readLine(deadline)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("server stopped answering; recent:\n%s", c.recent())
			}
			return nil
		}
		if strings.HasSuffix(line, "PONG irc.test :fuzz-sync") {
			return append(lines, line)
		}
		lines = append(lines, line)
	}
}

// FuzzFastMessage: whatever line parseFastMessage takes apart, the general
// parser (irc.v4) reads the same: command, target and text as the only
// parameters, no tags, no prefix, one target, valid UTF-8.
func FuzzFastMessage(f *testing.F) {
	for _, s := range []string{"PRIVMSG bob :hi", "NOTICE #lobby :x y", "PRIVMSG bob  :hi", "PRIVMSG bob :hi\r",
		"PRIVMSG :bob :hi", "PRIVMSG a,b :hi", "PRIVMSG bob :", "PRIVMSG bob hi", "privmsg bob :hi", "PRIVMSG bob ::x",
		"@a=b PRIVMSG bob :hi", ":x PRIVMSG bob :hi", "PRIVMSG bob\t:hi", "PRIVMSG bob :\xff", "PRIVMSG b :x :y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		command, t0, t1, x0, ok := parseFastMessage([]byte(line))
		if !ok {
			return
		}
		target, text := line[t0:t1], line[x0:]
		m, err := parseMessage(line)
		if err != nil {
			t.Fatalf("%q: fast path took it, irc.v4 fails: %v", line, err)
		}
		if m.Command != command || len(m.Params) != 2 || m.Params[0] != target || m.Params[1] != text {
			t.Fatalf("%q: fast path %q %q %q, irc.v4 %q %q", line, command, target, text, m.Command, m.Params)
		}
		if len(m.Tags) != 0 || m.Prefix.Name != "" || m.Prefix.User != "" || m.Prefix.Host != "" {
			t.Fatalf("%q: irc.v4 finds tags or a prefix", line)
		}
		if !utf8.ValidString(line) || text == "" || strings.Contains(target, ",") {
			t.Fatalf("%q: fast path took a line it must leave", line)
		}
		var c client
		if targets, ok := c.targets(command, target, false); !ok || len(targets) != 1 || targets[0] != target {
			t.Fatalf("%q: targets %q", line, targets)
		}
	})
}
