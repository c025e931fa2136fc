package ircd

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
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
