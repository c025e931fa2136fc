package ircd

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lobbychat/ircd/state"
)

// mailState is a session's side of its stored messages. They are queued
// to the client after the welcome, then a PING; its PONG acknowledges
// them, and only then are they deleted, so a client that drops before
// answering gets them again. A sender that stored a message while the
// session was logging in tells it (MailWaiting) and it replays again,
// queueing only what it has not queued before; so a message sent at the
// moment its recipient logs in arrives exactly once, live or stored.
//
// Private messages that arrive before the first replay has queued the
// stored ones are held back and follow them, so nobody's messages are
// shown out of order or before the welcome. mu guards memory only: the
// mailbox is read and written outside it.
type mailState struct {
	mu       sync.Mutex
	running  bool  // a replay is under way
	again    bool  // ...and more mail arrived meanwhile: replay once more
	holding  bool  // live private messages wait for the first replay
	liveNext uint8 // next slot of live
	queued   uint64
	held     *heldLines // what holding keeps back
	acks     *[]mailAck // PINGs sent after a replay, not yet answered
	// The ids of the last private messages delivered live. A sender whose
	// delivery timed out (a cluster node that did not answer in time)
	// stores the message too, under the same id; the replay skips it.
	live *[liveIDs]string
	// All three are allocated when first needed: a session costs memory
	// in every big room, and most hold none of them most of the time.
}

type heldLines struct {
	lines [][]byte
	size  int
}

const liveIDs = 8

func (m *mailState) deliveredLive(id string) bool {
	if id == "" || m.live == nil {
		return false
	}
	for _, l := range m.live {
		if l == id {
			return true
		}
	}
	return false
}

type mailAck struct {
	token string
	upTo  uint64
	count int
}

// maxPendingAcks bounds the replays awaiting their PONG: a client that
// never answers holds at most this many tokens (its messages stay stored).
const maxPendingAcks = 16

// mailWaiting is a sender telling the session that it stored a message.
// While the session is logging in, its own first replay reads the mailbox
// again when it is done (so the welcome, the stored messages and what was
// held back keep their order); later, a replay runs on a goroutine of its
// own, so the sender does not wait for another user's mailbox.
func (c *client) mailWaiting() {
	m := &c.mail
	m.mu.Lock()
	if m.holding || m.running {
		m.again = true
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	go c.replayMail()
}

// replayMail queues the stored messages not yet queued, oldest first,
// then a PING whose PONG acknowledges them. Concurrent calls fold into
// the one running.
func (c *client) replayMail() {
	m := &c.mail
	m.mu.Lock()
	if m.running {
		m.again = true
		m.mu.Unlock()
		return
	}
	m.running = true
	m.mu.Unlock()
	for {
		var msgs []state.Message
		var err error
		if c.account != "" {
			ctx := c.srv.ctx
			msgs, err = c.srv.mailbox.Pending(ctx, c.key)
		}
		m.mu.Lock()
		if err != nil {
			c.srv.log.Error("reading offline messages", "account", c.account, "err", err)
			c.notice("Your stored messages could not be read; they are kept for your next login")
		} else {
			c.queueMail(msgs)
		}
		if m.holding { // the first replay is done: what was held follows
			if m.held != nil {
				for _, l := range m.held.lines {
					c.out.push(l)
				}
			}
			m.held, m.holding = nil, false
		}
		if !m.again {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

// queueMail pushes the messages with IDs above what was queued before and
// the PING that acknowledges them. The caller holds c.mail.mu.
func (c *client) queueMail(msgs []state.Message) {
	m := &c.mail
	n := 0
	f := formOf(c)
	for _, msg := range msgs {
		if msg.ID <= m.queued {
			continue
		}
		if m.deliveredLive(msg.MsgID) {
			m.queued = msg.ID // acknowledged with the rest, never shown twice
			continue
		}
		text := msg.Text
		tags := ""
		if f&formTime != 0 {
			tags = "time=" + formatTime(msg.Time)
		} else {
			text = "[" + msg.Time.UTC().Format("2006-01-02 15:04:05") + " UTC] " + text
		}
		if f&formAccount != 0 {
			if nick, _, ok := strings.Cut(msg.From, "!"); ok {
				tags = joinTags("account="+nick, tags)
			}
		}
		if f&formTags != 0 && msg.MsgID != "" {
			tags = joinTags("msgid="+msg.MsgID, tags)
		}
		c.out.push(appendMessage(nil, tags, msg.From, msg.Command, c.nick, text))
		m.queued = msg.ID
		n++
	}
	if n == 0 {
		return
	}
	if m.acks == nil {
		m.acks = new([]mailAck)
	}
	if len(*m.acks) >= maxPendingAcks {
		return
	}
	token := "replay-" + strconv.FormatUint(m.queued, 10) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	*m.acks = append(*m.acks, mailAck{token: token, upTo: m.queued, count: n})
	c.send("", "PING", token)
}

// ackMail deletes what a replay queued once its PING is answered.
func (c *client) ackMail(token string) bool {
	m := &c.mail
	m.mu.Lock()
	var ack mailAck
	if m.acks != nil {
		for i, a := range *m.acks {
			if a.token == token {
				ack = a
				*m.acks = append((*m.acks)[:i], (*m.acks)[i+1:]...)
				break
			}
		}
		if len(*m.acks) == 0 {
			m.acks = nil
		}
	}
	m.mu.Unlock()
	if ack.token == "" {
		return false
	}
	s := c.srv
	ctx := c.srv.ctx
	if err := s.mailbox.Ack(ctx, c.key, ack.upTo); err != nil {
		s.log.Error("deleting delivered offline messages", "account", c.account, "err", err)
		return true
	}
	s.stats.offlineDelivered.Add(uint64(ack.count))
	return true
}

// pushPrivate queues a private line (message id) to c, or holds it until
// the first replay has queued the stored ones. It reports false if c is
// closing. A scratch line is the caller's to reuse: it is copied.
func (c *client) pushPrivate(id string, line []byte, scratch bool, b *writeBatch) bool {
	m := &c.mail
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != "" {
		if m.live == nil {
			m.live = new([liveIDs]string)
		}
		m.live[m.liveNext] = id
		m.liveNext = (m.liveNext + 1) % liveIDs
	}
	if !m.holding {
		if scratch {
			return c.pushCopy(line, b)
		}
		return c.pushBatched(line, b)
	}
	if c.quitMsg.Load() != nil {
		return false
	}
	if m.held == nil {
		m.held = new(heldLines)
	}
	if m.held.size+len(line) > c.srv.conf().SendQ {
		c.quit("SendQ exceeded", "SendQ exceeded")
		return false
	}
	if scratch {
		line = append([]byte(nil), line...)
	}
	m.held.lines = append(m.held.lines, line)
	m.held.size += len(line)
	return true
}

func joinTags(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + ";" + b
}
