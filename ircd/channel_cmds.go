package ircd

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/irc.v4"
)

// join adds c to the channel, announces it and sends topic and names.
func (s *Server) join(c *client) {
	if !s.channel.add(c) {
		return
	}
	t := s.now()
	build := func(f form) []byte {
		params := []string{s.conf().Channel}
		if f&formExtJoin != 0 {
			acct := c.account
			if acct == "" {
				acct = "*"
			}
			params = append(params, acct, c.realname)
		}
		return appendMessage(nil, f.tagString(t, c, ""), c.prefix, "JOIN", params...)
	}
	if s.quietMembership(s.channel.size()) {
		c.out.push(build(formOf(c)))
	} else {
		s.channel.broadcast(fanout{sender: c, echo: true, lazy: true, forms: formsMessage | formExtJoin, build: build})
	}
	c.sendTopic(false)
	c.sendNames()
}

// quietMembership reports whether a channel of members (counting the
// one joining or leaving) is past announce_limit, so the change is not
// announced: announcing costs O(members) per join or quit.
func (s *Server) quietMembership(members int) bool {
	limit := s.conf().AnnounceLimit
	return limit > 0 && members > limit
}

func handleJOIN(c *client, m *irc.Message) {
	s := c.srv
	if m.Params[0] == "0" {
		c.part("Left all channels")
		return
	}
	for _, name := range strings.Split(m.Params[0], ",") {
		if name == "" {
			continue
		}
		if !strings.EqualFold(name, s.conf().Channel) {
			c.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel (this server has one channel: "+s.conf().Channel+")")
			continue
		}
		s.join(c)
	}
}

func handlePART(c *client, m *irc.Message) {
	s := c.srv
	for _, name := range strings.Split(m.Params[0], ",") {
		if !strings.EqualFold(name, s.conf().Channel) {
			c.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel")
			continue
		}
		reason := ""
		if len(m.Params) > 1 {
			reason = sanitize(m.Params[1])
		}
		if !s.channel.has(c) {
			c.reply(irc.ERR_NOTONCHANNEL, s.conf().Channel, "You're not on that channel")
			continue
		}
		c.part(reason)
	}
}

func (c *client) part(reason string) {
	s := c.srv
	if !s.channel.has(c) {
		return
	}
	t := s.now()
	params := []string{s.conf().Channel}
	if reason != "" {
		params = append(params, reason)
	}
	// The leaver always sees its own PART, so send before removing.
	s.channel.broadcast(fanout{sender: c, echo: true, lazy: true, build: func(f form) []byte {
		return appendMessage(nil, f.tagString(t, c, ""), c.prefix, "PART", params...)
	}})
	s.channel.remove(c)
}

func (c *client) sendTopic(explicit bool) {
	s := c.srv
	topic, by, at := s.channel.topicInfo()
	if topic == "" {
		if explicit {
			c.reply(irc.RPL_NOTOPIC, s.conf().Channel, "No topic is set")
		}
		return
	}
	c.reply(irc.RPL_TOPIC, s.conf().Channel, topic)
	c.reply(rplTopicWhoTime, s.conf().Channel, by, strconv.FormatInt(at.Unix(), 10))
}

func (c *client) sendNames() {
	cfg := c.srv.conf()
	limit := maxMessageLen - len(cfg.ServerName) - len(c.nick) - len(cfg.Channel) - 20
	c.srv.channel.names(c.has(capUserhostInNames), limit, func(names string) {
		c.reply(irc.RPL_NAMREPLY, "=", cfg.Channel, names)
	})
	c.reply(irc.RPL_ENDOFNAMES, cfg.Channel, "End of /NAMES list")
}

// chunkWords joins words with spaces into strings of at most limit bytes.
func chunkWords(words []string, limit int) []string { return chunkJoin(words, ' ', limit) }

// chunkCSV is chunkWords with commas, for MONITOR's lists.
func chunkCSV(items []string, limit int) []string { return chunkJoin(items, ',', limit) }

func chunkJoin(items []string, sep byte, limit int) []string {
	var out []string
	var b strings.Builder
	for _, it := range items {
		if b.Len() > 0 && b.Len()+1+len(it) > limit {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(it)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

func handleNAMES(c *client, m *irc.Message) {
	s := c.srv
	if len(m.Params) == 0 || strings.EqualFold(m.Params[0], s.conf().Channel) {
		c.sendNames()
		return
	}
	c.reply(irc.RPL_ENDOFNAMES, m.Params[0], "End of /NAMES list")
}

func handleTOPIC(c *client, m *irc.Message) {
	s := c.srv
	if !strings.EqualFold(m.Params[0], s.conf().Channel) {
		c.reply(irc.ERR_NOSUCHCHANNEL, m.Params[0], "No such channel")
		return
	}
	if len(m.Params) > 1 {
		c.reply(irc.ERR_CHANOPRIVSNEEDED, s.conf().Channel, "The topic is set by the server's configuration")
		return
	}
	c.sendTopic(true)
}

func handleLIST(c *client, m *irc.Message) {
	s := c.srv
	c.reply(irc.RPL_LISTSTART, "Channel", "Users  Name")
	if len(m.Params) == 0 || strings.Contains(","+strings.ToLower(m.Params[0])+",", ","+strings.ToLower(s.conf().Channel)+",") || strings.HasPrefix(m.Params[0], ">") || strings.HasPrefix(m.Params[0], "<") {
		topic, _, _ := s.channel.topicInfo()
		c.reply(irc.RPL_LIST, s.conf().Channel, strconv.Itoa(s.channel.size()), topic)
	}
	c.reply(irc.RPL_LISTEND, "End of /LIST")
}

func handleMODE(c *client, m *irc.Message) {
	s := c.srv
	target := m.Params[0]
	if strings.HasPrefix(target, "#") {
		if !strings.EqualFold(target, s.conf().Channel) {
			c.reply(irc.ERR_NOSUCHCHANNEL, target, "No such channel")
			return
		}
		if len(m.Params) == 1 {
			c.reply(irc.RPL_CHANNELMODEIS, s.conf().Channel, "+nt")
			c.reply(rplCreationTime, s.conf().Channel, strconv.FormatInt(s.created.Unix(), 10))
			return
		}
		modes := strings.TrimLeft(m.Params[1], "+")
		switch modes {
		case "b":
			c.reply(irc.RPL_ENDOFBANLIST, s.conf().Channel, "End of channel ban list")
		case "e":
			c.reply(irc.RPL_ENDOFEXCEPTLIST, s.conf().Channel, "End of channel exception list")
		case "I":
			c.reply(irc.RPL_ENDOFINVITELIST, s.conf().Channel, "End of channel invite list")
		default:
			c.reply(irc.ERR_CHANOPRIVSNEEDED, s.conf().Channel, "Channel modes are fixed on this server")
		}
		return
	}
	if !strings.EqualFold(target, c.nick) {
		if s.lookup(target) == nil {
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

func handleAWAY(c *client, m *irc.Message) {
	s := c.srv
	msg := ""
	if len(m.Params) > 0 {
		msg = sanitize(m.Params[0])
	}
	msg = truncateUTF8(msg, 200)
	params := []string{}
	if msg == "" {
		c.away.Store(nil)
		c.reply(irc.RPL_UNAWAY, "You are no longer marked as being away")
	} else {
		c.away.Store(&msg)
		c.reply(irc.RPL_NOWAWAY, "You have been marked as being away")
		params = append(params, msg)
	}
	t := s.now()
	s.channel.broadcast(fanout{sender: c, onlyCap: capAwayNotify, build: func(f form) []byte {
		return appendMessage(nil, f.tagString(t, c, ""), c.prefix, "AWAY", params...)
	}})
}

func handleVERSION(c *client, _ *irc.Message) {
	cfg := c.srv.conf()
	c.reply(irc.RPL_VERSION, cfg.Version, cfg.ServerName, "IRC chat server with offline messages")
	c.isupport()
}

func handleTIME(c *client, _ *irc.Message) {
	c.reply(irc.RPL_TIME, c.srv.conf().ServerName, c.srv.now().UTC().Format(time.RFC1123))
}
