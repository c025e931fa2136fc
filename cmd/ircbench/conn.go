package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lobbychat/ircd/web"
)

// handler receives the events a scenario cares about. Methods run on the
// connection's reader goroutine and must not block.
type handler interface {
	// message is a PRIVMSG or NOTICE; text is its last parameter.
	message(c *conn, text []byte, at int64)
	// reply is a numeric such as 301, 401 or 531.
	reply(c *conn, numeric string, at int64)
	// pong is a PONG from the server; token is its last parameter.
	pong(c *conn, token []byte, at int64)
}

type nopHandler struct{}

func (nopHandler) message(*conn, []byte, int64) {}
func (nopHandler) reply(*conn, string, int64)   {}
func (nopHandler) pong(*conn, []byte, int64)    {}

// Login modes (-auth): send our PASS, or only NICK and USER (servers
// without accounts, such as InspIRCd with its default configuration).
const (
	authPass = "pass"
	authNone = "none"
)

// Join modes (-join): how a connection gets into the channel.
const (
	joinServer = "server" // the server joins it at login (ours); wait for its 366
	joinClient = "client" // send JOIN at the end of the MOTD, as a client's autojoin does
	joinDetect = "detect" // at the end of the MOTD send a PING; JOIN only if its PONG comes before any 366
	joinNone   = "none"   // logged in at the end of the MOTD; join nothing (a server's cost without the channel)
)

// joinCheck is the PING token of -join detect.
var joinCheck = []byte("ircbench-joincheck")

// client is what every connection shares: where to connect, which
// accounts to use, and the counters of connections that ended.
type client struct {
	addrs     []string // connection idx goes to addrs[idx % len]
	userPfx   string
	passPfx   string
	first     int // account index offset
	timeout   time.Duration
	readBuf   int
	auth      string // authPass or authNone
	join      string // joinServer, joinClient or joinDetect
	channel   string
	joinsSent atomic.Int64 // JOINs the tool sent itself (-join client/detect)
	dropped   atomic.Int64 // logged-in connections that ended before the tool closed them
	errMu     sync.Mutex
	firstErr  string // first unexpected disconnect or refusal
}

func (cl *client) nick(i int) string { return cl.userPfx + strconv.Itoa(cl.first+i) }

func (cl *client) noteErr(s string) {
	cl.errMu.Lock()
	if cl.firstErr == "" {
		cl.firstErr = s
	}
	cl.errMu.Unlock()
}

// conn is one logged-in (or logging-in) connection with its own reader
// goroutine.
type conn struct {
	cl   *client
	idx  int
	nick string
	nc   net.Conn
	h    handler

	dialAt, welcomeAt, joinedAt int64 // written by the reader before closing welcomed / joined

	welcomed chan struct{}
	joined   chan struct{}
	done     chan struct{} // reader ended

	quitting atomic.Bool // the tool is closing it: not a drop

	// reader-owned
	gotWelcome, gotJoined bool
	sentEndJoin           bool // acted on the end of the MOTD (-join client/detect)
	errText               string
}

// sendJoin joins the channel from the client side.
func (c *conn) sendJoin() {
	c.cl.joinsSent.Add(1)
	c.write([]byte("JOIN " + c.cl.channel + "\r\n"))
}

// login dials and logs in account idx, and waits until it is in the
// channel (366; see -join for who sends the JOIN). The reader keeps
// running afterwards and feeds h.
// dial connects over TCP, or over WebSocket for a ws:// address (the
// web listener's /irc), one IRC line per message as a browser sends.
func (cl *client) dial(addr string) (net.Conn, error) {
	if !strings.HasPrefix(addr, "ws://") {
		return net.DialTimeout("tcp", addr, cl.timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cl.timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, addr, &websocket.DialOptions{Subprotocols: []string{"text.ircv3.net"}})
	if err != nil {
		return nil, err
	}
	return web.NetConn(ws, true, &net.TCPAddr{}, &net.TCPAddr{}), nil
}

func (cl *client) login(idx int, h handler) (*conn, error) {
	return cl.loginWith(idx, h, "")
}

// loginWith is login with extra lines (e.g. CAP) sent first.
func (cl *client) loginWith(idx int, h handler, pre string) (*conn, error) {
	c := &conn{cl: cl, idx: idx, nick: cl.nick(idx), h: h,
		welcomed: make(chan struct{}), joined: make(chan struct{}), done: make(chan struct{})}
	c.dialAt = now()
	nc, err := cl.dial(cl.addrs[idx%len(cl.addrs)])
	if err != nil {
		return nil, err
	}
	c.nc = nc
	msg := pre
	if cl.auth != authNone {
		msg += "PASS " + cl.passPfx + strconv.Itoa(cl.first+idx) + "\r\n"
	}
	msg += "NICK " + c.nick + "\r\nUSER " + c.nick + " 0 * :" + c.nick + "\r\n"
	nc.SetWriteDeadline(time.Now().Add(cl.timeout))
	if _, err := nc.Write([]byte(msg)); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetWriteDeadline(time.Time{})
	go c.readLoop()
	t := time.NewTimer(cl.timeout)
	defer t.Stop()
	select {
	case <-c.joined:
		return c, nil
	case <-c.done:
		if c.errText != "" {
			return nil, fmt.Errorf("%s: %s", c.nick, c.errText)
		}
		return nil, fmt.Errorf("%s: connection closed before joining", c.nick)
	case <-t.C:
		nc.Close()
		<-c.done
		if c.errText != "" {
			return nil, fmt.Errorf("%s: no welcome and join within %v (%s)", c.nick, cl.timeout, c.errText)
		}
		return nil, fmt.Errorf("%s: no welcome and join within %v", c.nick, cl.timeout)
	}
}

// write sends b; net.Conn serialises concurrent Writes, so the reader's
// PONGs and a sender's lines never interleave mid-line.
func (c *conn) write(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) close() {
	c.quitting.Store(true)
	c.nc.Close()
}

func (c *conn) readLoop() {
	defer close(c.done)
	br := bufio.NewReaderSize(c.nc, c.cl.readBuf)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any IRC line: skip it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
		}
		if err != nil {
			if c.gotJoined && !c.quitting.Load() {
				c.cl.dropped.Add(1)
				why := c.errText
				if why == "" {
					why = err.Error()
				}
				c.cl.noteErr(c.nick + " disconnected: " + why)
			}
			return
		}
		c.handle(line)
	}
}

// handle dispatches one server line. It avoids allocating: the hot case
// is a relayed PRIVMSG.
func (c *conn) handle(line []byte) {
	n := len(line)
	for n > 0 && (line[n-1] == '\n' || line[n-1] == '\r') {
		n--
	}
	line = line[:n]
	if len(line) > 0 && line[0] == '@' { // tags
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return
		}
		line = line[i+1:]
	}
	if len(line) > 0 && line[0] == ':' { // prefix
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return
		}
		line = line[i+1:]
	}
	cmd, rest := line, []byte(nil)
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		cmd, rest = line[:i], line[i+1:]
	}
	switch string(cmd) {
	case "PRIVMSG", "NOTICE":
		c.h.message(c, lastParam(rest), now())
	case "PING":
		out := make([]byte, 0, len(rest)+7)
		out = append(append(append(out, "PONG "...), rest...), '\r', '\n')
		c.write(out)
	case "PONG":
		tok := lastParam(rest)
		if !c.gotJoined && c.cl.join == joinDetect && bytes.Equal(tok, joinCheck) {
			// Everything the server queued at registration came before
			// this PONG, and no 366 among it: it does not auto-join.
			c.sendJoin()
			return
		}
		c.h.pong(c, tok, now())
	case "376", "422": // end of MOTD, or no MOTD: the welcome burst is over
		if c.gotJoined || c.sentEndJoin {
			return
		}
		c.sentEndJoin = true
		switch c.cl.join {
		case joinNone:
			c.gotJoined = true
			c.joinedAt = now()
			close(c.joined)
		case joinClient:
			c.sendJoin()
		case joinDetect:
			c.write(append(append([]byte("PING :"), joinCheck...), '\r', '\n'))
		}
	case "001":
		if !c.gotWelcome {
			c.gotWelcome = true
			c.welcomeAt = now()
			close(c.welcomed)
		}
	case "366":
		if !c.gotJoined {
			c.gotJoined = true
			c.joinedAt = now()
			close(c.joined)
		}
	case "301", "401", "404", "531":
		c.h.reply(c, string(cmd), now())
	case "ERROR", "464", "433", "432", "403", "405", "451", "471", "473", "474", "475":
		c.errText = string(cmd) + " " + string(lastParam(rest))
	}
}

// lastParam returns an IRC line's last parameter (after " :" if any).
func lastParam(rest []byte) []byte {
	if len(rest) > 0 && rest[0] == ':' {
		return rest[1:]
	}
	if i := bytes.Index(rest, []byte(" :")); i >= 0 {
		return rest[i+2:]
	}
	if i := bytes.LastIndexByte(rest, ' '); i >= 0 {
		return rest[i+1:]
	}
	return rest
}

// Benchmark messages carry "~b <sender> <seq> <sent-ns>" in their text
// (stored offline messages get a time prefix in front of it).
var marker = []byte("~b ")

// appendPayload appends the text of message seq from sender sid.
func appendPayload(dst []byte, sid int, seq int64, at int64) []byte {
	dst = append(dst, marker...)
	dst = strconv.AppendInt(dst, int64(sid), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, at, 10)
	return dst
}

// parsePayload reads the fields appendPayload wrote.
func parsePayload(text []byte) (sid int, seq, at int64, ok bool) {
	i := bytes.Index(text, marker)
	if i < 0 {
		return 0, 0, 0, false
	}
	p := text[i+len(marker):]
	var v [3]int64
	for k := range v {
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			v[k] = v[k]*10 + int64(p[j]-'0')
			j++
		}
		if j == 0 {
			return 0, 0, 0, false
		}
		if k < 2 {
			if j >= len(p) || p[j] != ' ' {
				return 0, 0, 0, false
			}
			j++
		}
		p = p[j:]
	}
	return int(v[0]), v[1], v[2], true
}

// loginAll logs in accounts from..from+n-1 with at most inflight logins
// under way, calling h(i) for connection i's handler (i from 0). It returns the connections
// that made it (nil where a login failed), the number of failures and the
// first error.
func (cl *client) loginAll(from, n, inflight int, h func(i int) handler) ([]*conn, int, error) {
	conns := make([]*conn, n)
	sem := make(chan struct{}, max(inflight, 1))
	var wg sync.WaitGroup
	var failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := cl.login(from+i, h(i))
			if err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	return conns, int(failed.Load()), firstErr
}

// unblockWriters gives senders' pending writes a deadline, so a sender
// stuck on a server that stopped reading returns instead of hanging.
func unblockWriters(conns []*conn) {
	for _, c := range conns {
		if c != nil {
			c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		}
	}
}

// closeAll ends every connection without counting it as a drop.
func (cl *client) closeAll(conns []*conn) {
	for _, c := range conns {
		if c != nil {
			c.close()
		}
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for _, c := range conns {
		if c != nil {
			select {
			case <-c.done:
			case <-deadline.C:
				return
			}
		}
	}
}
