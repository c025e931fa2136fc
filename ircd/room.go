package ircd

import (
	"strings"
	"sync"
	"time"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
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

// tagString builds the tags a recipient of form f gets for a line sent at
// t by account ("" for a guest or the server). clientTags are the sender's
// client-only tags (already encoded) and msgid the line's id, both for
// message-tags clients only.
func (f form) tagString(t time.Time, account, clientTags, msgid string) string {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(s)
	}
	if f&formAccount != 0 && account != "" {
		add("account=" + account)
	}
	if f&formTags != 0 && msgid != "" {
		add("msgid=" + msgid)
	}
	if f&formTags != 0 && clientTags != "" {
		add(clientTags)
	}
	if f&formTime != 0 {
		add("time=" + formatTime(t))
	}
	return b.String()
}

// room is this node's copy of the one channel: the names of all its
// members (for NAMES, WHO and WHOIS) and the connections of this node's
// members (for fan-out). Members on other nodes (cluster mode) come and go
// through room events from the bus.
type room struct {
	name    string
	created time.Time

	mu      sync.RWMutex
	topic   string
	topicBy string
	topicAt time.Time
	// This node's members in a slice (fast to walk for fan-out and NAMES)
	// with an index for O(1) removal; order is join order until someone
	// leaves.
	members []*client
	index   map[*client]int
	remote  map[string]remoteMember // folded nick -> member on another node

	history *history // recent lines, nil when history is off
}

type remoteMember struct {
	nick, prefix, session string
}

func newRoom(name, topic, setBy string, created time.Time) *room {
	return &room{name: name, created: created, topic: topic, topicBy: setBy, topicAt: created,
		index: make(map[*client]int), remote: make(map[string]remoteMember)}
}

// is reports whether name names the room.
func (r *room) is(name string) bool { return strings.EqualFold(name, r.name) }

func (r *room) add(c *client) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.index[c]; ok {
		return false
	}
	r.index[c] = len(r.members)
	r.members = append(r.members, c)
	return true
}

func (r *room) remove(c *client) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.index[c]
	if !ok {
		return false
	}
	last := len(r.members) - 1
	r.members[i] = r.members[last]
	r.index[r.members[i]] = i
	r.members[last] = nil
	r.members = r.members[:last]
	delete(r.index, c)
	return true
}

// addRemote and removeRemote keep the names of another node's members.
// A nick is one session at a time: a JOIN of a new session replaces the
// old one (its QUIT may come later, from another node), and a QUIT or
// PART removes only the session it is about.
func (r *room) addRemote(u state.UserInfo) (added bool, replaced *remoteMember) {
	key := accounts.Fold(u.Nick)
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.remote[key]
	if ok && m.session == u.Session {
		return false, nil
	}
	r.remote[key] = remoteMember{nick: u.Nick, prefix: u.Prefix(), session: u.Session}
	if ok {
		return true, &m
	}
	return true, nil
}

// takeRemote removes another node's member of nick, if any: a session of
// this node's is joining under that nick.
func (r *room) takeRemote(nick string) (remoteMember, bool) {
	key := accounts.Fold(nick)
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.remote[key]
	delete(r.remote, key)
	return m, ok
}

func (r *room) removeRemote(u state.UserInfo) bool {
	key := accounts.Fold(u.Nick)
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.remote[key]; !ok || m.session != u.Session {
		return false
	}
	delete(r.remote, key)
	return true
}

func (r *room) has(c *client) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.index[c]
	return ok
}

// hasNick reports whether nick is a member, on this node or another.
func (r *room) hasNick(nick string, local *client) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if local != nil {
		_, ok := r.index[local]
		return ok
	}
	_, ok := r.remote[accounts.Fold(nick)]
	return ok
}

func (r *room) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.members) + len(r.remote)
}

func (r *room) topicInfo() (topic, by string, at time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.topic, r.topicBy, r.topicAt
}

// fanout is one line sent to this node's members.
type fanout struct {
	sender  *client     // this node's session that sent it, or nil
	prefix  string      // the sender's nick!user@host, for silence lists
	echo    bool        // the sender gets it too
	forms   form        // the form bits that change the line (formsMessage if zero)
	onlyCap uint32      // if set, only members with this capability get it
	lazy    bool        // others may get it a little late (announcements): pushDeferred
	batch   *writeBatch // the sender's, when its reader goroutine sends the line
	build   func(form) []byte
}

// broadcast queues a line to every member of this node except those
// silencing the sender; build encodes the line for one form and is called
// at most once per form in use. Queues never block, so holding the read
// lock here costs writers only the fan-out time.
func (r *room) broadcast(o fanout) {
	if o.forms == 0 {
		o.forms = formsMessage
	}
	var cache [numForms][]byte
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, m := range r.members {
		if m == o.sender && !o.echo {
			continue
		}
		if o.onlyCap != 0 && !m.has(o.onlyCap) {
			continue
		}
		if m != o.sender && o.prefix != "" && m.silence.Load().matches(o.prefix) {
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
			m.pushBatched(line, o.batch)
		}
	}
}

// names calls emit with the members' names (full nick!user@host masks if
// full) joined into strings of at most limit bytes: this node's in join
// order, then the others'. Clients sort NAMES themselves, and sorting here
// was most of a login's cost in a big room.
func (r *room) names(full bool, limit int, emit func(string)) {
	var b strings.Builder
	b.Grow(limit + 32)
	add := func(name string) {
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
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, m := range r.members {
		if full {
			add(m.prefix)
		} else {
			add(m.nick)
		}
	}
	for _, m := range r.remote {
		if full {
			add(m.prefix)
		} else {
			add(m.nick)
		}
	}
	if b.Len() > 0 {
		emit(b.String())
	}
}

// memberNicks returns every member's nick.
func (r *room) memberNicks() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.members)+len(r.remote))
	for _, m := range r.members {
		out = append(out, m.nick)
	}
	for _, m := range r.remote {
		out = append(out, m.nick)
	}
	return out
}
