package ircd

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

// The standard queries clients send on their own: WHO, WHOIS, WHOWAS,
// ISON and USERHOST. Everything they say of others comes from presence,
// as values.

// online returns the users online, sorted by folded nick.
func (s *Server) online() []state.UserInfo {
	var out []state.UserInfo
	s.presence.Online(func(u state.UserInfo) bool {
		out = append(out, u)
		return true
	})
	slices.SortFunc(out, func(a, b state.UserInfo) int {
		return strings.Compare(accounts.Fold(a.Nick), accounts.Fold(b.Nick))
	})
	return out
}

func handleWHO(c *client, m *irc.Message) {
	s := c.srv
	mask := "*"
	if len(m.Params) > 0 && m.Params[0] != "" && m.Params[0] != "0" {
		mask = m.Params[0]
	}
	var list []state.UserInfo
	if s.room.is(mask) {
		for _, nick := range s.room.memberNicks() {
			if u, ok := s.presence.Lookup(nick); ok {
				list = append(list, u)
			}
		}
		slices.SortFunc(list, func(a, b state.UserInfo) int {
			return strings.Compare(accounts.Fold(a.Nick), accounts.Fold(b.Nick))
		})
	} else {
		g := compileGlob(accounts.Fold(mask))
		for _, u := range s.online() {
			if g.match(u.Nick) || g.match(u.Prefix()) {
				list = append(list, u)
			}
		}
	}
	for _, u := range list {
		ch := "*"
		if s.inRoom(u) {
			ch = s.room.name
		}
		flags := "H"
		if u.Away != "" {
			flags = "G"
		}
		c.reply(irc.RPL_WHOREPLY, ch, u.User, u.Host, s.conf().ServerName, u.Nick, flags, "0 "+u.Realname)
	}
	c.reply(irc.RPL_ENDOFWHO, mask, "End of /WHO list")
}

// inRoom reports whether the online user u is a member of the room.
func (s *Server) inRoom(u state.UserInfo) bool {
	var local *client
	if u.Node == s.node {
		if local = s.session(u.Nick); local == nil {
			return false
		}
	}
	return s.room.hasNick(u.Nick, local)
}

func handleWHOIS(c *client, m *irc.Message) {
	s := c.srv
	nick := m.Params[len(m.Params)-1]
	u, ok := s.presence.Lookup(nick)
	if !ok {
		c.reply(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")
		c.reply(irc.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
		return
	}
	c.reply(irc.RPL_WHOISUSER, u.Nick, u.User, u.Host, "*", u.Realname)
	if s.inRoom(u) {
		c.reply(irc.RPL_WHOISCHANNELS, u.Nick, s.room.name)
	}
	c.reply(irc.RPL_WHOISSERVER, u.Nick, s.conf().ServerName, s.conf().Network)
	if u.Account != "" {
		c.reply(rplWhoisAccount, u.Nick, u.Account, "is logged in as")
	}
	if u.Away != "" {
		c.reply(irc.RPL_AWAY, u.Nick, u.Away)
	}
	idleSince := u.Idle
	if local := s.session(u.Nick); local != nil && local.session == u.Session {
		idleSince = time.Unix(local.idle.Load(), 0) // presence is not told of every line
	}
	idle := int64(max(s.now().Sub(idleSince), 0) / time.Second)
	c.reply(irc.RPL_WHOISIDLE, u.Nick, strconv.FormatInt(idle, 10), strconv.FormatInt(u.Signon.Unix(), 10), "seconds idle, signon time")
	c.reply(irc.RPL_ENDOFWHOIS, u.Nick, "End of /WHOIS list")
}

func handleWHOWAS(c *client, m *irc.Message) {
	s := c.srv
	nick := m.Params[0]
	seen, ok := s.presence.LastSeen(nick)
	if !ok {
		c.reply(irc.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
	} else {
		name := seen.Nick
		if canonical, isAccount := s.accounts.DB().Lookup(nick); isAccount {
			name = canonical
		}
		if name == "" {
			name = nick
		}
		user, host, realname := seen.User, seen.Host, seen.Realname
		if user == "" { // recorded before sessions' details were kept
			user, host, realname = name, "offline", name
		}
		c.reply(irc.RPL_WHOWASUSER, name, user, host, "*", realname)
		c.reply(irc.RPL_WHOISSERVER, name, s.conf().ServerName, "last seen "+seen.At.UTC().Format(time.RFC1123))
	}
	c.reply(irc.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")
}

func handleISON(c *client, m *irc.Message) {
	var on []string
	for _, p := range m.Params {
		for _, nick := range strings.Fields(p) {
			if u, ok := c.srv.presence.Lookup(nick); ok {
				on = append(on, u.Nick)
			}
		}
	}
	c.reply(irc.RPL_ISON, strings.Join(on, " "))
}

func handleUSERHOST(c *client, m *irc.Message) {
	var out []string
	for i, nick := range m.Params {
		if i == 5 {
			break
		}
		if u, ok := c.srv.presence.Lookup(nick); ok {
			away := "+"
			if u.Away != "" {
				away = "-"
			}
			out = append(out, u.Nick+"="+away+u.User+"@"+u.Host)
		}
	}
	c.reply(irc.RPL_USERHOST, strings.Join(out, " "))
}
