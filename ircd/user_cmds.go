package ircd

import (
	"strings"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/state"
)

// Commands about the user's own session and the server.

func handlePING(c *client, m *irc.Message) {
	c.send("", "PONG", c.srv.conf().ServerName, m.Params[0])
}

func handlePONG(c *client, m *irc.Message) {
	for _, p := range m.Params {
		if strings.HasPrefix(p, "replay-") && c.ackMail(p) {
			return
		}
	}
}

func handleQUIT(c *client, m *irc.Message) {
	reason := "Client quit"
	if r := sanitize(m.Trailing()); len(m.Params) > 0 && r != "" {
		reason = r
	}
	c.quit(reason, "Quit: "+reason)
}

func handleAWAY(c *client, m *irc.Message) {
	s := c.srv
	msg := ""
	if len(m.Params) > 0 {
		msg = sanitize(m.Params[0])
	}
	msg = truncateUTF8(msg, awayLen)
	if msg == "" {
		c.away.Store(nil)
		c.reply(irc.RPL_UNAWAY, "You are no longer marked as being away")
	} else {
		c.away.Store(&msg)
		c.reply(irc.RPL_NOWAWAY, "You have been marked as being away")
	}
	info := c.info()
	ctx := c.srv.ctx
	if err := s.presence.Update(ctx, info); err != nil {
		s.log.Warn("publishing away status", "nick", c.nick, "err", err)
	}
	s.bus.Room(state.RoomEvent{Kind: state.RoomAway, From: info, Text: msg, Time: s.now()})
}

// userMode is MODE on a nick.
func userMode(c *client, m *irc.Message) {
	s := c.srv
	target := m.Params[0]
	if !strings.EqualFold(target, c.nick) {
		if _, ok := s.presence.Lookup(target); !ok {
			c.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
		} else {
			c.reply(irc.ERR_USERSDONTMATCH, "Can't change mode for other users")
		}
		return
	}
	if len(m.Params) == 1 {
		c.reply(irc.RPL_UMODEIS, "+i")
		return
	}
	// Every user is +i already; accept +i/-i quietly as other servers
	// do for modes that are not settable, and refuse unknown letters.
	for _, r := range strings.Trim(m.Params[1], "+-") {
		if r != 'i' && r != '+' && r != '-' {
			c.reply(irc.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
			return
		}
	}
}

func handleVERSION(c *client, _ *irc.Message) {
	cfg := c.srv.conf()
	c.reply(irc.RPL_VERSION, cfg.Version, cfg.ServerName, "IRC chat server with offline messages")
	c.isupport()
}

func handleTIME(c *client, _ *irc.Message) {
	c.reply(irc.RPL_TIME, c.srv.conf().ServerName, c.srv.now().UTC().Format(time.RFC1123))
}
