// Package state holds the values and errors that the chat server and its
// state backends exchange: the embedded store, the in-process presence
// and bus, and the cluster backend. It imports none of theirs, so every
// backend can speak it; its only behaviour is the MONITOR registry every
// presence keeps (Watchers).
package state

import (
	"errors"
	"sync"
	"time"
)

// UserInfo is a logged-in user as anyone other than its own connection
// sees it: a value, never a live connection.
type UserInfo struct {
	Nick     string // the nick (for accounts, the account name as spelled in users.txt)
	User     string // the ident shown in nick!user@host
	Host     string
	Realname string
	Account  string    // "" for a guest
	Away     string    // "" when not away
	Signon   time.Time // when the session logged in
	Idle     time.Time // when the user last sent a message
	Node     string    // the daemon holding the session
	Session  string    // unique to the session; a claim is released or displaced by it
	Parted   bool      // the user has left the room (PART) and not joined again
}

// Prefix is the user's nick!user@host.
func (u UserInfo) Prefix() string { return u.Nick + "!" + u.User + "@" + u.Host }

// Seen is what is remembered of a user who left.
type Seen struct {
	Nick, User, Host, Realname string
	At                         time.Time // when they left (or were last seen online)
}

// Message is one stored private message.
type Message struct {
	ID      uint64    // assigned by the mailbox; increasing per recipient
	From    string    // the sender's nick!user@host
	Sender  string    // the sender's folded account, for its share of the mailbox; "" = not counted
	Command string    // PRIVMSG or NOTICE
	Text    string    // the message text
	Time    time.Time // when it was sent
	MsgID   string    // the message's id (its msgid tag), so a copy delivered live is not replayed
}

// RoomEventKind says what a room event is.
type RoomEventKind uint8

const (
	RoomMessage RoomEventKind = iota + 1 // PRIVMSG, NOTICE or TAGMSG to the room
	RoomJoin
	RoomPart
	RoomQuit
	RoomAway // away status changed (Text is the new message, "" = back)
)

// RoomEvent is one thing said or done in the room, as it travels between
// the sessions of every node; each node encodes it for its own members.
type RoomEvent struct {
	Kind    RoomEventKind
	From    UserInfo
	Command string    // RoomMessage: PRIVMSG, NOTICE or TAGMSG
	Text    string    // message text, PART/QUIT reason or AWAY message
	Tags    string    // the sender's client-only tags, encoded
	Time    time.Time // when it happened
	ID      string    // the message id (msgid tag)
}

// Private is a private message on its way to an online session.
type Private struct {
	From    UserInfo
	Command string // PRIVMSG, NOTICE or TAGMSG
	Text    string
	Tags    string // the sender's client-only tags, encoded
	Time    time.Time
	ID      string
}

var (
	// ErrMailboxFull: the recipient's mailbox holds its limit.
	ErrMailboxFull = errors.New("mailbox full")
	// ErrSenderShareFull: the sender holds its share of the recipient's mailbox.
	ErrSenderShareFull = errors.New("sender's share of the mailbox is full")
	// ErrUnavailable: the backend cannot be reached now; nothing was done.
	ErrUnavailable = errors.New("state backend unavailable")
)

// HeldError is a claim refused because another session holds the name.
type HeldError struct{ Holder UserInfo }

func (e *HeldError) Error() string { return e.Holder.Nick + " is already logged in" }

// Watcher hears when a watched nick comes online or leaves (MONITOR).
type Watcher interface {
	PresenceChanged(info UserInfo, online bool)
}

// BusHandler is a node's side of the bus: what arrives for this node's
// members and sessions, from this node or another.
type BusHandler interface {
	// Room hands ev to this node's members of the room.
	Room(ev RoomEvent)
	// Private queues m to the session to.Session if this node holds it; it
	// reports false if it does not, or the session is closing. A recipient
	// who silenced the sender counts as delivered: the line is dropped.
	Private(to UserInfo, m Private) bool
	// MailWaiting tells the session that its mailbox has new messages.
	MailWaiting(to UserInfo)
	// End ends the session who.Session, telling its user reason.
	End(who UserInfo, reason string)
	// Ping reports whether the session who.Session shows it is alive
	// within wait.
	Ping(who UserInfo, wait time.Duration) bool
}

// Watchers is the MONITOR registry a presence implementation keeps: who
// watches which folded nick. It is safe for concurrent use, and the zero
// value is ready; it is the one piece of behaviour here, since every
// presence needs exactly this.
type Watchers struct {
	mu sync.Mutex
	m  map[string]map[Watcher]struct{}
}

// Watch makes w hear about key.
func (ws *Watchers) Watch(key string, w Watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = make(map[string]map[Watcher]struct{})
	}
	if ws.m[key] == nil {
		ws.m[key] = make(map[Watcher]struct{})
	}
	ws.m[key][w] = struct{}{}
}

// Unwatch undoes Watch.
func (ws *Watchers) Unwatch(key string, w Watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.m[key], w)
	if len(ws.m[key]) == 0 {
		delete(ws.m, key)
	}
}

// Of returns key's watchers, to be told outside any lock.
func (ws *Watchers) Of(key string) []Watcher {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.m[key]) == 0 {
		return nil
	}
	out := make([]Watcher, 0, len(ws.m[key]))
	for w := range ws.m[key] {
		out = append(out, w)
	}
	return out
}
