// Package local implements the chat server's shared state for a daemon
// that runs alone: who is online and who was (presence, in memory, the
// last-seen times persisted through a SeenStore), and a bus that hands
// everything straight to the server's own handler.
package local

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

// SeenStore persists last-seen records (the embedded store does).
type SeenStore interface {
	SetLastSeen(seen map[string]state.Seen) error
	LastSeen() (map[string]state.Seen, error)
}

// Presence is the one-session rule, the directory of who is online, what
// is remembered of who left, and the MONITOR watches, for one process.
// Its lock guards memory only: last-seen times are written to disk
// outside it, in batches.
type Presence struct {
	store SeenStore
	now   func() time.Time
	log   *slog.Logger

	mu     sync.RWMutex
	online map[string]onlineUser // folded nick -> session
	seen   map[string]state.Seen // folded nick -> when they left
	dirty  map[string]struct{}   // left since the last flush
	watch  state.Watchers        // MONITOR

	flushMu sync.Mutex // one flush at a time, so an older batch never lands last
	stop    chan struct{}
	done    chan struct{}
}

// onlineUser is a state.UserInfo kept compactly: a big room holds one per
// user, and times as nanoseconds take a third of the room.
type onlineUser struct {
	nick, user, host, realname, account, away, node, session string
	signon, idle                                             int64
	parted                                                   bool
}

func compact(u state.UserInfo) onlineUser {
	return onlineUser{u.Nick, u.User, u.Host, u.Realname, u.Account, u.Away, u.Node, u.Session,
		u.Signon.UnixNano(), u.Idle.UnixNano(), u.Parted}
}

func (o *onlineUser) info() state.UserInfo {
	return state.UserInfo{Nick: o.nick, User: o.user, Host: o.host, Realname: o.realname, Account: o.account,
		Away: o.away, Node: o.node, Session: o.session,
		Signon: time.Unix(0, o.signon).UTC(), Idle: time.Unix(0, o.idle).UTC(), Parted: o.parted}
}

// PresenceOptions configure NewPresence.
type PresenceOptions struct {
	Now   func() time.Time // the clock (time.Now if nil)
	Flush time.Duration    // how often online users' last-seen is persisted (30s if zero)
	Log   *slog.Logger
}

// NewPresence loads the last-seen records and starts persisting them.
func NewPresence(st SeenStore, opts PresenceOptions) (*Presence, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Flush <= 0 {
		opts.Flush = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	seen, err := st.LastSeen()
	if err != nil {
		return nil, err
	}
	p := &Presence{store: st, now: opts.Now, log: opts.Log,
		online: make(map[string]onlineUser), seen: seen, dirty: make(map[string]struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.flushLoop(opts.Flush)
	return p, nil
}

// Claim makes info the session of its nick. A nick held by another
// session is refused with *state.HeldError, unless that session is
// displace, which info then replaces in the same step.
func (p *Presence) Claim(_ context.Context, info state.UserInfo, displace string) error {
	key := accounts.Fold(info.Nick)
	p.mu.Lock()
	if cur, ok := p.online[key]; ok && (displace == "" || cur.session != displace) {
		p.mu.Unlock()
		return &state.HeldError{Holder: cur.info()}
	}
	p.online[key] = compact(info)
	ws := p.watch.Of(key)
	p.mu.Unlock()
	for _, w := range ws {
		w.PresenceChanged(info, true)
	}
	return nil
}

// Release ends info's claim if that session still holds it, and
// remembers when it left; it reports whether it did.
func (p *Presence) Release(_ context.Context, info state.UserInfo, at time.Time) bool {
	key := accounts.Fold(info.Nick)
	p.mu.Lock()
	if cur, ok := p.online[key]; !ok || cur.session != info.Session {
		p.mu.Unlock()
		return false
	}
	delete(p.online, key)
	p.seen[key] = state.Seen{Nick: info.Nick, User: info.User, Host: info.Host, Realname: info.Realname, At: at}
	if info.Account != "" {
		p.dirty[key] = struct{}{}
	}
	ws := p.watch.Of(key)
	p.mu.Unlock()
	for _, w := range ws {
		w.PresenceChanged(info, false)
	}
	return true
}

// Update replaces what is known of a session that holds its claim (its
// away message).
func (p *Presence) Update(_ context.Context, info state.UserInfo) error {
	key := accounts.Fold(info.Nick)
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.online[key]; ok && cur.session == info.Session {
		p.online[key] = compact(info)
	}
	return nil
}

// Lookup returns the session holding nick.
func (p *Presence) Lookup(nick string) (state.UserInfo, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	u, ok := p.online[accounts.Fold(nick)]
	if !ok {
		return state.UserInfo{}, false
	}
	return u.info(), true
}

// Online calls fn for every online user, in no order, until it returns
// false. fn must not call back into p.
func (p *Presence) Online(fn func(state.UserInfo) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, u := range p.online {
		if !fn(u.info()) {
			return
		}
	}
}

// Count is how many users are online.
func (p *Presence) Count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.online)
}

// LastSeen is what is remembered of nick's last session.
func (p *Presence) LastSeen(nick string) (state.Seen, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.seen[accounts.Fold(nick)]
	return s, ok
}

// Recent calls fn for every user not online now who left at or after
// since, until it returns false. fn must not call back into p.
func (p *Presence) Recent(since time.Time, fn func(state.Seen) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for key, s := range p.seen {
		if _, on := p.online[key]; on || s.At.Before(since) {
			continue
		}
		if !fn(s) {
			return
		}
	}
}

// Watch makes w hear when nick comes or goes.
func (p *Presence) Watch(nick string, w state.Watcher) { p.watch.Watch(accounts.Fold(nick), w) }

// Unwatch undoes Watch.
func (p *Presence) Unwatch(nick string, w state.Watcher) { p.watch.Unwatch(accounts.Fold(nick), w) }

func (p *Presence) flushLoop(every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.Flush()
		}
	}
}

// Flush persists, in one write, "now" for every online account and the
// departures since the last flush. Departures are batched rather than
// written one fsync each, so 10,000 users dropping at once cost one
// write; a crash loses at most one flush period of them, and those users
// were persisted as online at most that long before.
func (p *Presence) Flush() {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	now := p.now()
	p.mu.Lock()
	batch := make(map[string]state.Seen, len(p.online)+len(p.dirty))
	for key, u := range p.online {
		if u.account != "" {
			batch[key] = state.Seen{Nick: u.nick, User: u.user, Host: u.host, Realname: u.realname, At: now}
		}
	}
	for key := range p.dirty {
		if s, ok := p.seen[key]; ok {
			batch[key] = s
		}
	}
	clear(p.dirty)
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := p.store.SetLastSeen(batch); err != nil {
		p.log.Error("persisting last-seen times", "err", err)
		p.mu.Lock()
		for key := range batch {
			if _, on := p.online[key]; !on {
				p.dirty[key] = struct{}{} // try again next time
			}
		}
		p.mu.Unlock()
	}
}

// Close stops the periodic flush and persists everything once more.
func (p *Presence) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.Flush()
	return nil
}
