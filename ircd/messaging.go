package ircd

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/store"
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
		c.privmsg(command, t, m.Params[1], tags)
	}
}

func handleTAGMSG(c *client, m *irc.Message) {
	targets, ok := c.targets("TAGMSG", m.Params[0], true)
	tags := clientTags(m.Tags)
	if !ok || tags == "" {
		return
	}
	for _, t := range targets {
		c.privmsg("TAGMSG", t, "", tags)
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

// privmsg routes one message to the channel or a user. command is
// PRIVMSG, NOTICE or TAGMSG (text empty).
func (c *client) privmsg(command, target, text, tags string) {
	notice := command != "PRIVMSG"
	text = sanitize(text)
	if command != "TAGMSG" && text == "" {
		if !notice {
			c.reply(irc.ERR_NOTEXTTOSEND, "No text to send")
		}
		return
	}
	s := c.srv
	s.stats.relayed.Add(1)
	params := []string{target, text}
	if command == "TAGMSG" {
		params = params[:1]
	}
	if strings.HasPrefix(target, "#") {
		if !strings.EqualFold(target, s.conf().Channel) {
			if !notice {
				c.reply(irc.ERR_NOSUCHCHANNEL, target, "No such channel (this server has one channel: "+s.conf().Channel+")")
			}
			return
		}
		if !s.channel.has(c) {
			if !notice {
				c.reply(irc.ERR_CANNOTSENDTOCHAN, s.conf().Channel, "Cannot send to channel (you are not in it; /join "+s.conf().Channel+")")
			}
			return
		}
		params[0] = s.conf().Channel
		t := s.now()
		s.channel.broadcast(fanout{sender: c, echo: c.has(capEchoMessage), build: func(f form) []byte {
			if command == "TAGMSG" && f&formTags == 0 {
				return []byte{} // non-nil: cached as "nothing to send"
			}
			return appendMessage(nil, f.tagString(t, c, tags), c.prefix, command, params...)
		}})
		return
	}
	s.deliver(c, command, target, text, tags)
}

// deliver sends a private message to a user: live if online, else stored
// for the account. This is the one place that decides, so a cluster mode
// can replace it.
func (s *Server) deliver(from *client, command, target, text, tags string) {
	notice := command != "PRIVMSG"
	key := accounts.Fold(target)
	lock := s.mailLock(key)
	lock.RLock()
	s.mu.RLock()
	to := s.users[key]
	silenced := s.silencedBy(key, from)
	s.mu.RUnlock()

	defer lock.RUnlock()
	if to != nil && (silenced || s.deliverLive(from, to, command, text, tags)) {
		if away := to.away.Load(); away != nil && command == "PRIVMSG" {
			from.reply(irc.RPL_AWAY, to.nick, *away)
		}
		return
	}
	// Offline, or the session is closing and its queue refused the line:
	// store it rather than lose it.

	canonical, isAccount := s.accounts.DB().Lookup(target)
	if !isAccount || command == "TAGMSG" {
		if !notice {
			from.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
		}
		return
	}
	offline := canonical + " is offline; your message will be delivered when they log in"
	if silenced {
		// The sender must not learn they are silenced: same reply, no store.
		if !notice {
			from.reply(irc.RPL_AWAY, canonical, offline)
		}
		return
	}
	_, err := s.store.Append(key, store.Message{From: from.prefix, Command: command, Text: text, Time: s.now()})
	if err == nil {
		s.stats.offlineStored.Add(1)
	}
	switch {
	case errors.Is(err, store.ErrMailboxFull):
		from.reply(errCantSendToUser, canonical, canonical+"'s mailbox is full; your message was not stored")
		return
	case err != nil:
		s.log.Error("storing offline message", "to", canonical, "err", err)
		from.reply(errCantSendToUser, canonical, "Your message could not be stored; please try again later")
		return
	}
	from.echoPrivate(s.now(), command, canonical, text, tags, nil, 0)
	if !notice {
		from.reply(irc.RPL_AWAY, canonical, offline)
	}
}

// deliverLive queues a private message to an online recipient (and the
// echo to the sender). It reports false if the recipient's connection is
// closing, so the caller can store the message instead.
func (s *Server) deliverLive(from, to *client, command, text, tags string) bool {
	f := formOf(to) & formsMessage
	if command == "TAGMSG" && f&formTags == 0 {
		return true // nothing to show a client without message-tags
	}
	t := s.now()
	line := privateLine(t, from, command, to.nick, text, tags, f)
	if !to.out.push(line) {
		return false
	}
	if to != from {
		from.echoPrivate(t, command, to.nick, text, tags, line, f)
	}
	return true
}

// privateLine encodes a private message for a recipient of form f.
func privateLine(t time.Time, from *client, command, target, text, tags string, f form) []byte {
	params := []string{target, text}
	if command == "TAGMSG" {
		params = params[:1]
	}
	return appendMessage(nil, f.tagString(t, from, tags), from.prefix, command, params...)
}

// echoPrivate sends an echo-message client its own private message,
// reusing the recipient's encoding (line, of form f) when the forms match.
func (c *client) echoPrivate(t time.Time, command, target, text, tags string, line []byte, f form) {
	if !c.has(capEchoMessage) {
		return
	}
	if own := formOf(c) & formsMessage; own != f || line == nil {
		line = privateLine(t, c, command, target, text, tags, own)
	}
	c.out.push(line)
}

// replayOffline queues the client's stored messages, oldest first, then a
// PING whose PONG acknowledges them. Called with the mail lock held.
func (c *client) replayOffline() {
	if c.account == "" {
		return
	}
	s := c.srv
	msgs, err := s.store.Pending(c.key)
	if err != nil {
		s.log.Error("reading offline messages", "account", c.account, "err", err)
		c.notice("Your stored messages could not be read; they are kept for your next login")
		return
	}
	if len(msgs) == 0 {
		return
	}
	f := formOf(c)
	for _, m := range msgs {
		text := m.Text
		if f&formTime == 0 {
			text = "[" + m.Time.UTC().Format("2006-01-02 15:04:05") + " UTC] " + text
		}
		tags := ""
		if f&formTime != 0 {
			tags = "time=" + formatTime(m.Time)
		}
		if f&formAccount != 0 {
			if nick, _, ok := strings.Cut(m.From, "!"); ok {
				tags = joinTags("account="+nick, tags)
			}
		}
		c.out.push(appendMessage(nil, tags, m.From, m.Command, c.nick, text))
	}
	c.replayUpTo = msgs[len(msgs)-1].ID
	c.replayCount = len(msgs)
	c.replayToken = "replay-" + strconv.FormatUint(c.replayUpTo, 10) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	c.send("", "PING", c.replayToken)
}

func joinTags(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + ";" + b
}

// ackReplay deletes the replayed messages once the client has shown, by
// answering the PING queued after them, that it read them.
func (c *client) ackReplay() {
	s := c.srv
	if err := s.store.Ack(c.key, c.replayUpTo); err != nil {
		s.log.Error("deleting delivered offline messages", "account", c.account, "err", err)
		return
	}
	s.stats.offlineDelivered.Add(uint64(c.replayCount))
	c.replayToken, c.replayUpTo, c.replayCount = "", 0, 0
}
