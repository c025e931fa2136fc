package web

import (
	"bytes"
	"context"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// conn presents a WebSocket as the byte stream the server reads and
// writes: each message read is one line (a newline is added), and what
// the server writes, CRLF-terminated lines, goes out one line per message
// without the CRLF. Text mode replaces invalid UTF-8, which a browser
// would otherwise refuse.
type conn struct {
	ws     *websocket.Conn
	text   bool
	remote net.Addr
	local  net.Addr

	pending []byte // the rest of the message being read

	mu            sync.Mutex
	writeDeadline time.Time

	closed    chan struct{}
	closeOnce sync.Once
	ping      *time.Timer
}

// NetConn presents a WebSocket as the line stream the server reads and
// writes (see conn); a client of the server over WebSocket, such as the
// load tool, can use it too.
func NetConn(ws *websocket.Conn, text bool, remote, local net.Addr) net.Conn {
	return newConn(ws, text, remote, local)
}

func newConn(ws *websocket.Conn, text bool, remote, local net.Addr) *conn {
	c := &conn{ws: ws, text: text, remote: remote, local: local, closed: make(chan struct{})}
	if c.local == nil {
		c.local = &net.TCPAddr{}
	}
	c.ping = time.AfterFunc(pingEvery(), c.keepAlive)
	return c
}

// keepAlive pings the browser, on a timer (no goroutine waits while the
// connection is idle); a connection that does not answer is closed.
func (c *conn) keepAlive() {
	select {
	case <-c.closed:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.ws.CloseNow()
		return
	}
	c.ping.Reset(pingEvery())
}

func (c *conn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		_, msg, err := c.ws.Read(context.Background())
		if err != nil {
			return 0, err
		}
		if c.text && !utf8.Valid(msg) {
			msg = bytes.ToValidUTF8(msg, []byte("\uFFFD"))
		}
		// One message is one line: a CR or LF inside it must not make two.
		msg = bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, msg)
		c.pending = append(msg, '\n')
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	deadline := c.writeDeadline
	c.mu.Unlock()
	ctx := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	typ := websocket.MessageBinary
	if c.text {
		typ = websocket.MessageText
	}
	written := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		msg := bytes.TrimRight(line, "\r\n")
		if c.text && !utf8.Valid(msg) {
			msg = bytes.ToValidUTF8(msg, []byte("\uFFFD"))
		}
		if len(msg) > 0 {
			if err := c.ws.Write(ctx, typ, msg); err != nil {
				return written, err
			}
		}
		written += len(line)
	}
	return written, nil
}

// Close ends the WebSocket with a close handshake (bounded by the
// library's own timeout).
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.ping.Stop()
	})
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return nil
}

// SetReadDeadline is not needed: the server times out idle connections
// itself, and a read is ended by Close.
func (c *conn) SetReadDeadline(time.Time) error { return nil }

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return nil
}
