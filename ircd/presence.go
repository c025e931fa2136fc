package ircd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
)

func sortClients(cs []*client) {
	slices.SortFunc(cs, func(a, b *client) int { return strings.Compare(a.key, b.key) })
}

// others returns the registered clients other than c, sorted.
func (s *Server) others(c *client) []*client {
	s.mu.RLock()
	out := make([]*client, 0, len(s.users))
	for _, u := range s.users {
		if u != c {
			out = append(out, u)
		}
	}
	s.mu.RUnlock()
	sortClients(out)
	return out
}

// noticeList sends items as server NOTICEs, each line under the 512-byte
// limit, with head before the first item of each line.
func (c *client) noticeList(head string, items []string) {
	limit := maxMessageLen - len(c.srv.conf().ServerName) - len(c.nick) - len(head) - 40
	for _, line := range chunkWords(items, limit) {
		c.notice(head + line)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func handleWHOELSE(c *client, _ *irc.Message) {
	others := c.srv.others(c)
	names := make([]string, len(others))
	for i, o := range others {
		names[i] = o.nick
	}
	c.noticeList("Online: ", names)
	c.notice(plural(len(names), "other user", "other users") + " online")
}

func handleWHOLASTHR(c *client, _ *irc.Message) {
	s := c.srv
	now := s.now()
	since := now.Add(-s.conf().Recent)
	type seen struct {
		key, text string
	}
	var list []seen
	s.mu.RLock()
	for key, u := range s.users {
		if u != c {
			list = append(list, seen{key, u.nick + " (online now)"})
		}
	}
	db := s.accounts.DB()
	for key, at := range s.lastSeen {
		if _, online := s.users[key]; online || key == c.key || at.Before(since) {
			continue
		}
		name := key
		if canonical, ok := db.Lookup(key); ok {
			name = canonical
		}
		list = append(list, seen{key, fmt.Sprintf("%s (left %s UTC, %s ago)", name, at.UTC().Format("15:04"), ago(now.Sub(at)))})
	}
	s.mu.RUnlock()
	slices.SortFunc(list, func(a, b seen) int { return strings.Compare(a.key, b.key) })
	items := make([]string, len(list))
	for i, l := range list {
		items[i] = l.text
		if i < len(list)-1 {
			items[i] += ","
		}
	}
	c.noticeList("Last "+shortDuration(s.conf().Recent)+": ", items)
	c.notice(plural(len(list), "other user", "other users") + " connected in the last " + shortDuration(s.conf().Recent))
}

func ago(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())) + "s"
	}
	return strconv.Itoa(int(d.Minutes())) + "m"
}

func shortDuration(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d.Hours())) + " hours"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d.Minutes())) + " minutes"
	}
	return d.String()
}

func handleWHO(c *client, m *irc.Message) {
	s := c.srv
	mask := "*"
	if len(m.Params) > 0 && m.Params[0] != "" && m.Params[0] != "0" {
		mask = m.Params[0]
	}
	var list []*client
	channel := "*"
	if strings.EqualFold(mask, s.conf().Channel) {
		list = s.channel.list()
		channel = s.conf().Channel
	} else {
		g := compileGlob(accounts.Fold(mask))
		for _, u := range append(s.others(c), c) {
			if g.match(u.key) || g.match(u.prefix) {
				list = append(list, u)
			}
		}
	}
	sortClients(list)
	for _, u := range list {
		ch := channel
		if ch == "*" && s.channel.has(u) {
			ch = s.conf().Channel
		}
		flags := "H"
		if u.away.Load() != nil {
			flags = "G"
		}
		c.reply(irc.RPL_WHOREPLY, ch, u.user, u.host, s.conf().ServerName, u.nick, flags, "0 "+u.realname)
	}
	c.reply(irc.RPL_ENDOFWHO, mask, "End of /WHO list")
}

func handleWHOIS(c *client, m *irc.Message) {
	s := c.srv
	nick := m.Params[len(m.Params)-1]
	u := s.lookup(nick)
	if u == nil {
		c.reply(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")
		c.reply(irc.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
		return
	}
	c.reply(irc.RPL_WHOISUSER, u.nick, u.user, u.host, "*", u.realname)
	if s.channel.has(u) {
		c.reply(irc.RPL_WHOISCHANNELS, u.nick, s.conf().Channel)
	}
	c.reply(irc.RPL_WHOISSERVER, u.nick, s.conf().ServerName, s.conf().Network)
	if u.account != "" {
		c.reply(rplWhoisAccount, u.nick, u.account, "is logged in as")
	}
	if away := u.away.Load(); away != nil {
		c.reply(irc.RPL_AWAY, u.nick, *away)
	}
	idle := s.now().Unix() - u.idle.Load()
	c.reply(irc.RPL_WHOISIDLE, u.nick, strconv.FormatInt(max(idle, 0), 10), strconv.FormatInt(u.signon.Unix(), 10), "seconds idle, signon time")
	c.reply(irc.RPL_ENDOFWHOIS, u.nick, "End of /WHOIS list")
}

func handleWHOWAS(c *client, m *irc.Message) {
	s := c.srv
	nick := m.Params[0]
	key := accounts.Fold(nick)
	s.mu.RLock()
	at, ok := s.lastSeen[key]
	s.mu.RUnlock()
	if !ok {
		c.reply(irc.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
	} else {
		name := nick
		if canonical, isAccount := s.accounts.DB().Lookup(nick); isAccount {
			name = canonical
		}
		c.reply(irc.RPL_WHOWASUSER, name, name, "offline", "*", name)
		c.reply(irc.RPL_WHOISSERVER, name, s.conf().ServerName, "last seen "+at.UTC().Format(time.RFC1123))
	}
	c.reply(irc.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")
}

func handleISON(c *client, m *irc.Message) {
	var on []string
	for _, p := range m.Params {
		for _, nick := range strings.Fields(p) {
			if u := c.srv.lookup(nick); u != nil {
				on = append(on, u.nick)
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
		if u := c.srv.lookup(nick); u != nil {
			away := "+"
			if u.away.Load() != nil {
				away = "-"
			}
			out = append(out, u.nick+"="+away+u.user+"@"+u.host)
		}
	}
	c.reply(irc.RPL_USERHOST, strings.Join(out, " "))
}

// MONITOR (IRCv3): clients watch nicks and hear when they come and go.

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
				s.mu.Lock()
				if s.monitors[key] == nil {
					s.monitors[key] = make(map[*client]string)
				}
				s.monitors[key][c] = nick
				s.mu.Unlock()
			}
			if u := s.lookup(nick); u != nil {
				online = append(online, u.prefix)
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
			delete(c.monitoring, key)
			s.mu.Lock()
			delete(s.monitors[key], c)
			if len(s.monitors[key]) == 0 {
				delete(s.monitors, key)
			}
			s.mu.Unlock()
		}
	case "C", "c":
		s.unmonitorAll(c)
		c.monitoring = nil
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
			if u := s.lookup(key); u != nil {
				online = append(online, u.prefix)
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

// notifyMonitors tells watchers of c that it came online or went away.
func (s *Server) notifyMonitors(c *client, online bool) {
	s.mu.RLock()
	watchers := make([]*client, 0, len(s.monitors[c.key]))
	for w := range s.monitors[c.key] {
		if w != c {
			watchers = append(watchers, w)
		}
	}
	s.mu.RUnlock()
	for _, w := range watchers {
		if online {
			w.reply(irc.RPL_MONONLINE, c.prefix)
		} else {
			w.reply(irc.RPL_MONOFFLINE, c.nick)
		}
	}
}

func (s *Server) unmonitorAll(c *client) {
	if len(c.monitoring) == 0 {
		return
	}
	s.mu.Lock()
	for key := range c.monitoring {
		delete(s.monitors[key], c)
		if len(s.monitors[key]) == 0 {
			delete(s.monitors, key)
		}
	}
	s.mu.Unlock()
}
