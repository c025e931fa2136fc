package ircd

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/state"
)

// join adds c to the room, announces it and sends topic and names.
func (s *Server) join(c *client) {
	if old, ok := s.room.takeRemote(c.nick); ok {
		// The nick's previous session was on a node that died without a
		// word: it leaves before this one joins.
		s.announceStaleQuit(old)
	}
	if !s.room.add(c) {
		return
	}
	if c.parted.Swap(false) { // back after a PART: presence says so
		s.presence.Update(s.ctx, c.info())
	}
	s.bus.Room(state.RoomEvent{Kind: state.RoomJoin, From: c.info(), Time: s.now()})
	c.sendTopic(false)
	c.sendNames()
}

// roomEvent hands a room event, from this node or another, to this node's
// members: each line is encoded at most once per form in use.
func (s *Server) roomEvent(ev state.RoomEvent) {
	local := ev.From.Node == s.node
	var sender *client
	if local {
		if c := s.session(ev.From.Nick); c != nil && c.session == ev.From.Session {
			sender = c
		}
	}
	from := ev.From
	prefix := from.Prefix()
	tags := func(f form) string { return f.tagString(ev.Time, from.Account, ev.Tags, ev.ID) }
	r := s.room
	switch ev.Kind {
	case state.RoomMessage:
		params := []string{r.name, ev.Text}
		if ev.Command == "TAGMSG" {
			params = params[:1]
		} else {
			r.history.add(histEntry{t: ev.Time, id: ev.ID, prefix: prefix, account: from.Account, command: ev.Command, text: ev.Text, tags: ev.Tags})
		}
		var batch *writeBatch
		if sender != nil {
			// A local room message comes from its sender's own reader
			// goroutine (c.privmsg, through the bus, synchronously).
			batch = sender.batch
		}
		r.broadcast(fanout{sender: sender, prefix: prefix, echo: sender != nil && sender.has(capEchoMessage), batch: batch, build: func(f form) []byte {
			if ev.Command == "TAGMSG" && f&formTags == 0 {
				return []byte{} // non-nil: cached as "nothing to send"
			}
			return appendMessage(nil, tags(f), prefix, ev.Command, params...)
		}})
	case state.RoomJoin:
		if !local {
			added, replaced := r.addRemote(from)
			if !added {
				return
			}
			if replaced != nil {
				s.announceStaleQuit(*replaced)
			}
		}
		build := func(f form) []byte {
			params := []string{r.name}
			if f&formExtJoin != 0 {
				acct := from.Account
				if acct == "" {
					acct = "*"
				}
				params = append(params, acct, from.Realname)
			}
			return appendMessage(nil, tags(f&^formExtJoin), prefix, "JOIN", params...)
		}
		if s.quietMembership(r.size()) {
			if sender != nil {
				sender.out.push(build(formOf(sender)))
			}
			return
		}
		r.broadcast(fanout{sender: sender, prefix: prefix, echo: true, lazy: true, forms: formsMessage | formExtJoin, build: build})
	case state.RoomPart:
		params := []string{r.name}
		if ev.Text != "" {
			params = append(params, ev.Text)
		}
		// The leaver always sees its own PART, so send before removing.
		r.broadcast(fanout{sender: sender, prefix: prefix, echo: true, lazy: true, build: func(f form) []byte {
			return appendMessage(nil, tags(f), prefix, "PART", params...)
		}})
		if sender != nil {
			r.remove(sender)
		} else if !local {
			r.removeRemote(from)
		}
	case state.RoomQuit:
		// This node's leaver left the room before the event was sent.
		if !local && !r.removeRemote(from) {
			return
		}
		if s.quietMembership(r.size() + 1) {
			return
		}
		r.broadcast(fanout{sender: sender, prefix: prefix, lazy: true, build: func(f form) []byte {
			return appendMessage(nil, tags(f), prefix, "QUIT", "Quit: "+ev.Text)
		}})
	case state.RoomAway:
		var params []string
		if ev.Text != "" {
			params = []string{ev.Text}
		}
		r.broadcast(fanout{sender: sender, prefix: prefix, onlyCap: capAwayNotify, build: func(f form) []byte {
			return appendMessage(nil, tags(f), prefix, "AWAY", params...)
		}})
	}
}

// announceStaleQuit tells this node's members that a session of another
// node left, when its own QUIT never came (its node died) and the nick is
// joining again.
func (s *Server) announceStaleQuit(m remoteMember) {
	if s.quietMembership(s.room.size() + 1) {
		return
	}
	t := s.now()
	s.room.broadcast(fanout{prefix: m.prefix, lazy: true, build: func(f form) []byte {
		return appendMessage(nil, f.tagString(t, "", "", ""), m.prefix, "QUIT", "Quit: Connection lost")
	}})
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
		if !s.room.is(name) {
			c.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel (this server has one channel: "+s.room.name+")")
			continue
		}
		s.join(c)
	}
}

func handlePART(c *client, m *irc.Message) {
	s := c.srv
	for _, name := range strings.Split(m.Params[0], ",") {
		if !s.room.is(name) {
			c.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel")
			continue
		}
		reason := ""
		if len(m.Params) > 1 {
			reason = sanitize(m.Params[1])
		}
		if !s.room.has(c) {
			c.reply(irc.ERR_NOTONCHANNEL, s.room.name, "You're not on that channel")
			continue
		}
		c.part(reason)
	}
}

func (c *client) part(reason string) {
	s := c.srv
	if !s.room.has(c) {
		return
	}
	s.bus.Room(state.RoomEvent{Kind: state.RoomPart, From: c.info(), Text: reason, Time: s.now()})
	c.parted.Store(true)
	s.presence.Update(s.ctx, c.info())
}

func (c *client) sendTopic(explicit bool) {
	s := c.srv
	topic, by, at := s.room.topicInfo()
	if topic == "" {
		if explicit {
			c.reply(irc.RPL_NOTOPIC, s.room.name, "No topic is set")
		}
		return
	}
	c.reply(irc.RPL_TOPIC, s.room.name, topic)
	c.reply(rplTopicWhoTime, s.room.name, by, strconv.FormatInt(at.Unix(), 10))
}

func (c *client) sendNames() {
	r := c.srv.room
	limit := maxMessageLen - len(c.srv.conf().ServerName) - len(c.nick) - len(r.name) - 20
	r.names(c.has(capUserhostInNames), limit, func(names string) {
		c.reply(irc.RPL_NAMREPLY, "=", r.name, names)
	})
	c.reply(irc.RPL_ENDOFNAMES, r.name, "End of /NAMES list")
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
	if len(m.Params) == 0 || s.room.is(m.Params[0]) {
		c.sendNames()
		return
	}
	c.reply(irc.RPL_ENDOFNAMES, m.Params[0], "End of /NAMES list")
}

func handleTOPIC(c *client, m *irc.Message) {
	s := c.srv
	if !s.room.is(m.Params[0]) {
		c.reply(irc.ERR_NOSUCHCHANNEL, m.Params[0], "No such channel")
		return
	}
	if len(m.Params) > 1 {
		c.reply(irc.ERR_CHANOPRIVSNEEDED, s.room.name, "The topic is set by the server's configuration")
		return
	}
	c.sendTopic(true)
}

func handleLIST(c *client, m *irc.Message) {
	r := c.srv.room
	c.reply(irc.RPL_LISTSTART, "Channel", "Users  Name")
	match := len(m.Params) == 0 || strings.HasPrefix(m.Params[0], ">") || strings.HasPrefix(m.Params[0], "<") ||
		slices.ContainsFunc(strings.Split(m.Params[0], ","), r.is)
	if match {
		topic, _, _ := r.topicInfo()
		c.reply(irc.RPL_LIST, r.name, strconv.Itoa(r.size()), topic)
	}
	c.reply(irc.RPL_LISTEND, "End of /LIST")
}

// handleMODE answers channel modes here and user modes in user_cmds.go.
func handleMODE(c *client, m *irc.Message) {
	s := c.srv
	target := m.Params[0]
	if !strings.HasPrefix(target, "#") {
		userMode(c, m)
		return
	}
	r := s.room
	if !r.is(target) {
		c.reply(irc.ERR_NOSUCHCHANNEL, target, "No such channel")
		return
	}
	if len(m.Params) == 1 {
		c.reply(irc.RPL_CHANNELMODEIS, r.name, "+nt")
		c.reply(rplCreationTime, r.name, strconv.FormatInt(s.created.Unix(), 10))
		return
	}
	switch strings.TrimLeft(m.Params[1], "+") {
	case "b":
		c.reply(irc.RPL_ENDOFBANLIST, r.name, "End of channel ban list")
	case "e":
		c.reply(irc.RPL_ENDOFEXCEPTLIST, r.name, "End of channel exception list")
	case "I":
		c.reply(irc.RPL_ENDOFINVITELIST, r.name, "End of channel invite list")
	default:
		c.reply(irc.ERR_CHANOPRIVSNEEDED, r.name, "Channel modes are fixed on this server")
	}
}
