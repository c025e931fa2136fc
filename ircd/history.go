package ircd

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/irc.v4"
)

// history is a bounded ring of the room's recent lines, served with
// IRCv3 draft/chathistory: a user who joins (a web user expects it) sees
// what was said before. Every node records the room lines it hands to its
// members, so each has the same history.
type history struct {
	mu   sync.RWMutex
	buf  []histEntry // a ring of cap(buf) entries
	next int         // where the next one goes
	full bool
}

type histEntry struct {
	t       time.Time
	id      string // msgid
	prefix  string
	account string
	command string // PRIVMSG or NOTICE
	text    string
	tags    string // the sender's client-only tags
}

func newHistory(size int) *history {
	if size <= 0 {
		return nil
	}
	return &history{buf: make([]histEntry, size)}
}

func (h *history) add(e histEntry) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.buf[h.next] = e
	h.next = (h.next + 1) % len(h.buf)
	h.full = h.full || h.next == 0
	h.mu.Unlock()
}

// all returns the entries, oldest first.
func (h *history) all() []histEntry {
	if h == nil {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.full {
		return append([]histEntry(nil), h.buf[:h.next]...)
	}
	return append(append([]histEntry(nil), h.buf[h.next:]...), h.buf[:h.next]...)
}

// chathistoryMax is ISUPPORT's CHATHISTORY: the most lines one request
// returns.
const chathistoryMax = 100

// ref is a message reference: "*", msgid=..., or timestamp=... .
type ref struct {
	star bool
	id   string
	t    time.Time
}

func parseRef(s string) (ref, bool) {
	switch {
	case s == "*":
		return ref{star: true}, true
	case strings.HasPrefix(s, "msgid="):
		return ref{id: s[len("msgid="):]}, len(s) > len("msgid=")
	case strings.HasPrefix(s, "timestamp="):
		t, err := time.Parse(time.RFC3339Nano, s[len("timestamp="):])
		return ref{t: t}, err == nil
	}
	return ref{}, false
}

// index is where r falls in entries: the position of its message, or of
// the first message at or after its time; found is false for a msgid
// that is not (or no longer) in the history.
func (r ref) index(entries []histEntry) (i int, found bool) {
	if r.id != "" {
		for i, e := range entries {
			if e.id == r.id {
				return i, true
			}
		}
		return 0, false
	}
	for i, e := range entries {
		if !e.t.Before(r.t) {
			return i, true
		}
	}
	return len(entries), true
}

var batchSeq atomic.Uint64

// handleCHATHISTORY answers LATEST, BEFORE and AFTER for the room; a
// private conversation has no history here, so its batch is empty.
func handleCHATHISTORY(c *client, m *irc.Message) {
	s := c.srv
	sub := strings.ToUpper(m.Params[0])
	fail := func(code, text string) {
		c.send("", "FAIL", append([]string{"CHATHISTORY", code}, append(m.Params[:min(len(m.Params), 2)], text)...)...)
	}
	if s.room.history == nil {
		fail("UNKNOWN_COMMAND", "History is turned off on this server")
		return
	}
	if sub != "LATEST" && sub != "BEFORE" && sub != "AFTER" {
		fail("INVALID_PARAMS", "Supported: LATEST, BEFORE and AFTER")
		return
	}
	if len(m.Params) < 4 {
		c.reply(irc.ERR_NEEDMOREPARAMS, "CHATHISTORY", "Not enough parameters")
		return
	}
	target := m.Params[1]
	r, ok := parseRef(m.Params[2])
	limit, err := strconv.Atoi(m.Params[3])
	if !ok || err != nil || limit < 0 || r.star && sub != "LATEST" {
		fail("INVALID_PARAMS", "Give a reference (*, msgid= or timestamp=) and a limit")
		return
	}
	limit = min(limit, chathistoryMax)
	var lines []histEntry
	if s.room.is(target) {
		entries := c.visible(s.room.history.all())
		i, found := r.index(entries)
		switch {
		case sub == "LATEST" && r.star:
			lines = entries[max(len(entries)-limit, 0):]
		case !found:
		case sub == "LATEST", sub == "AFTER":
			if r.id != "" {
				i++ // after the message itself
			}
			after := entries[i:]
			if sub == "LATEST" {
				lines = after[max(len(after)-limit, 0):]
			} else {
				lines = after[:min(limit, len(after))]
			}
		case sub == "BEFORE":
			before := entries[:i]
			lines = before[max(len(before)-limit, 0):]
		}
	}
	c.sendHistory(s.room.name, target, lines)
}

// visible drops the lines of senders the client silenced.
func (c *client) visible(entries []histEntry) []histEntry {
	l := c.silence.Load()
	if l == nil {
		return entries
	}
	out := entries[:0:0]
	for _, e := range entries {
		if !l.matches(e.prefix) {
			out = append(out, e)
		}
	}
	return out
}

// sendHistory sends lines in a chathistory batch (a bare list to a client
// without the batch capability), each with its original time and msgid.
func (c *client) sendHistory(channel, target string, lines []histEntry) {
	batch := ""
	if c.has(capBatch) {
		batch = "h" + strconv.FormatUint(batchSeq.Add(1), 36)
		c.send("", "BATCH", "+"+batch, "chathistory", target)
	}
	f := formOf(c) & formsMessage
	for _, e := range lines {
		tags := f.tagString(e.t, e.account, e.tags, e.id)
		if batch != "" {
			tags = joinTags("batch="+batch, tags)
		}
		c.out.push(appendMessage(nil, tags, e.prefix, e.command, channel, e.text))
	}
	if batch != "" {
		c.send("", "BATCH", "-"+batch)
	}
}
