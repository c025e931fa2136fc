package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

// Presence is the one-session rule across the cluster and every node's
// copy of who is online. A claim is a key in the sessions bucket, made
// with Create (it fails if the key exists) and taken over with Update at
// the holder's revision; a release deletes it at this session's revision,
// so a session that was displaced cannot delete its successor's claim.
// Lookups read this node's copy, which a watch on the bucket keeps
// current; this node's own changes are applied to it at once.
type Presence struct {
	n *Node

	mu     sync.RWMutex
	online map[string]entry      // folded nick -> session
	revs   map[string]uint64     // the last revision applied per key, deletes included
	own    map[string]uint64     // this node's claims: folded nick -> revision
	seen   map[string]state.Seen // folded nick -> last seen
	alive  map[string]string     // node -> boot, from heartbeats
	watch  state.Watchers        // MONITOR

	kw []jetstream.KeyWatcher
}

// quitGrace is how long a session's QUIT has, after its claim is gone, to
// arrive over the bus before the room is told it left anyway.
const quitGrace = 2 * time.Second

type entry struct {
	info state.UserInfo
	rev  uint64
}

// start loads the buckets' current state, removes claims a previous run
// of this node left behind, and keeps watching.
func (p *Presence) start(ctx context.Context) error {
	p.online = make(map[string]entry)
	p.revs = make(map[string]uint64)
	p.own = make(map[string]uint64)
	p.seen = make(map[string]state.Seen)
	p.alive = make(map[string]string)
	for _, w := range []struct {
		kv     jetstream.KeyValue
		update func(jetstream.KeyValueEntry)
	}{{p.n.nodes, p.nodeUpdate}, {p.n.sessions, p.sessionUpdate}, {p.n.seen, p.seenUpdate}} {
		kw, err := w.kv.WatchAll(context.Background())
		if err != nil {
			return unavailable("watching "+w.kv.Bucket(), err)
		}
		p.kw = append(p.kw, kw)
		// The current values come first, then a nil entry.
		if err := drainInitial(ctx, kw, w.update); err != nil {
			return err
		}
		p.n.wg.Add(1)
		go func() {
			defer p.n.wg.Done()
			for e := range kw.Updates() {
				if e != nil {
					w.update(e)
				}
			}
		}()
	}
	// Claims this node made before it last stopped are stale: this run
	// has no sessions yet.
	p.mu.RLock()
	var stale []entry
	for _, e := range p.online {
		if e.info.Node == p.n.name {
			stale = append(stale, e)
		}
	}
	p.mu.RUnlock()
	for _, e := range stale {
		p.deleteClaim(ctx, e)
	}
	return nil
}

func drainInitial(ctx context.Context, kw jetstream.KeyWatcher, update func(jetstream.KeyValueEntry)) error {
	for {
		select {
		case e, ok := <-kw.Updates():
			if !ok {
				return unavailable("loading the cluster's state", errors.New("watch ended"))
			}
			if e == nil {
				return nil
			}
			update(e)
		case <-ctx.Done():
			return unavailable("loading the cluster's state", ctx.Err())
		}
	}
}

func (p *Presence) close() {
	for _, kw := range p.kw {
		kw.Stop()
	}
}

// sessionUpdate applies a change to the sessions bucket, from this node
// or another, unless a later one was applied already.
func (p *Presence) sessionUpdate(e jetstream.KeyValueEntry) {
	k := e.Key()
	nick := unkey(k)
	p.mu.Lock()
	if e.Revision() <= p.revs[k] {
		p.mu.Unlock()
		return
	}
	p.revs[k] = e.Revision()
	old, had := p.online[nick]
	var ws []state.Watcher
	var gone *state.UserInfo
	switch e.Operation() {
	case jetstream.KeyValuePut:
		info, err := decodeUser(e.Value())
		if err != nil {
			p.mu.Unlock()
			p.n.log.Error("skipped a damaged session record", "key", k, "err", err)
			return
		}
		p.online[nick] = entry{info, e.Revision()}
		if !had || old.info.Session != info.Session {
			ws = p.watch.Of(nick)
		}
		if had && old.info.Session != info.Session && old.info.Node == p.n.name {
			delete(p.own, nick) // displaced by another node
		}
		p.mu.Unlock()
		for _, w := range ws {
			w.PresenceChanged(info, true)
		}
		if had && old.info.Session != info.Session && old.info.Node == p.n.name {
			// Someone took over a session of this node's (on_duplicate =
			// replace, or a dead-session PING): it must end here.
			if h := p.n.bus.handler(); h != nil {
				h.End(old.info, "Logged in from elsewhere")
			}
		}
	default: // deleted, purged
		if had {
			delete(p.online, nick)
			ws = p.watch.Of(nick)
			gone = &old.info
		}
		p.mu.Unlock()
		if gone == nil {
			return
		}
		for _, w := range ws {
			w.PresenceChanged(*gone, false)
		}
		if gone.Node != p.n.name {
			// A session on another node is gone. Its QUIT comes over the
			// bus, with its reason, unless its node died: then, a moment
			// later, this is how the room hears (a member already gone is
			// not removed twice).
			info := *gone
			time.AfterFunc(quitGrace, func() {
				if h := p.n.bus.handler(); h != nil {
					h.Room(state.RoomEvent{Kind: state.RoomQuit, From: info, Text: "Connection lost", Time: p.n.cfg.Now()})
				}
			})
		}
	}
}

func (p *Presence) seenUpdate(e jetstream.KeyValueEntry) {
	nick := unkey(e.Key())
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(p.seen, nick)
		return
	}
	if s, err := decodeSeen(e.Value()); err == nil {
		p.seen[nick] = s
	}
}

// nodeUpdate follows heartbeats. A lease that lapsed (the server's marker,
// or a delete at a clean stop) means the node is gone: its sessions end.
func (p *Presence) nodeUpdate(e jetstream.KeyValueEntry) {
	node := unkey(e.Key())
	p.mu.Lock()
	if e.Operation() == jetstream.KeyValuePut {
		p.alive[node] = string(e.Value())
		p.mu.Unlock()
		return
	}
	delete(p.alive, node)
	p.mu.Unlock()
	if node != p.n.name {
		go p.endNode(node)
	}
}

// sweepDeadNodes ends the sessions of nodes without a lease, for the case
// where the lapse marker was missed (a watch restarting).
func (p *Presence) sweepDeadNodes() {
	ctx, cancel := p.n.op(context.Background())
	defer cancel()
	keys, err := p.n.nodes.ListKeys(ctx)
	if err != nil {
		return
	}
	alive := map[string]bool{}
	for k := range keys.Keys() {
		alive[unkey(k)] = true
	}
	p.mu.RLock()
	dead := map[string]bool{}
	for _, e := range p.online {
		if node := e.info.Node; node != p.n.name && !alive[node] {
			dead[node] = true
		}
	}
	p.mu.RUnlock()
	for node := range dead {
		p.endNode(node)
	}
}

// endNode removes the claims of a node whose lease lapsed, and records
// its users as seen now. Every surviving node does it; the deletes are at
// the revision each saw, so they are idempotent and never remove a claim
// made since.
func (p *Presence) endNode(node string) {
	p.mu.RLock()
	_, back := p.alive[node]
	var gone []entry
	for _, e := range p.online {
		if e.info.Node == node {
			gone = append(gone, e)
		}
	}
	p.mu.RUnlock()
	if back || len(gone) == 0 {
		return
	}
	p.n.log.Warn("a node's lease lapsed; ending its sessions", "dead", node, "sessions", len(gone))
	ctx, cancel := context.WithTimeout(context.Background(), 4*p.n.cfg.OpTimeout)
	defer cancel()
	now := p.n.cfg.Now()
	for _, e := range gone {
		p.deleteClaim(ctx, e)
		p.putSeen(ctx, e.info, now)
	}
}

func (p *Presence) deleteClaim(ctx context.Context, e entry) {
	ctx, cancel := p.n.op(ctx)
	defer cancel()
	err := p.n.sessions.Delete(ctx, key(accounts.Fold(e.info.Nick)), jetstream.LastRevision(e.rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		p.n.log.Warn("removing a stale session claim", "nick", e.info.Nick, "err", err)
	}
}

// Claim makes info the session of its nick across the cluster.
func (p *Presence) Claim(ctx context.Context, info state.UserInfo, displace string) error {
	if err := p.n.down(); err != nil {
		return err
	}
	nick := accounts.Fold(info.Nick)
	k := key(nick)
	val := encodeUser(info)
	for range 5 { // each round lost a race to another claim; a few are plenty
		octx, cancel := p.n.op(ctx)
		rev, err := p.n.sessions.Create(octx, k, val)
		cancel()
		if err == nil {
			p.claimed(nick, info, rev)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return unavailable("claiming "+info.Nick, err)
		}
		octx, cancel = p.n.op(ctx)
		cur, err := p.n.sessions.Get(octx, k)
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released meanwhile
		}
		if err != nil {
			return unavailable("claiming "+info.Nick, err)
		}
		holder, err := decodeUser(cur.Value())
		if err != nil {
			return unavailable("reading the claim of "+info.Nick, err)
		}
		if (displace == "" || holder.Session != displace) && p.nodeAlive(holder.Node) {
			return &state.HeldError{Holder: holder}
		}
		// Displacing exactly the holder, or a stale claim whose node is
		// gone and whose lease lapsed.
		octx, cancel = p.n.op(ctx)
		rev, err = p.n.sessions.Update(octx, k, val, cur.Revision())
		cancel()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return unavailable("claiming "+info.Nick, err)
		}
		p.claimed(nick, info, rev)
		return nil
	}
	return unavailable("claiming "+info.Nick, errors.New("too many concurrent claims"))
}

func (p *Presence) nodeAlive(node string) bool {
	if node == p.n.name {
		return true
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.alive[node]
	return ok
}

// claimed applies this node's successful claim to its copy at once.
func (p *Presence) claimed(nick string, info state.UserInfo, rev uint64) {
	p.mu.Lock()
	old, had := p.online[nick]
	if rev > p.revs[key(nick)] {
		p.revs[key(nick)] = rev
		p.online[nick] = entry{info, rev}
	}
	p.own[nick] = rev
	ws := p.watch.Of(nick)
	p.mu.Unlock()
	if !had || old.info.Session != info.Session {
		for _, w := range ws {
			w.PresenceChanged(info, true)
		}
	}
}

// Release ends info's claim if this session still holds it.
func (p *Presence) Release(ctx context.Context, info state.UserInfo, at time.Time) bool {
	nick := accounts.Fold(info.Nick)
	p.mu.Lock()
	rev, mine := p.own[nick]
	cur, ok := p.online[nick]
	if !mine || !ok || cur.info.Session != info.Session {
		p.mu.Unlock()
		return false
	}
	delete(p.own, nick)
	p.mu.Unlock()
	octx, cancel := p.n.op(ctx)
	err := p.n.sessions.Delete(octx, key(nick), jetstream.LastRevision(rev))
	cancel()
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			p.n.log.Warn("releasing a session claim", "nick", info.Nick, "err", err)
		}
		return false
	}
	// The watch may have applied the delete already; whichever of the two
	// takes the entry out tells the watchers, so they hear it once.
	var ws []state.Watcher
	p.mu.Lock()
	if cur, ok := p.online[nick]; ok && cur.info.Session == info.Session {
		delete(p.online, nick)
		ws = p.watch.Of(nick)
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.PresenceChanged(info, false)
	}
	p.putSeen(ctx, info, at)
	return true
}

func (p *Presence) putSeen(ctx context.Context, info state.UserInfo, at time.Time) {
	if info.Account == "" {
		return
	}
	s := state.Seen{Nick: info.Nick, User: info.User, Host: info.Host, Realname: info.Realname, At: at}
	nick := accounts.Fold(info.Nick)
	p.mu.Lock()
	p.seen[nick] = s
	p.mu.Unlock()
	ctx, cancel := p.n.op(ctx)
	defer cancel()
	if _, err := p.n.seen.Put(ctx, key(nick), encodeSeen(s)); err != nil {
		p.n.log.Warn("recording a last-seen time", "nick", info.Nick, "err", err)
	}
}

// Update replaces the value of this node's claim (away, PART).
func (p *Presence) Update(ctx context.Context, info state.UserInfo) error {
	nick := accounts.Fold(info.Nick)
	p.mu.RLock()
	rev, mine := p.own[nick]
	cur := p.online[nick]
	p.mu.RUnlock()
	if !mine || cur.info.Session != info.Session {
		return nil
	}
	ctx, cancel := p.n.op(ctx)
	defer cancel()
	newRev, err := p.n.sessions.Update(ctx, key(nick), encodeUser(info), rev)
	if err != nil {
		return unavailable("updating "+info.Nick, err)
	}
	p.mu.Lock()
	if p.own[nick] == rev {
		p.own[nick] = newRev
	}
	if newRev > p.revs[key(nick)] {
		p.revs[key(nick)] = newRev
		p.online[nick] = entry{info, newRev}
	}
	p.mu.Unlock()
	return nil
}

// reclaim, after NATS came back, claims this node's sessions again: its
// lease may have lapsed meanwhile and other nodes ended them. A session
// whose nick someone else has taken since is ended here.
func (p *Presence) reclaim() {
	p.mu.RLock()
	type claim struct {
		nick string
		info state.UserInfo
	}
	var mine []claim
	for nick := range p.own {
		if e, ok := p.online[nick]; ok {
			mine = append(mine, claim{nick, e.info})
		}
	}
	p.mu.RUnlock()
	for _, c := range mine {
		ctx, cancel := p.n.op(context.Background())
		cur, err := p.n.sessions.Get(ctx, key(c.nick))
		cancel()
		if err == nil {
			if holder, derr := decodeUser(cur.Value()); derr == nil && holder.Session == c.info.Session {
				continue // still ours
			}
		}
		if err := p.Claim(context.Background(), c.info, ""); err != nil {
			p.n.log.Warn("a session lost its claim while NATS was away", "nick", c.info.Nick, "err", err)
			if h := p.n.bus.handler(); h != nil {
				h.End(c.info, "Logged in from elsewhere")
			}
		}
	}
}

// Lookup returns the session holding nick.
func (p *Presence) Lookup(nick string) (state.UserInfo, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.online[accounts.Fold(nick)]
	return e.info, ok
}

// Online calls fn for every online user until it returns false.
func (p *Presence) Online(fn func(state.UserInfo) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, e := range p.online {
		if !fn(e.info) {
			return
		}
	}
}

// Count is how many users are online in the cluster.
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

// Recent calls fn for every user not online who left at or after since.
func (p *Presence) Recent(since time.Time, fn func(state.Seen) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for nick, s := range p.seen {
		if _, on := p.online[nick]; on || s.At.Before(since) {
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

// remoteMembers is who is in the room on other nodes, for a server that
// starts after them.
func (p *Presence) remoteMembers() []state.UserInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []state.UserInfo
	for _, e := range p.online {
		if e.info.Node != p.n.name && !e.info.Parted {
			out = append(out, e.info)
		}
	}
	return out
}
