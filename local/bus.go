package local

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/lobbychat/ircd/state"
)

// Bus carries room lines and session requests within one process: every
// call goes straight to the handler the server attached.
type Bus struct {
	h atomic.Pointer[state.BusHandler]
}

// Attach sets the handler; it must be called before any other method.
func (b *Bus) Attach(h state.BusHandler) { b.h.Store(&h) }

func (b *Bus) handler() state.BusHandler { return *b.h.Load() }

// Room hands ev to the room's members.
func (b *Bus) Room(ev state.RoomEvent) error {
	b.handler().Room(ev)
	return nil
}

// Private hands m to the session to.Session.
func (b *Bus) Private(_ context.Context, to state.UserInfo, m state.Private) (bool, error) {
	return b.handler().Private(to, m), nil
}

// MailWaiting tells to's session that it has new stored messages.
func (b *Bus) MailWaiting(_ context.Context, to state.UserInfo) error {
	b.handler().MailWaiting(to)
	return nil
}

// End ends who's session.
func (b *Bus) End(_ context.Context, who state.UserInfo, reason string) error {
	b.handler().End(who, reason)
	return nil
}

// Ping asks who's session to show it is alive within wait.
func (b *Bus) Ping(_ context.Context, who state.UserInfo, wait time.Duration) (bool, error) {
	return b.handler().Ping(who, wait), nil
}
