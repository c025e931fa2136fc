package ircd

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

// MONITOR (IRCv3): clients watch nicks and hear when they come and go.
// The watches are presence's; c.monitoring is the client's own list.

func handleMONITOR(c *client, m *irc.Message) {
	s := c.srv
	switch m.Params[0] {
	case "+":
		if len(m.Params) < 2 {
			c.reply(irc.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
			return
		}
		var online, offline []string
		for _, nick := range strings.Split(m.Params[1], ",") {
			if !accounts.ValidName(nick) {
				continue
			}
			key := accounts.Fold(nick)
			if _, dup := c.monitoring[key]; !dup {
				if len(c.monitoring) >= s.conf().MonitorLimit {
					c.reply(irc.ERR_MONLISTFULL, strconv.Itoa(s.conf().MonitorLimit), nick, "Monitor list is full.")
					break
				}
				if c.monitoring == nil {
					c.monitoring = make(map[string]string)
				}
				c.monitoring[key] = nick
				s.presence.Watch(key, c)
			}
			if u, ok := s.presence.Lookup(nick); ok {
				online = append(online, u.Prefix())
			} else {
				offline = append(offline, nick)
			}
		}
		c.monitorStatus(online, offline)
	case "-":
		if len(m.Params) < 2 {
			c.reply(irc.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
			return
		}
		for _, nick := range strings.Split(m.Params[1], ",") {
			key := accounts.Fold(nick)
			if _, ok := c.monitoring[key]; ok {
				delete(c.monitoring, key)
				s.presence.Unwatch(key, c)
			}
		}
	case "C", "c":
		c.unmonitorAll()
	case "L", "l":
		var list []string
		for _, nick := range c.monitoring {
			list = append(list, nick)
		}
		slices.Sort(list)
		for _, chunk := range chunkCSV(list, 400) {
			c.reply(irc.RPL_MONLIST, chunk)
		}
		c.reply(irc.RPL_ENDOFMONLIST, "End of MONITOR list")
	case "S", "s":
		var online, offline []string
		for key, nick := range c.monitoring {
			if u, ok := s.presence.Lookup(key); ok {
				online = append(online, u.Prefix())
			} else {
				offline = append(offline, nick)
			}
		}
		c.monitorStatus(online, offline)
	default:
		c.reply(errUnknownSubcmd, m.Params[0], "Unknown MONITOR subcommand")
	}
}

// monitorStatus sends 730/731 for the given online masks and offline nicks.
func (c *client) monitorStatus(online, offline []string) {
	for _, chunk := range chunkCSV(online, 400) {
		c.reply(irc.RPL_MONONLINE, chunk)
	}
	for _, chunk := range chunkCSV(offline, 400) {
		c.reply(irc.RPL_MONOFFLINE, chunk)
	}
}

// PresenceChanged is presence telling a watcher that a nick it monitors
// came online or left (state.Watcher).
func (c *client) PresenceChanged(u state.UserInfo, online bool) {
	if u.Session == c.session {
		return
	}
	if online {
		c.reply(irc.RPL_MONONLINE, u.Prefix())
	} else {
		c.reply(irc.RPL_MONOFFLINE, u.Nick)
	}
}

// unmonitorAll drops every watch of c's; the reader calls it, and cleanup.
func (c *client) unmonitorAll() {
	for key := range c.monitoring {
		c.srv.presence.Unwatch(key, c)
	}
	c.monitoring = nil
}
