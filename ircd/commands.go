package ircd

import (
	"strings"

	"gopkg.in/irc.v4"
)

// command is one entry of the command table: the table, not the handler,
// enforces registration and the parameter count.
type command struct {
	handle    func(c *client, m *irc.Message)
	minParams int
	preLogin  bool // usable before registration
	// rest, if set, takes the line's text after restArgs words as it was
	// typed, whether or not it starts with ':' (the seed-style words that
	// nc users type: BROADCAST hello world).
	rest     func(c *client, args []string, text string)
	restArgs int
}

// commandTable is the default command table, copied into each Server.
var commandTable = map[string]command{
	"CAP":          {handle: handleCAP, minParams: 1, preLogin: true},
	"PASS":         {handle: handlePASS, minParams: 1, preLogin: true},
	"NICK":         {handle: handleNICK, minParams: 1, preLogin: true},
	"USER":         {handle: handleUSER, minParams: 4, preLogin: true},
	"AUTHENTICATE": {handle: handleAUTHENTICATE, minParams: 1, preLogin: true},
	"PING":         {handle: handlePING, minParams: 1, preLogin: true},
	"PONG":         {handle: handlePONG, preLogin: true},
	"QUIT":         {handle: handleQUIT, preLogin: true},
	"LOGOUT":       {handle: handleQUIT, preLogin: true},

	"PRIVMSG":     {handle: handlePRIVMSG},
	"NOTICE":      {handle: handleNOTICE},
	"TAGMSG":      {handle: handleTAGMSG, minParams: 1},
	"JOIN":        {handle: handleJOIN, minParams: 1},
	"PART":        {handle: handlePART, minParams: 1},
	"NAMES":       {handle: handleNAMES},
	"TOPIC":       {handle: handleTOPIC, minParams: 1},
	"LIST":        {handle: handleLIST},
	"MODE":        {handle: handleMODE, minParams: 1},
	"WHO":         {handle: handleWHO},
	"WHOIS":       {handle: handleWHOIS, minParams: 1},
	"WHOWAS":      {handle: handleWHOWAS, minParams: 1},
	"ISON":        {handle: handleISON, minParams: 1},
	"USERHOST":    {handle: handleUSERHOST, minParams: 1},
	"MOTD":        {handle: func(c *client, _ *irc.Message) { c.motd() }},
	"LUSERS":      {handle: func(c *client, _ *irc.Message) { c.lusers() }},
	"AWAY":        {handle: handleAWAY},
	"VERSION":     {handle: handleVERSION},
	"TIME":        {handle: handleTIME},
	"MONITOR":     {handle: handleMONITOR, minParams: 1},
	"SILENCE":     {handle: handleSILENCE},
	"BLOCK":       {handle: func(c *client, m *irc.Message) { c.blockAlias("+", m.Params[0]) }, minParams: 1},
	"UNBLOCK":     {handle: func(c *client, m *irc.Message) { c.blockAlias("-", m.Params[0]) }, minParams: 1},
	"WHOELSE":     {handle: handleWHOELSE},
	"CHATHISTORY": {handle: handleCHATHISTORY, minParams: 1},
	"WHOLASTHR":   {handle: handleWHOLASTHR},
	"BROADCAST": {rest: func(c *client, _ []string, text string) {
		c.privmsg("PRIVMSG", c.srv.room.name, text, "", false)
	}},
	"MESSAGE": {restArgs: 1, rest: func(c *client, args []string, text string) {
		c.privmsg("PRIVMSG", args[0], text, "", false)
	}},
}

func (c *client) dispatch(m *irc.Message, raw string) {
	cmd, ok := c.srv.commands[m.Command]
	switch {
	case !ok && c.registered:
		c.reply(irc.ERR_UNKNOWNCOMMAND, m.Command, "Unknown command")
	case !ok || !cmd.preLogin && !c.registered:
		c.reply(irc.ERR_NOTREGISTERED, "You have not registered")
	case cmd.rest != nil:
		args, text, ok := splitRest(raw, cmd.restArgs)
		if !ok || text == "" {
			c.reply(irc.ERR_NEEDMOREPARAMS, m.Command, "Not enough parameters")
			return
		}
		cmd.rest(c, args, text)
	case len(m.Params) < cmd.minParams:
		c.reply(irc.ERR_NEEDMOREPARAMS, m.Command, "Not enough parameters")
	default:
		cmd.handle(c, m)
	}
}

// splitRest skips tags, prefix and the command of raw, then takes n
// space-separated words and returns the rest as text, minus one leading
// ':' if present.
func splitRest(raw string, n int) (args []string, text string, ok bool) {
	rest := raw
	skipWord := func() string {
		rest = strings.TrimLeft(rest, " ")
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			w := rest
			rest = ""
			return w
		}
		w := rest[:i]
		rest = rest[i+1:]
		return w
	}
	if strings.HasPrefix(rest, "@") {
		skipWord()
	}
	if strings.HasPrefix(strings.TrimLeft(rest, " "), ":") {
		skipWord()
	}
	skipWord() // the command
	for range n {
		w := skipWord()
		if w == "" {
			return nil, "", false
		}
		args = append(args, w)
	}
	rest = strings.TrimLeft(rest, " ")
	rest = strings.TrimPrefix(rest, ":")
	return args, rest, true
}
