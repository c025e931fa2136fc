package ircd

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// form is the set of capabilities that change how a relayed line is
// encoded. A broadcast is encoded at most once per form in use.
type form uint8

const (
	formTime form = 1 << iota
	formAccount
	formTags
	formExtJoin
	numForms = 1 << iota
)

// formsMessage are the bits that change an ordinary relayed line; a
// fan-out masks the others so members that differ only in, say,
// extended-join share one encoding.
const formsMessage = formTime | formAccount | formTags

func formOf(c *client) form {
	caps := c.caps.Load()
	var f form
	if caps&capServerTime != 0 {
		f |= formTime
	}
	if caps&capAccountTag != 0 {
		f |= formAccount
	}
	if caps&capMessageTags != 0 {
		f |= formTags
	}
	if caps&capExtendedJoin != 0 {
		f |= formExtJoin
	}
	return f
}

// tagString builds the tags a recipient of form f gets for a line sent by
// sender at t. clientTags are the sender's client-only tags (already
// encoded), relayed only to message-tags clients.
func (f form) tagString(t time.Time, sender *client, clientTags string) string {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(s)
	}
	if f&formAccount != 0 && sender != nil && sender.account != "" {
		add("account=" + sender.account)
	}
	if f&formTags != 0 && clientTags != "" {
		add(clientTags)
	}
	if f&formTime != 0 {
		add("time=" + formatTime(t))
	}
	return b.String()
}

// channel is the one shared room.
type channel struct {
	name    string
	created time.Time

	mu      sync.RWMutex
	topic   string
	topicBy string
	topicAt time.Time
	// members in a slice (fast to walk for fan-out and NAMES) with an
	// index for O(1) removal; order is join order until someone leaves.
	members []*client
	index   map[*client]int
}

func newChannel(name, topic, setBy string, created time.Time) *channel {
	return &channel{name: name, created: created, topic: topic, topicBy: setBy, topicAt: created,
		index: make(map[*client]int)}
}

func validChannelName(name string) bool {
	return len(name) > 1 && len(name) <= 50 && name[0] == '#' && !strings.ContainsAny(name, " ,\x07\x00\r\n")
}

func (ch *channel) add(c *client) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if _, ok := ch.index[c]; ok {
		return false
	}
	ch.index[c] = len(ch.members)
	ch.members = append(ch.members, c)
	return true
}

func (ch *channel) remove(c *client) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	i, ok := ch.index[c]
	if !ok {
		return false
	}
	last := len(ch.members) - 1
	ch.members[i] = ch.members[last]
	ch.index[ch.members[i]] = i
	ch.members[last] = nil
	ch.members = ch.members[:last]
	delete(ch.index, c)
	return true
}

func (ch *channel) has(c *client) bool {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	_, ok := ch.index[c]
	return ok
}

func (ch *channel) size() int {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return len(ch.members)
}

func (ch *channel) list() []*client {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return slices.Clone(ch.members)
}

func (ch *channel) topicInfo() (topic, by string, at time.Time) {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return ch.topic, ch.topicBy, ch.topicAt
}

// fanout is one line sent to the channel's members.
type fanout struct {
	sender  *client
	echo    bool   // the sender gets it too
	forms   form   // the form bits that change the line (formsMessage if zero)
	onlyCap uint32 // if set, only members with this capability get it
	lazy    bool   // others may get it a little late (announcements): pushDeferred
	build   func(form) []byte
}

// broadcast queues a line to every member except those silencing the
// sender; build encodes the line for one form and is called at most once
// per form in use. Queues never block, so holding the read lock here
// costs writers only the fan-out time.
func (ch *channel) broadcast(o fanout) {
	if o.forms == 0 {
		o.forms = formsMessage
	}
	var cache [numForms][]byte
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	for _, m := range ch.members {
		if m == o.sender && !o.echo {
			continue
		}
		if o.onlyCap != 0 && !m.has(o.onlyCap) {
			continue
		}
		if m != o.sender && o.sender != nil && m.silences(o.sender) {
			continue
		}
		f := formOf(m) & o.forms
		line := cache[f]
		if line == nil {
			line = o.build(f)
			cache[f] = line
		}
		switch {
		case len(line) == 0:
		case o.lazy && m != o.sender:
			m.out.pushDeferred(line)
		default:
			m.out.push(line)
		}
	}
}

// names calls emit with the members' names (full nick!user@host masks if
// full) joined into strings of at most limit bytes, in join order:
// clients sort NAMES themselves, and sorting here was most of a login's
// cost in a big room.
func (ch *channel) names(full bool, limit int, emit func(string)) {
	var b strings.Builder
	b.Grow(limit + 32)
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	for _, m := range ch.members {
		name := m.nick
		if full {
			name = m.prefix
		}
		if b.Len() > 0 && b.Len()+1+len(name) > limit {
			emit(b.String())
			b = strings.Builder{}
			b.Grow(limit + 32)
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
	}
	if b.Len() > 0 {
		emit(b.String())
	}
}
