package ircd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/state"
)

// completeRegistration publishes the session: its silence list is loaded,
// its nick claimed (the one-session rule), then it gets the welcome, joins
// the room and is sent its stored messages. No lock is held across any of
// it; private messages that reach the session before its stored ones are
// queued are held back until then (see mailState).
func (c *client) completeRegistration() {
	s := c.srv
	c.signon = s.now()
	c.idle.Store(c.signon.Unix())
	c.session = newSessionID(s.node, c.id)
	if c.account != "" {
		ctx := c.srv.ctx
		masks, err := s.silences.Silences(ctx, c.key)
		if err != nil {
			s.log.Error("loading silence list", "account", c.account, "err", err)
			c.unavailable()
			return
		}
		c.silence.Store(newSilenceList(masks))
	}
	c.mail.holding = true
	if !s.claim(c) {
		return
	}
	s.mu.Lock()
	s.sessions[c.key] = c
	s.mu.Unlock()
	c.registered = true
	c.reg = nil
	c.regDone.Store(true)
	c.welcome()
	s.join(c)
	c.replayMail()
}

// newSessionID is unique across nodes and restarts.
func newSessionID(node string, conn uint64) string {
	var b [6]byte
	rand.Read(b[:])
	return node + "/" + strconv.FormatUint(conn, 36) + "-" + hex.EncodeToString(b[:])
}

// claim applies the one-session rule. An account already logged in is
// refused, unless on_duplicate = replace (the old session ends) or the old
// session fails to answer a PING within duplicate_ping (it is taken for a
// dead connection, a closed laptop or a lost network, and ended). A
// session of this node that is leaving (leaving) is waited for instead.
// A guest whose nick is taken gets 433 and may pick another.
func (s *Server) claim(c *client) bool {
	ctx := s.ctx
	info := c.info()
	err := s.presence.Claim(ctx, info, "")
	var held *state.HeldError
	if errors.As(err, &held) && c.account != "" {
		cfg := s.conf()
		old := held.Holder
		switch {
		case s.leaving(old):
			if s.awaitRelease(old) {
				err = s.presence.Claim(ctx, info, "")
			}
		case cfg.OnDuplicate == "replace":
			s.bus.End(ctx, old, "Logged in from elsewhere")
			err = s.presence.Claim(ctx, info, old.Session)
		case cfg.DuplicatePing > 0:
			alive, perr := s.bus.Ping(ctx, old, cfg.DuplicatePing)
			switch {
			case perr == nil && !alive:
				s.log.Info("session did not answer a PING; ended for a new login", "account", c.account, "addr", old.Host, "new_addr", c.host)
				s.bus.End(ctx, old, "Ping timeout")
				err = s.presence.Claim(ctx, info, old.Session)
			case s.leaving(old) && s.awaitRelease(old): // it quit meanwhile
				err = s.presence.Claim(ctx, info, "")
			}
		}
	}
	switch {
	case err == nil:
		return true
	case errors.As(err, &held) && c.account == "":
		nick := c.nick
		c.nick, c.key, c.prefix, c.reg.pendingNick = "", "", "", ""
		c.reply(irc.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
	case errors.As(err, &held):
		s.log.Info("login refused: already logged in", "account", c.account, "addr", c.host)
		text := "account " + c.account + " is already logged in"
		c.quit(text, text)
	default:
		s.log.Error("claiming a session", "nick", c.nick, "err", err)
		c.unavailable()
	}
	return false
}

// unavailable refuses a login the backends cannot serve now.
func (c *client) unavailable() {
	c.quit("Service unavailable", serviceUnavailable)
}

// leave takes c out of the room, telling the others.
func (s *Server) leave(c *client, reason string) {
	if !s.room.remove(c) {
		return
	}
	s.bus.Room(state.RoomEvent{Kind: state.RoomQuit, From: c.info(), Text: reason, Time: s.now()})
}

// busHandler is the Server's side of the bus: what reaches this node for
// its members and sessions.
type busHandler struct{ s *Server }

func (h busHandler) Room(ev state.RoomEvent) { h.s.roomEvent(ev) }

func (h busHandler) Private(to state.UserInfo, m state.Private) bool {
	c := h.s.session(to.Nick)
	if c == nil || c.session != to.Session {
		return false
	}
	return c.deliverPrivate(m, "", nil)
}

// MailWaiting runs the session's replay on a goroutine of its own: the
// sender that stored the message does not wait for another user's
// mailbox to be read. A closing session reads nothing more; its mail
// waits for the next login.
func (h busHandler) MailWaiting(to state.UserInfo) {
	if c := h.s.session(to.Nick); c != nil && c.session == to.Session && c.quitMsg.Load() == nil {
		c.mailWaiting()
	}
}

// End ends a session that a new login displaces. It leaves the room at
// once, so its QUIT precedes the new session's JOIN.
func (h busHandler) End(who state.UserInfo, reason string) {
	s := h.s
	c := s.session(who.Nick)
	if c == nil || c.session != who.Session {
		return
	}
	c.quit(reason, reason)
	s.leave(c, reason)
}

func (h busHandler) Ping(who state.UserInfo, wait time.Duration) bool {
	c := h.s.session(who.Nick)
	if c == nil || c.session != who.Session {
		return false
	}
	return c.answersPing(wait)
}

// awaitRelease waits up to leavingWait for who to let go of its claim in
// presence, and reports whether it did.
func (s *Server) awaitRelease(who state.UserInfo) bool {
	deadline := time.NewTimer(leavingWait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if u, ok := s.presence.Lookup(who.Nick); !ok || u.Session != who.Session {
			return true
		}
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

// leaving reports whether old, holding an account a login wants, is a
// session of this node on its way out: quitting, or out of the session
// table already while its cleanup lets go of the claim. A user who quits
// and logs straight back in meets it: the ERROR and the closed socket
// reach the client before that cleanup is done.
func (s *Server) leaving(old state.UserInfo) bool {
	if old.Node != s.node {
		return false
	}
	c := s.session(old.Nick)
	return c == nil || c.session != old.Session || c.quitMsg.Load() != nil
}

// leavingWait bounds how long a login waits for a leaving session's claim
// (its cleanup releases it before waiting for anything else).
const leavingWait = 2 * time.Second

// answersPing PINGs c and reports whether any line arrives from it within
// wait. A live client answers in a round trip.
func (c *client) answersPing(wait time.Duration) bool {
	// pingAt is what any line clears; if an idle PING is already out, its
	// answer will do as well.
	c.pingAt.CompareAndSwap(0, c.srv.now().UnixNano())
	c.send("", "PING", c.srv.conf().ServerName)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(max(min(wait/10, 10*time.Millisecond), time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.quitCh:
			return true // leaving anyway; claim waits for it to let go
		case <-deadline.C:
			return c.pingAt.Load() == 0
		case <-tick.C:
			if c.pingAt.Load() == 0 {
				return true
			}
		}
	}
}
