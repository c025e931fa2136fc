package ircd

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/state"
)

const maxTargets = 4

func handlePRIVMSG(c *client, m *irc.Message) { c.message("PRIVMSG", m) }
func handleNOTICE(c *client, m *irc.Message)  { c.message("NOTICE", m) }

func (c *client) message(command string, m *irc.Message) {
	notice := command == "NOTICE"
	if len(m.Params) == 0 {
		if !notice {
			c.reply(irc.ERR_NORECIPIENT, "No recipient given ("+command+")")
		}
		return
	}
	if len(m.Params) < 2 || m.Params[1] == "" {
		if !notice {
			c.reply(irc.ERR_NOTEXTTOSEND, "No text to send")
		}
		return
	}
	targets, ok := c.targets(command, m.Params[0], !notice)
	if !ok {
		return
	}
	tags := clientTags(m.Tags)
	for _, t := range targets {
		c.privmsg(command, t, m.Params[1], tags, false)
	}
}

func handleTAGMSG(c *client, m *irc.Message) {
	targets, ok := c.targets("TAGMSG", m.Params[0], true)
	tags := clientTags(m.Tags)
	if !ok || tags == "" {
		return
	}
	for _, t := range targets {
		c.privmsg("TAGMSG", t, "", tags, false)
	}
}

// targets splits a comma-separated target list. More than maxTargets
// (as given, before repeats are dropped) is refused with 407, as
// ISUPPORT's TARGMAX says; a target named twice is kept once, so one
// command never sends a line twice to anybody or stores it twice.
func (c *client) targets(command, list string, answer bool) ([]string, bool) {
	var out []string
	given := 0
	for t := range strings.SplitSeq(list, ",") {
		if t == "" {
			continue
		}
		if given++; given > maxTargets {
			if answer {
				c.reply(irc.ERR_TOOMANYTARGETS, list, "Too many targets (at most "+strconv.Itoa(maxTargets)+" per "+command+")")
			}
			return nil, false
		}
		if !slices.ContainsFunc(out, func(o string) bool { return accounts.Fold(o) == accounts.Fold(t) }) {
			out = append(out, t)
		}
	}
	return out, true
}

// clientTags keeps the client-only tags (those starting with '+') whose
// keys are well formed, re-encoded and in a fixed order, for relaying to
// message-tags clients. A key is passed on only if it follows the
// message-tags grammar, so no control or non-ASCII byte in a key reaches
// another client's parser.
func clientTags(tags irc.Tags) string {
	if len(tags) == 0 {
		return ""
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if strings.HasPrefix(k, "+") && validTagKey(k[1:]) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		if v := tags[k]; v != "" {
			b.WriteByte('=')
			b.WriteString(irc.EncodeTagValue(sanitize(v)))
		}
	}
	return b.String()
}

// validTagKey checks a tag key without its client prefix against IRCv3
// message-tags: an optional vendor (a host name) and '/', then a name of
// ASCII letters, digits and hyphens.
func validTagKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		vendor := k[:i]
		name = k[i+1:]
		if vendor == "" {
			return false
		}
		for j := 0; j < len(vendor); j++ {
			if ch := vendor[j]; !isAlnum(ch) && ch != '-' && ch != '.' {
				return false
			}
		}
	}
	if name == "" {
		return false
	}
	for j := 0; j < len(name); j++ {
		if ch := name[j]; !isAlnum(ch) && ch != '-' {
			return false
		}
	}
	return true
}

func isAlnum(ch byte) bool {
	return 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9'
}

// privmsg routes one message to the room or a user. command is PRIVMSG,
// NOTICE or TAGMSG (text empty). On an event loop (onLoop), a private
// message that would have to wait (to be stored, or sent to another node)
// is left alone: privmsg then reports false, having done nothing. There
// target and text share the read buffer (client.handle): a private
// message to a session here is encoded and queued before privmsg
// returns, and anything kept beyond that (a channel message's event) is
// a copy.
func (c *client) privmsg(command, target, text, tags string, onLoop bool) bool {
	notice := command != "PRIVMSG"
	text = sanitize(text)
	if command != "TAGMSG" && text == "" {
		if !notice {
			c.reply(irc.ERR_NOTEXTTOSEND, "No text to send")
		}
		return true
	}
	s := c.srv
	if strings.HasPrefix(target, "#") {
		s.stats.relayed.Add(1)
		if !s.room.is(target) {
			if !notice {
				c.reply(irc.ERR_NOSUCHCHANNEL, target, "No such channel (this server has one channel: "+s.room.name+")")
			}
			return true
		}
		if !s.room.has(c) {
			if !notice {
				c.reply(irc.ERR_CANNOTSENDTOCHAN, s.room.name, "Cannot send to channel (you are not in it; /join "+s.room.name+")")
			}
			return true
		}
		// Neither bus waits here: the local one fans out, the cluster's
		// publishes without waiting for an answer. Both may keep the
		// text (history, a publish queue).
		if onLoop {
			text = strings.Clone(text)
		}
		s.bus.Room(state.RoomEvent{Kind: state.RoomMessage, From: c.info(), Command: command, Text: text, Tags: tags, Time: c.lineTime(), ID: s.newMsgID()})
		return true
	}
	// The id is made when something needs it (sendPrivate).
	if !s.sendPrivate(c, state.Private{From: c.info(), Command: command, Text: text, Tags: tags, Time: c.lineTime()}, target, onLoop) {
		return false
	}
	s.stats.relayed.Add(1)
	return true
}

// sendPrivate delivers a private message: to the recipient's session if
// it has one that takes it, else into the account's mailbox. The order of
// the checks is what makes a message sent while its recipient logs in
// arrive exactly once: a session is published (claimed) before it reads
// its mailbox, and a sender that stored a message looks again afterwards
// and, finding a session, tells it to read its mailbox once more.
//
// With onLoop, only a session of this node that takes the message is
// tried: otherwise sendPrivate reports false, having done nothing.
func (s *Server) sendPrivate(from *client, m state.Private, target string, onLoop bool) bool {
	notice := m.Command != "PRIVMSG"
	if to, ok := s.presence.Lookup(target); ok {
		var delivered bool
		var err error
		if to.Node == s.node {
			// This node's session: what either bus does for it, with
			// the sender's write batch.
			delivered = s.deliverFrom(from, to, &m)
		} else {
			if onLoop {
				return false
			}
			if m.ID == "" {
				m.ID = s.newMsgID()
			}
			delivered, err = s.bus.Private(s.ctx, to, m)
		}
		if err != nil {
			s.log.Warn("delivering a private message", "to", to.Nick, "err", err)
		}
		if delivered {
			if to.Nick != from.nick {
				from.echoPrivate(m, to.Nick)
			}
			if to.Away != "" && m.Command == "PRIVMSG" {
				from.reply(irc.RPL_AWAY, to.Nick, to.Away)
			}
			return true
		}
		// No session took it (it is closing, or went away): store it
		// rather than lose it.
	}
	if onLoop {
		return false
	}
	canonical, isAccount := s.accounts.DB().Lookup(target)
	if !isAccount || m.Command == "TAGMSG" {
		if !notice {
			from.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
		}
		return true
	}
	key := accounts.Fold(canonical)
	offline := canonical + " is offline; your message will be delivered when they log in"
	ctx := s.ctx
	masks, err := s.silences.Silences(ctx, key)
	if err != nil {
		s.log.Error("reading a silence list", "account", canonical, "err", err)
		from.reply(errCantSendToUser, canonical, "Your message could not be stored; please try again later")
		return true
	}
	if newSilenceList(masks).matches(from.prefix) {
		// The sender must not learn they are silenced: same reply, no store.
		if !notice {
			from.reply(irc.RPL_AWAY, canonical, offline)
		}
		return true
	}
	if m.ID == "" {
		m.ID = s.newMsgID()
	}
	_, err = s.mailbox.Append(ctx, key, state.Message{From: from.prefix, Sender: from.key, Command: m.Command, Text: m.Text, Time: m.Time, MsgID: m.ID})
	switch {
	case errors.Is(err, state.ErrMailboxFull):
		from.reply(errCantSendToUser, canonical, canonical+"'s mailbox is full; your message was not stored")
		return true
	case errors.Is(err, state.ErrSenderShareFull):
		from.reply(errCantSendToUser, canonical, "You have filled your share of "+canonical+"'s mailbox; your message was not stored until they read what you sent")
		return true
	case err != nil:
		s.log.Error("storing offline message", "to", canonical, "err", err)
		from.reply(errCantSendToUser, canonical, "Your message could not be stored; please try again later")
		return true
	}
	s.stats.offlineStored.Add(1)
	if to, ok := s.presence.Lookup(key); ok {
		s.bus.MailWaiting(ctx, to) // logged in meanwhile: may have read its mailbox already
	}
	from.echoPrivate(m, canonical)
	if !notice {
		from.reply(irc.RPL_AWAY, canonical, offline)
	}
	return true
}

// deliverFrom hands m from this node's session from to this node's
// session to.Session, in from's reader goroutine. Delivered so, m is never
// stored as well, so it needs an id only if someone sees it: a
// message-tags recipient, or from's echo with message-tags; m.ID is set
// then.
func (s *Server) deliverFrom(from *client, to state.UserInfo, m *state.Private) bool {
	c := s.session(to.Nick)
	if c == nil || c.session != to.Session {
		return false
	}
	if m.ID == "" && (c.has(capMessageTags) || from.has(capEchoMessage) && from.has(capMessageTags)) {
		m.ID = s.newMsgID()
	}
	return c.deliverPrivate(*m, from.prefix, from.batch)
}

// deliverPrivate queues a private message to this session, unless the
// recipient silenced the sender (then it is dropped, and counts as
// delivered: the sender must not learn of it). It reports false if the
// session is closing.
func (c *client) deliverPrivate(m state.Private, prefix string, b *writeBatch) bool {
	if prefix == "" {
		prefix = m.From.Prefix()
	}
	if c.silence.Load().matches(prefix) {
		return true
	}
	f := formOf(c) & formsMessage
	if m.Command == "TAGMSG" && f&formTags == 0 {
		return true // nothing to show a client without message-tags
	}
	if b == nil {
		return c.pushPrivate(m.ID, privateLine(nil, m, prefix, c.nick, f), false, nil)
	}
	b.enc = privateLine(b.enc[:0], m, prefix, c.nick, f)
	return c.pushPrivate(m.ID, b.enc, true, b)
}

// privateLine appends a private message from prefix to target for a
// recipient of form f to dst.
func privateLine(dst []byte, m state.Private, prefix, target string, f form) []byte {
	params := []string{target, m.Text}
	if m.Command == "TAGMSG" {
		params = params[:1]
	}
	return appendMessage(dst, f.tagString(m.Time, m.From.Account, m.Tags, m.ID), prefix, m.Command, params...)
}

// echoPrivate sends an echo-message client its own private message.
func (c *client) echoPrivate(m state.Private, target string) {
	if !c.has(capEchoMessage) {
		return
	}
	c.pushBatched(privateLine(nil, m, c.prefix, target, formOf(c)&formsMessage), c.batch)
}
