package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lobbychat/ircd/state"
)

// Bus carries room events over core NATS and requests to one session to
// the node holding it. What is for this node's own sessions never leaves
// the process.
type Bus struct {
	n    *Node
	h    atomic.Pointer[state.BusHandler]
	subs []*nats.Subscription
}

func (b *Bus) handler() state.BusHandler {
	if p := b.h.Load(); p != nil {
		return *p
	}
	return nil
}

// Attach sets this node's handler and starts taking what other nodes
// send. The room's members on other nodes are handed to it first, as
// JOINs, so a node that starts late knows who is in the room.
func (b *Bus) Attach(h state.BusHandler) {
	b.h.Store(&h)
	for _, u := range b.n.presence.remoteMembers() {
		h.Room(state.RoomEvent{Kind: state.RoomJoin, From: u, Time: u.Signon})
	}
	sub := func(nc *nats.Conn, subject string, fn nats.MsgHandler) {
		s, err := nc.Subscribe(subject, fn)
		if err != nil {
			b.n.log.Error("subscribing", "subject", subject, "err", err)
			return
		}
		// A node busy fanning out a burst must not drop room lines: the
		// default pending limit (64 MB) is raised, and a slow consumer is
		// logged by the connection's error handler.
		s.SetPendingLimits(1<<20, 512<<20)
		b.subs = append(b.subs, s)
	}
	sub(b.n.room, subjectRoom, func(m *nats.Msg) {
		ev, err := decodeRoomEvent(m.Data)
		if err != nil {
			b.n.log.Warn("dropped a malformed room event", "err", err)
			return
		}
		h.Room(ev)
	})
	sub(b.n.nc, nodeSubject(b.n.name, "private"), func(m *nats.Msg) {
		p, err := decodePrivate(m.Data)
		if err != nil {
			m.Respond([]byte{0})
			return
		}
		ok := h.Private(p.To, p.M)
		m.Respond(boolByte(ok))
	})
	sub(b.n.nc, nodeSubject(b.n.name, "mail"), func(m *nats.Msg) {
		if u, err := decodeUser(m.Data); err == nil {
			h.MailWaiting(u)
		}
	})
	sub(b.n.nc, nodeSubject(b.n.name, "end"), func(m *nats.Msg) {
		d := newDecoder(m.Data)
		who, reason := d.user(), d.str()
		if d.done() == nil {
			h.End(who, reason)
		}
		m.Respond([]byte{1})
	})
	sub(b.n.nc, nodeSubject(b.n.name, "ping"), func(m *nats.Msg) {
		d := newDecoder(m.Data)
		who, wait := d.user(), time.Duration(d.int())
		if d.done() != nil {
			m.Respond([]byte{0})
			return
		}
		go func() { m.Respond(boolByte(h.Ping(who, wait))) }() // it waits up to wait
	})
	// Subscriptions take effect when the server has them: until then,
	// lines for this node would be dropped.
	for _, nc := range []*nats.Conn{b.n.room, b.n.nc} {
		if err := nc.FlushTimeout(b.n.cfg.OpTimeout); err != nil {
			b.n.log.Warn("subscriptions not confirmed by NATS", "err", err)
		}
	}
}

func boolByte(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

// Room hands ev to this node's members, then to every other node.
func (b *Bus) Room(ev state.RoomEvent) error {
	if h := b.handler(); h != nil {
		h.Room(ev)
	}
	if err := b.n.room.Publish(subjectRoom, encodeRoomEvent(ev)); err != nil {
		return unavailable("publishing a room event", err)
	}
	return nil
}

// Private delivers m to the session to.Session on its node. No responder
// (the node is gone) is "not delivered": the sender stores the message. A
// timeout is an error and not delivered either; if the message did reach
// the session, the stored copy has the same id and is not replayed.
func (b *Bus) Private(_ context.Context, to state.UserInfo, m state.Private) (bool, error) {
	if to.Node == b.n.name {
		if h := b.handler(); h != nil {
			return h.Private(to, m), nil
		}
		return false, nil
	}
	// nc.Request bounds the wait with a pooled timer; a context with a
	// deadline per message costs a timer of its own (the hot path).
	reply, err := b.n.nc.Request(nodeSubject(to.Node, "private"), encodePrivate(private{To: to, M: m}), b.n.cfg.OpTimeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return false, nil
	case err != nil:
		return false, unavailable("delivering to "+to.Nick, err)
	}
	return len(reply.Data) == 1 && reply.Data[0] == 1, nil
}

// MailWaiting tells to's session that it has new stored messages.
func (b *Bus) MailWaiting(_ context.Context, to state.UserInfo) error {
	if to.Node == b.n.name {
		if h := b.handler(); h != nil {
			h.MailWaiting(to)
		}
		return nil
	}
	return b.n.nc.Publish(nodeSubject(to.Node, "mail"), encodeUser(to))
}

// End ends who's session on its node, and returns once it has left.
func (b *Bus) End(ctx context.Context, who state.UserInfo, reason string) error {
	if who.Node == b.n.name {
		if h := b.handler(); h != nil {
			h.End(who, reason)
		}
		return nil
	}
	e := encoder{b: []byte{codecVersion}}
	e.user(who)
	e.str(reason)
	ctx, cancel := b.n.op(ctx)
	defer cancel()
	_, err := b.n.nc.RequestWithContext(ctx, nodeSubject(who.Node, "end"), e.b)
	if err != nil && !errors.Is(err, nats.ErrNoResponders) {
		return unavailable("ending a session of "+who.Nick, err)
	}
	return nil
}

// Ping asks who's session, on its node, to show it is alive within wait.
// A node that does not answer at all counts as a dead session.
func (b *Bus) Ping(ctx context.Context, who state.UserInfo, wait time.Duration) (bool, error) {
	if who.Node == b.n.name {
		if h := b.handler(); h != nil {
			return h.Ping(who, wait), nil
		}
		return false, nil
	}
	e := encoder{b: []byte{codecVersion}}
	e.user(who)
	e.int(int64(wait))
	ctx, cancel := context.WithTimeout(ctx, wait+b.n.cfg.OpTimeout)
	defer cancel()
	reply, err := b.n.nc.RequestWithContext(ctx, nodeSubject(who.Node, "ping"), e.b)
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded):
		return false, nil
	case err != nil:
		return false, unavailable("asking a session of "+who.Nick, err)
	}
	return len(reply.Data) == 1 && reply.Data[0] == 1, nil
}

func (b *Bus) close() {
	for _, s := range b.subs {
		s.Unsubscribe()
	}
}
