package ircd

import (
	"slices"
	"strings"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
)

// silenceList is an immutable, case-folded list of masks, compiled; a
// change makes a new list, so fan-out reads it without locks.
type silenceList struct {
	masks []string
	globs []glob
}

func newSilenceList(masks []string) *silenceList {
	l := &silenceList{masks: slices.Clone(masks), globs: make([]glob, len(masks))}
	for i, m := range masks {
		l.globs[i] = compileGlob(m)
	}
	return l
}

func (l *silenceList) matches(prefix string) bool {
	if l == nil {
		return false
	}
	for i := range l.globs {
		if l.globs[i].match(prefix) {
			return true
		}
	}
	return false
}

// normalizeMask turns what a user typed into a full nick!user@host mask:
// a bare nick means nick!*@*, as ircu does.
func normalizeMask(m string) string {
	m = accounts.Fold(m)
	switch {
	case !strings.ContainsAny(m, "!@"):
		return m + "!*@*"
	case !strings.Contains(m, "!"):
		return "*!" + m
	case !strings.Contains(m, "@"):
		return m + "@*"
	}
	return m
}

func handleSILENCE(c *client, m *irc.Message) {
	if len(m.Params) == 0 || m.Params[0] == "" {
		c.listSilences()
		return
	}
	for _, arg := range strings.Split(m.Params[0], ",") {
		if arg != "" {
			c.changeSilence(arg)
		}
	}
}

func (c *client) listSilences() {
	for _, mask := range c.silence.Load().list() {
		c.reply(rplSileList, c.nick, mask)
	}
	c.reply(rplEndOfSileList, c.nick, "End of Silence List")
}

func (l *silenceList) list() []string {
	if l == nil {
		return nil
	}
	return l.masks
}

// blockAlias is BLOCK/UNBLOCK: SILENCE +/- with its echo, plus a NOTICE,
// since HexChat (whose /block sends BLOCK) shows the SILENCE echo only as
// a "GARBAGE" line.
func (c *client) blockAlias(sign, nick string) {
	if c.changeSilence(sign+nick) && c.account != "" {
		mask := normalizeMask(strings.TrimLeft(nick, "+-"))
		if sign == "+" {
			c.notice("Blocked " + mask + ": their private messages and channel lines are hidden from you")
		} else {
			c.notice("Unblocked " + mask)
		}
	}
}

// changeSilence applies "+mask" or "-mask" (a bare mask means add), saves
// it, and confirms by echoing SILENCE as ircu does. It reports whether
// the list now says what was asked.
func (c *client) changeSilence(arg string) bool {
	s := c.srv
	add := true
	switch arg[0] {
	case '+':
		arg = arg[1:]
	case '-':
		add = false
		arg = arg[1:]
	}
	if arg == "" || strings.ContainsAny(arg, " ,") || len(arg) > 200 {
		c.reply(irc.ERR_NEEDMOREPARAMS, "SILENCE", "Give a nick or nick!user@host mask")
		return false
	}
	if c.account == "" {
		c.notice("Guests cannot keep a silence list; log in with an account")
		return false
	}
	mask := normalizeMask(arg)
	// Only this client's goroutine changes its own list (one session per
	// account), so read-modify-write needs no lock.
	cur := c.silence.Load().list()
	if add {
		if slices.Contains(cur, mask) {
			c.send(c.prefix, "SILENCE", "+"+mask)
			return true
		}
		if len(cur) >= s.conf().SilenceLimit {
			c.reply(errSileListFull, mask, "Your silence list is full")
			return false
		}
		ctx := c.srv.ctx
		_, err := s.silences.AddSilence(ctx, c.key, mask)
		if err != nil {
			s.log.Error("saving silence list", "account", c.account, "err", err)
			c.notice("Could not save your silence list; please try again")
			return false
		}
		c.setSilences(append(slices.Clone(cur), mask))
		c.send(c.prefix, "SILENCE", "+"+mask)
		return true
	}
	i := slices.Index(cur, mask)
	if i < 0 {
		c.reply(errNotSilenced, mask, "That mask is not on your silence list")
		return false
	}
	ctx := c.srv.ctx
	_, err := s.silences.RemoveSilence(ctx, c.key, mask)
	if err != nil {
		s.log.Error("saving silence list", "account", c.account, "err", err)
		c.notice("Could not save your silence list; please try again")
		return false
	}
	c.setSilences(slices.Delete(slices.Clone(cur), i, i+1))
	c.send(c.prefix, "SILENCE", "-"+mask)
	return true
}

func (c *client) setSilences(masks []string) { c.silence.Store(newSilenceList(masks)) }
