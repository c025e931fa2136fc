package ircd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
)

// capability bits, read by other goroutines during fan-out.
const (
	capServerTime uint32 = 1 << iota
	capMessageTags
	capEchoMessage
	capMultiPrefix
	capAwayNotify
	capAccountTag
	capExtendedJoin
	capCapNotify
	capUserhostInNames
	capBatch
	capSASL
)

var capNames = []struct {
	name string
	bit  uint32
}{
	{"account-tag", capAccountTag},
	{"away-notify", capAwayNotify},
	{"batch", capBatch},
	{"cap-notify", capCapNotify},
	{"echo-message", capEchoMessage},
	{"extended-join", capExtendedJoin},
	{"message-tags", capMessageTags},
	{"multi-prefix", capMultiPrefix},
	{"sasl", capSASL},
	{"server-time", capServerTime},
	{"userhost-in-names", capUserhostInNames},
}

// client is one connection. Fields under "reader-owned" are touched only
// by the connection's own goroutine; the rest are set before the client
// is published in Server.users and read-only after, or atomic.
type client struct {
	srv  *Server
	nc   net.Conn
	id   uint64
	host string
	out  *sendQueue

	// Identity, fixed at registration.
	nick     string
	key      string // folded nick
	user     string
	realname string
	account  string // "" for guests
	prefix   string // nick!user@host

	caps    atomic.Uint32
	away    atomic.Pointer[string]
	silence atomic.Pointer[silenceList]
	quitMsg atomic.Pointer[string]
	signon  time.Time
	idle    atomic.Int64 // unix seconds of the last message sent

	// reader-owned
	registered   bool
	capBlocking  bool
	pass         *string
	pendingNick  string
	gotUser      bool
	sasl         saslState
	authFailed   string // closing ERROR text after a failed SASL attempt
	replayToken  string
	replayUpTo   uint64
	replayCount  int
	pingSent     bool
	deadline     time.Time         // the read deadline last set
	deadlineIdle bool              // ...and whether it was the idle (PING interval) one
	monitoring   map[string]string // folded -> as given

	quitOnce sync.Once
	quitCh   chan struct{} // closed by quit: wakes a reader held by flood control

	floodAt        time.Time // flood control's virtual clock (wall time)
	throttledSince time.Time // start of the current run of delayed lines
}

func (s *Server) newClient(nc net.Conn) *client {
	host := hostOf(nc.RemoteAddr())
	cfg := s.conf()
	s.mu.Lock()
	refusal := ""
	switch {
	case s.shutdown:
		refusal = "Server shutting down"
	case cfg.MaxClients > 0 && len(s.conns) >= cfg.MaxClients:
		refusal = "Server is full"
	case cfg.MaxPerIP > 0 && s.perIP[host] >= cfg.MaxPerIP:
		refusal = "Too many connections from your address"
	}
	if refusal != "" {
		s.mu.Unlock()
		s.stats.refused.Add(1)
		s.log.Info("connection refused", "addr", host, "reason", refusal)
		go func() {
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write(appendMessage(nil, "", "", "ERROR", "Closing link: "+refusal))
			nc.Close()
		}()
		return nil
	}
	s.nextID++
	c := &client{srv: s, nc: nc, id: s.nextID, host: host, quitCh: make(chan struct{})}
	c.out = newSendQueue(nc, cfg.SendQ, cfg.WriteTimeout, func() {
		s.stats.sendqDrops.Add(1)
		c.quit("SendQ exceeded", "SendQ exceeded")
	})
	s.conns[c] = struct{}{}
	s.perIP[host]++
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.connections.Add(1)
	s.log.Debug("connect", "conn", c.id, "addr", host)
	return c
}

func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return "unknown"
	}
	if strings.HasPrefix(host, ":") {
		host = "0" + host // a leading ':' would end the prefix early
	}
	return host
}

func (c *client) has(bit uint32) bool { return c.caps.Load()&bit != 0 }

// name is what replies address the client as: its nick or "*".
func (c *client) name() string {
	if c.nick != "" {
		return c.nick
	}
	return "*"
}

// send queues a message from prefix (the server if empty).
func (c *client) send(prefix, command string, params ...string) {
	if prefix == "" {
		prefix = c.srv.conf().ServerName
	}
	tags := ""
	if c.has(capServerTime) {
		tags = "time=" + formatTime(c.srv.now())
	}
	c.out.push(appendMessage(nil, tags, prefix, command, params...))
}

// reply sends a numeric addressed to the client.
func (c *client) reply(numeric string, params ...string) {
	c.send("", numeric, append([]string{c.name()}, params...)...)
}

func (c *client) notice(text string) { c.send("", "NOTICE", c.name(), text) }

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// quit ends the connection from any goroutine: the client is told why
// with ERROR, others see QUIT with reason.
func (c *client) quit(reason, errorText string) {
	c.quitWithError(reason, "Closing link: "+errorText)
}

// quitWithError is quit with the ERROR line's whole text.
func (c *client) quitWithError(reason, errorParam string) {
	c.quitOnce.Do(func() {
		c.quitMsg.Store(&reason)
		close(c.quitCh)
		c.out.closeAfter(appendMessage(nil, "", "", "ERROR", errorParam))
	})
}

// serve is the connection's reader: it reads lines and runs their
// commands in order, then cleans up.
func (c *client) serve() {
	s := c.srv
	defer s.wg.Done()
	defer c.cleanup()
	lr := &lineReader{r: c.nc}
	connected := time.Now() // deadlines are wall-clock, not the injectable clock
	for {
		c.setReadDeadline(connected)
		line, err := lr.readLine()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if !c.registered {
					c.quit("Registration timed out", "Registration timed out")
					return
				}
				if !c.pingSent {
					c.pingSent = true
					c.send("", "PING", s.conf().ServerName)
					continue
				}
				cfg := s.conf()
				c.quit(fmt.Sprintf("Ping timeout: %d seconds", int((cfg.PingInterval+cfg.PingTimeout).Seconds())), "Ping timeout")
				return
			}
			if errors.Is(err, errLineFlood) {
				c.quit("Input line too long", "Input line too long")
				return
			}
			c.quit("Connection closed", "Connection closed")
			return
		}
		c.pingSent = false
		if len(line) == 0 {
			continue
		}
		if !c.floodWait() {
			c.quit("Excess Flood", "Excess Flood")
			return
		}
		if tooLong(line) {
			c.reply(errInputTooLong, "Input line was too long")
			continue
		}
		c.handleLine(string(line))
		lr.shrink()
		if c.quitMsg.Load() != nil {
			return
		}
	}
}

// floodWait applies flood control before a line is handled: a client may
// send FloodBurst lines at once, then one line per 1/FloodRate seconds;
// lines beyond that are delayed (the reader sleeps, so TCP pushes back on
// the client only). A client still being slowed after FloodKill is
// flooding on purpose: floodWait returns false and it is disconnected.
func (c *client) floodWait() bool {
	cfg := c.srv.conf()
	if cfg.FloodRate <= 0 {
		return true
	}
	now := time.Now()
	cost := time.Duration(float64(time.Second) / cfg.FloodRate)
	if c.floodAt.Before(now) {
		c.floodAt = now
	}
	c.floodAt = c.floodAt.Add(cost)
	ahead := c.floodAt.Sub(now) - time.Duration(max(cfg.FloodBurst, 1))*cost
	if ahead <= 0 {
		c.throttledSince = time.Time{}
		return true
	}
	if c.throttledSince.IsZero() {
		c.throttledSince = now
	}
	if now.Sub(c.throttledSince) > cfg.FloodKill {
		return false
	}
	t := time.NewTimer(ahead)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.quitCh:
	}
	return true
}

func (c *client) setReadDeadline(connected time.Time) {
	cfg := c.srv.conf()
	var d time.Time
	switch {
	case !c.registered:
		d = connected.Add(cfg.RegTimeout)
	case c.pingSent:
		d = time.Now().Add(cfg.PingTimeout)
	default:
		d = time.Now().Add(cfg.PingInterval)
	}
	// Re-arming the timer on every line is measurable on a busy client; an
	// idle deadline that fires slightly early only sends a PING a little
	// sooner, so keep it while it is within 1/8 of the interval.
	idle := c.registered && !c.pingSent
	if idle && c.deadlineIdle && d.After(c.deadline) && d.Sub(c.deadline) < min(time.Second, cfg.PingInterval/8) {
		return
	}
	c.deadline, c.deadlineIdle = d, idle
	c.nc.SetReadDeadline(d)
}

func (c *client) handleLine(raw string) {
	msg, err := parseMessage(raw)
	if err != nil {
		return // tags or prefix with nothing after them: no command to answer
	}
	if c.registered {
		c.idle.Store(c.srv.now().Unix())
	}
	defer func() {
		if r := recover(); r != nil {
			c.srv.log.Error("panic in command", "command", msg.Command, "conn", c.id, "nick", c.nick,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.quit("Internal error", "internal error while handling "+msg.Command)
		}
	}()
	c.dispatch(msg, raw)
}

// cleanup runs once when the reader ends: the client leaves every shared
// structure, others are told, and its last-seen time is recorded.
func (c *client) cleanup() {
	s := c.srv
	if c.quitMsg.Load() == nil {
		c.quit("Connection closed", "Connection closed")
	}
	reason := *c.quitMsg.Load()
	if c.registered {
		lock := s.mailLock(c.key)
		lock.Lock()
		s.mu.Lock()
		// A session replaced by a new login is no longer in users; its
		// watchers must not hear that the account went offline.
		wasOnline := s.users[c.key] == c
		if wasOnline {
			delete(s.users, c.key)
			s.lastSeen[c.key] = s.now()
			if c.account != "" {
				s.seenDirty[c.key] = struct{}{} // persisted by the next flushLastSeen
			}
		}
		s.mu.Unlock()
		lock.Unlock()
		if s.channel.remove(c) {
			s.announceQuit(c, reason)
		}
		if wasOnline {
			s.notifyMonitors(c, false)
		}
		s.log.Info("disconnect", "nick", c.nick, "addr", c.host, "reason", reason)
	}
	s.unmonitorAll(c)
	s.mu.Lock()
	delete(s.conns, c)
	if s.perIP[c.host]--; s.perIP[c.host] <= 0 {
		delete(s.perIP, c.host)
	}
	s.mu.Unlock()
	// Wait for the final flush (bounded by the write timeout) so ERROR
	// reaches the peer before the socket closes.
	select {
	case <-c.out.done:
	case <-time.After(s.conf().WriteTimeout + time.Second):
		c.nc.Close()
	}
}

func (s *Server) announceQuit(c *client, reason string) {
	if s.quietMembership(s.channel.size() + 1) { // c has already left
		return
	}
	t := s.now()
	s.channel.broadcast(fanout{sender: c, build: func(f form) []byte {
		return appendMessage(nil, f.tagString(t, c, ""), c.prefix, "QUIT", "Quit: "+reason)
	}})
}

// identity of a registered client for the welcome and masks.
func (c *client) setIdentity(nick, user, account string) {
	c.nick = nick
	c.key = accounts.Fold(nick)
	c.user = user
	c.account = account
	c.prefix = nick + "!" + user + "@" + c.host
}

// parseMessage wraps irc.ParseMessage, which panics on some malformed
// input (e.g. "@ ": empty tags followed by nothing; found by fuzzing).
func parseMessage(raw string) (msg *irc.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed line: %v", r)
		}
	}()
	return irc.ParseMessage(raw)
}
