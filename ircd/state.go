package ircd

import (
	"context"
	"time"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

// The state the server shares with other sessions, and with other nodes
// in a cluster, has named owners, each behind an interface declared here
// where it is used. Package local (with the embedded store) implements
// them for a daemon that runs alone; package cluster for several daemons
// serving one room. The Server itself keeps only what is per process:
// connections, the poller, send queues, per-address counts and stats.

// Presence owns the one-session rule and who is, and was, online.
type Presence interface {
	// Claim makes info the session of its nick; a nick held by another
	// session is refused with *state.HeldError, unless that session is
	// displace, which info then replaces in the same step.
	Claim(ctx context.Context, info state.UserInfo, displace string) error
	// Release ends info's claim if info.Session still holds it, and
	// records when it left; it reports whether it did.
	Release(ctx context.Context, info state.UserInfo, at time.Time) bool
	// Update replaces what is known of a session holding its claim.
	Update(ctx context.Context, info state.UserInfo) error
	Lookup(nick string) (state.UserInfo, bool)
	// Online calls fn for each online user until it returns false.
	Online(fn func(state.UserInfo) bool)
	Count() int
	LastSeen(nick string) (state.Seen, bool)
	// Recent calls fn for each user not online who left at or after since.
	Recent(since time.Time, fn func(state.Seen) bool)
	// Watch and Unwatch are MONITOR: w hears when nick comes and goes.
	Watch(nick string, w state.Watcher)
	Unwatch(nick string, w state.Watcher)
}

// Mailbox owns stored private messages. Keys are folded account names.
type Mailbox interface {
	// Append stores m durably and returns it with its ID, or fails with
	// state.ErrMailboxFull or state.ErrSenderShareFull.
	Append(ctx context.Context, to string, m state.Message) (state.Message, error)
	// Pending returns to's messages, oldest first.
	Pending(ctx context.Context, to string) ([]state.Message, error)
	// Ack deletes to's messages with IDs up to upTo.
	Ack(ctx context.Context, to string, upTo uint64) error
}

// Silences owns each account's block list (folded masks, in the order
// they were added).
type Silences interface {
	Silences(ctx context.Context, account string) ([]string, error)
	AddSilence(ctx context.Context, account, mask string) (added bool, err error)
	RemoveSilence(ctx context.Context, account, mask string) (removed bool, err error)
}

// Bus carries what crosses sessions: room events to every member, private
// lines and requests to one session, wherever it is. What arrives for this
// node goes to the handler attached (the Server).
type Bus interface {
	Attach(h state.BusHandler)
	Room(ev state.RoomEvent) error
	Private(ctx context.Context, to state.UserInfo, m state.Private) (delivered bool, err error)
	MailWaiting(ctx context.Context, to state.UserInfo) error
	End(ctx context.Context, who state.UserInfo, reason string) error
	Ping(ctx context.Context, who state.UserInfo, wait time.Duration) (alive bool, err error)
}

// Backends are the owners of the shared state a Server uses. The caller
// creates them, and closes them after Server.Shutdown.
type Backends struct {
	// Accounts checks passwords; its limiter (accounts.LoginLimiter, or a
	// cluster-wide one) owns the lockout and the per-address throttle.
	Accounts *accounts.Accounts
	Presence Presence
	Mailbox  Mailbox
	Silences Silences
	Bus      Bus
	Node     string // this daemon's name, as in state.UserInfo.Node
}

// Backend calls take the server's context, which ends at Shutdown. A
// backend that crosses the network bounds each call itself (a timer per
// call here cost 14% of the CPU of a private message); the local ones
// never block for long.
