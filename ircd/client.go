package ircd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
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
	capChatHistory
)

var capNames = []struct {
	name string
	bit  uint32
}{
	{"account-tag", capAccountTag},
	{"away-notify", capAwayNotify},
	{"batch", capBatch},
	{"cap-notify", capCapNotify},
	{"draft/chathistory", capChatHistory},
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

	// Identity, fixed before the session is published.
	nick     string
	key      string // folded nick
	user     string
	realname string
	account  string // "" for guests
	prefix   string // nick!user@host
	session  string // unique id of this session (state.UserInfo.Session)

	caps    atomic.Uint32
	away    atomic.Pointer[string]
	silence atomic.Pointer[silenceList]
	quitMsg atomic.Pointer[string]
	signon  time.Time
	idle    atomic.Int64 // unix seconds of the last message sent
	mail    mailState    // stored messages replayed to the session
	parted  atomic.Bool  // left the room (PART) and not back

	// reader-owned
	registered bool
	reg        *registering      // what logging in gathers; nil once registered
	monitoring map[string]string // folded -> as given
	lr         lineReader
	batch      *writeBatch // while a pump handles a run of lines: the queues it filled
	held       []byte      // a line an event loop read and left to a pump goroutine

	// Timeouts, checked by Server.timeoutLoop (the server's clock, unix nanos).
	connected   int64
	regDone     atomic.Bool  // registered
	handshaking atomic.Bool  // a TLS handshake is under way (its own deadline bounds it)
	lastRead    atomic.Int64 // when the last line arrived
	pingAt      atomic.Int64 // when a PING went unanswered; 0 = none

	quitOnce sync.Once
	quitCh   chan struct{} // closed by quit: wakes a reader held by flood control

	floodAt        time.Time // flood control's virtual clock (wall time)
	throttledSince time.Time // start of the current run of delayed lines

	// Set when the connection is watched by the server's poller instead
	// of having a reader goroutine (see poller_linux.go).
	poll      *poller
	loop      *evLoop // the event loop whose set holds the socket
	rc        syscall.RawConn
	fd        int32
	gen       uint32
	pumpState atomic.Int32 // pumpIdle, pumpRunning or pumpAgain
}

// newClient admits a connection and starts reading it: from the poller
// if it can watch the socket, else from a goroutine of its own.
func (s *Server) newClient(nc net.Conn) {
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
		return
	}
	s.nextID++
	c := &client{srv: s, nc: nc, id: s.nextID, host: host, quitCh: make(chan struct{}), connected: s.now().UnixNano(), reg: new(registering)}
	c.lr.r = nc
	c.out = newSendQueue(nc, cfg.SendQ, cfg.WriteTimeout, func() {
		s.stats.sendqDrops.Add(1)
		c.quit("SendQ exceeded", "SendQ exceeded")
	})
	c.out.deferred = &s.deferred
	s.conns[c] = struct{}{}
	s.perIP[host]++
	s.wg.Add(1)
	// Attached before anyone else can see c (Shutdown walks conns), so
	// its quit always knows whether to kick a pump.
	polled := s.poller != nil && s.poller.attach(c, nc)
	s.mu.Unlock()
	s.stats.connections.Add(1)
	s.log.Debug("connect", "conn", c.id, "addr", host, "polled", polled)
	if !polled {
		go c.serve()
	}
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
	if c.handshaking.Load() {
		c.nc.Close() // nothing can be said before the handshake; end it now
	}
	if c.poll != nil {
		c.kick() // an idle pump must run to clean up
	}
}

// serve is the reader goroutine of a connection the poller does not
// watch (TLS, or no epoll): it reads lines and runs their commands in
// order, then cleans up.
func (c *client) serve() {
	defer c.srv.wg.Done()
	defer c.cleanup()
	if !c.handshake() {
		return
	}
	for c.take(c.lr.readLine()) {
	}
}

// handshake completes a TLS connection's handshake, which must finish
// within the registration timeout like the rest of logging in: without a
// deadline a peer that sends nothing (or half a record) holds the
// connection and its goroutine forever.
func (c *client) handshake() bool {
	hs, ok := c.nc.(interface {
		HandshakeContext(context.Context) error
	})
	if !ok {
		return true
	}
	deadline := time.Now().Add(c.srv.conf().RegTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c.handshaking.Store(true)
	c.nc.SetDeadline(deadline)
	err := hs.HandshakeContext(ctx)
	c.handshaking.Store(false)
	c.nc.SetDeadline(time.Time{})
	if err != nil {
		c.srv.log.Debug("TLS handshake failed", "conn", c.id, "addr", c.host, "err", err)
		c.quit("TLS handshake failed", "TLS handshake failed")
		c.nc.Close()
		return false
	}
	return true
}

// yieldBatch is the size of a write batch (queues) from which a pump
// yields before writing it.
const yieldBatch = 32

// clockEvery is how many lines of one pump run share a clock reading.
const clockEvery = 8

const (
	pumpIdle    int32 = iota // waiting in the poller
	pumpRunning              // a pump goroutine is reading
	pumpAgain                // ...and was kicked meanwhile: read once more
)

// kick is called when c's socket may have something to read, or c has
// quit. It starts a pump goroutine unless a pump is running, which then
// loops once more; so at most one goroutine ever reads c's socket.
func (c *client) kick() {
	if c.claim() {
		c.poll.run(c)
	}
}

// claim sets c's pump running if it was idle and reports whether it did:
// then the caller pumps c. If a pump is running already, it is told to
// read once more.
func (c *client) claim() bool {
	for {
		switch c.pumpState.Load() {
		case pumpIdle:
			if c.pumpState.CompareAndSwap(pumpIdle, pumpRunning) {
				return true
			}
		case pumpRunning:
			if c.pumpState.CompareAndSwap(pumpRunning, pumpAgain) {
				return false
			}
		default:
			return false
		}
	}
}

// pump handles everything readable on a polled connection, then goes
// back to idle; when the connection is over it cleans up and stays
// "running" for good, so no pump starts again.
func (c *client) pump() {
	for {
		if !c.drain() {
			c.cleanup()
			c.srv.wg.Done()
			return
		}
		if c.stopPump() {
			return
		}
	}
}

// stopPump ends a pump run: it reports true if c went back to idle,
// false if c was kicked meanwhile (then the pump reads once more).
func (c *client) stopPump() bool {
	if c.pumpState.CompareAndSwap(pumpRunning, pumpIdle) {
		return true
	}
	c.pumpState.Store(pumpRunning)
	return false
}

// loopPump is pump on an event loop (c claimed by it): it handles what c
// sent into the loop's batch b, as long as no line may wait. A
// connection not logged in, a line that may wait, or the end of the
// connection goes to a pump goroutine. more reports that c has lines
// left after its share of the pass (the loop visits it again); handled
// counts the lines handled.
func (c *client) loopPump(b *writeBatch) (more bool, handled int) {
	if !c.registered {
		c.poll.run(c)
		return false, 0
	}
	for {
		end, n := c.drainOnLoop(b)
		handled += n
		switch end {
		case drainDry:
			if c.stopPump() {
				return false, handled
			}
		case drainBudget:
			return true, handled
		default: // drainOver, drainHandoff
			c.poll.run(c)
			return false, handled
		}
	}
}

// drain reads and handles lines until the socket has no more; it reports
// false when the connection is over. A line an event loop left (held)
// comes first.
func (c *client) drain() bool {
	b := writeBatches.Get().(*writeBatch)
	c.batch = b
	defer func() {
		c.batch = nil
		if len(b.queues) >= yieldBatch {
			// A fan-out: let other pumps add their lines to these
			// queues first (they are this batch's to write), so each
			// member gets one write for several senders' lines.
			runtime.Gosched()
		}
		b.flush()
		writeBatches.Put(b)
	}()
	if line := c.held; line != nil {
		c.held = nil
		if c.quitMsg.Load() != nil || !c.take(line, nil) {
			return false
		}
	}
	n := 0
	var now int64
	for c.quitMsg.Load() == nil {
		line, err := c.lr.readLine()
		if errors.Is(err, errWouldBlock) {
			c.lr.release() // an idle client holds no read buffer
			return true
		}
		// Lines that arrived together share a clock reading, taken
		// every few lines (every line under flood control, which may
		// hold a line back).
		if n%clockEvery == 0 || c.srv.conf().FloodRate > 0 {
			now = c.srv.now().UnixNano()
		}
		if !c.takeAt(line, err, now) {
			return false
		}
		if n++; n == maxBatchLines {
			b.flush()
			n = 0
		}
	}
	return false
}

// loopLines is how many lines a loop handles from one connection before
// it looks at the others (the rest are read on its next pass), so that
// one busy sender cannot hold up everyone else on its loop.
const loopLines = 128

type drainEnd int

const (
	drainDry     drainEnd = iota // the socket has nothing more for now
	drainOver                    // the connection is over
	drainHandoff                 // a line that may wait is in c.held
	drainBudget                  // loopLines handled; there may be more
)

// drainOnLoop is drain on an event loop, into the loop's batch b (which
// the loop writes): it stops at a line that may wait, which it keeps in
// c.held for a pump goroutine, and after loopLines lines.
func (c *client) drainOnLoop(b *writeBatch) (end drainEnd, n int) {
	c.batch = b
	defer func() { c.batch = nil }()
	flood := c.srv.conf().FloodRate > 0
	var now int64
	for ; c.quitMsg.Load() == nil; n++ {
		if n == loopLines {
			return drainBudget, n
		}
		line, err := c.lr.readLine()
		if errors.Is(err, errWouldBlock) {
			c.lr.release()
			return drainDry, n
		}
		if n%clockEvery == 0 || flood {
			now = c.srv.now().UnixNano()
		}
		if err != nil {
			c.takeAt(nil, err, now) // ends the connection; the pump cleans up
			return drainOver, n
		}
		if !c.handle(line, now, true) {
			c.held = append([]byte(nil), line...)
			return drainHandoff, n
		}
	}
	return drainOver, n
}

// take handles one result of readLine; it reports false when the
// connection is over.
func (c *client) take(line []byte, err error) bool { return c.takeAt(line, err, 0) }

// takeAt is take with the line's arrival time in unix nanoseconds (0:
// read the clock now).
func (c *client) takeAt(line []byte, err error, now int64) bool {
	if err != nil {
		if errors.Is(err, errLineFlood) {
			c.quit("Input line too long", "Input line too long")
		} else {
			c.quit("Connection closed", "Connection closed")
		}
		return false
	}
	if now == 0 {
		now = c.srv.now().UnixNano()
	}
	c.handle(line, now, false)
	return c.quitMsg.Load() == nil
}

// handle handles one line that arrived at now (unix nanoseconds). On an
// event loop (onLoop) it takes only a line that cannot make the loop
// wait: a message to one target, to the channel or to a session of this
// node, that flood control lets through at once. Any other line it
// leaves alone there, and reports false.
func (c *client) handle(line []byte, now int64, onLoop bool) bool {
	long := tooLong(line)
	command, t0, t1, x0, fast := parseFastMessage(line)
	fast = fast && c.registered && !long
	var wall time.Time // flood control's clock
	if c.srv.conf().FloodRate > 0 {
		wall = time.Now()
	}
	if onLoop && len(line) > 0 && (!fast || c.floodAhead(wall) > 0) {
		return false
	}
	// The line's time: handling it reads the clock no more (lineTime).
	c.lastRead.Store(now)
	if c.pingAt.Load() != 0 { // a store per line would dirty the line the sweep reads
		c.pingAt.Store(0)
	}
	if len(line) == 0 {
		return true
	}
	if onLoop {
		// No copy: these strings share the read buffer, so they are only
		// valid during this call. privmsg copies what it keeps (onLoop).
		raw := unsafe.String(unsafe.SliceData(line), len(line))
		if !c.fastMessage(command, raw[t0:t1], raw[x0:], true) {
			return false
		}
		c.floodWait(wall) // counts the line; floodAhead said it need not wait
	} else {
		if !c.floodWait(wall) {
			c.quit("Excess Flood", "Excess Flood")
			return true
		}
		switch {
		case long:
			c.reply(errInputTooLong, "Input line was too long")
			return true
		case fast:
			raw := string(line)
			c.fastMessage(command, raw[t0:t1], raw[x0:], false)
		default:
			c.handleLine(string(line))
		}
	}
	c.lr.shrink()
	return true
}

// floodCost is the time one line costs under flood control.
func floodCost(cfg *Config) time.Duration { return time.Duration(float64(time.Second) / cfg.FloodRate) }

// floodAhead is how long flood control would hold back a line arriving
// now (0 or less: not at all), without counting the line.
func (c *client) floodAhead(now time.Time) time.Duration {
	cfg := c.srv.conf()
	if cfg.FloodRate <= 0 {
		return 0
	}
	cost := floodCost(cfg)
	return later(c.floodAt, now).Add(cost).Sub(now) - time.Duration(max(cfg.FloodBurst, 1))*cost
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// floodWait applies flood control before a line is handled: a client may
// send FloodBurst lines at once, then one line per 1/FloodRate seconds;
// lines beyond that are delayed (the reader sleeps, so TCP pushes back on
// the client only). A client still being slowed after FloodKill is
// flooding on purpose: floodWait returns false and it is disconnected.
// now is the wall clock when the line arrived.
func (c *client) floodWait(now time.Time) bool {
	cfg := c.srv.conf()
	if cfg.FloodRate <= 0 {
		return true
	}
	ahead := c.floodAhead(now)
	c.floodAt = later(c.floodAt, now).Add(floodCost(cfg))
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
	if c.batch != nil {
		c.batch.flush() // what earlier lines queued goes out before the wait
	}
	t := time.NewTimer(ahead)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.quitCh:
	}
	return true
}

func (c *client) handleLine(raw string) {
	msg, err := parseMessage(raw)
	if err != nil {
		return // tags or prefix with nothing after them: no command to answer
	}
	if !utf8.ValidString(raw) && !c.acceptNonUTF8(msg.Command) {
		return
	}
	if c.registered {
		c.idle.Store(c.lineTime().Unix())
	}
	if c.batch != nil && !isMessageCommand(msg.Command) {
		// Other commands may wait (on the store, on another session):
		// what earlier lines queued goes out first.
		c.batch.flush()
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

// fastMessage is handleLine for a line parseFastMessage took apart: what
// dispatch and message do for PRIVMSG or NOTICE to one target, without
// the general parse. On an event loop (onLoop) it does nothing and
// reports false if the message would have to wait (see route).
func (c *client) fastMessage(command, target, text string, onLoop bool) (done bool) {
	c.idle.Store(c.lineTime().Unix())
	defer func() {
		if r := recover(); r != nil {
			c.srv.log.Error("panic in command", "command", command, "conn", c.id, "nick", c.nick,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.quit("Internal error", "internal error while handling "+command)
			done = true
		}
	}()
	return c.privmsg(command, target, text, "", onLoop)
}

// lineTime is when the line being handled arrived (take read the clock
// for it); in the reader goroutine only.
func (c *client) lineTime() time.Time {
	if t := c.lastRead.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return c.srv.now()
}

func isMessageCommand(cmd string) bool {
	return cmd == "PRIVMSG" || cmd == "NOTICE" || cmd == "TAGMSG"
}

// acceptNonUTF8 answers a line that is not UTF-8, as UTF8ONLY promises:
// a message is refused (FAIL), since relaying it would mean changing what
// the sender wrote; any other command goes on with the bad bytes
// replaced, and WARN says so.
func (c *client) acceptNonUTF8(command string) bool {
	switch command {
	case "PRIVMSG", "NOTICE", "TAGMSG", "AWAY", "TOPIC", "BROADCAST", "MESSAGE":
		c.send("", "FAIL", command, "INVALID_UTF8", "Message rejected: this server takes UTF-8 only")
		return false
	}
	c.send("", "WARN", command, "INVALID_UTF8", "Invalid UTF-8 was replaced")
	return true
}

// cleanup runs once when the reader ends: the session leaves the room
// and presence, others are told, and the connection is forgotten.
func (c *client) cleanup() {
	s := c.srv
	if c.quitMsg.Load() == nil {
		c.quit("Connection closed", "Connection closed")
	}
	reason := *c.quitMsg.Load()
	if c.registered {
		s.mu.Lock()
		if s.sessions[c.key] == c { // a replaced session is not there any more
			delete(s.sessions, c.key)
		}
		s.mu.Unlock()
		s.leave(c, reason)
		ctx := c.srv.ctx
		s.presence.Release(ctx, c.info(), s.now())
		s.log.Info("disconnect", "nick", c.nick, "addr", c.host, "reason", reason)
	}
	c.unmonitorAll()
	if c.poll != nil {
		c.poll.detach(c)
	}
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

// setIdentity fixes who the client is, before the session is published.
func (c *client) setIdentity(nick, user, account string) {
	c.nick = nick
	c.key = accounts.Fold(nick)
	c.user = user
	c.account = account
	c.prefix = nick + "!" + user + "@" + c.host
}

// info is the session as others see it.
func (c *client) info() state.UserInfo {
	u := state.UserInfo{Nick: c.nick, User: c.user, Host: c.host, Realname: c.realname, Account: c.account,
		Signon: c.signon, Idle: time.Unix(c.idle.Load(), 0), Node: c.srv.node, Session: c.session, Parted: c.parted.Load()}
	if away := c.away.Load(); away != nil {
		u.Away = *away
	}
	return u
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
