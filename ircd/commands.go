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
}

// aliasCommand takes the raw line, for commands whose text is "the rest
// of the line" whether or not it starts with ':'.
type aliasCommand func(c *client, rest string)

// commandTable is the default command table, copied into each Server.
var commandTable = map[string]command{
	"CAP":          {handleCAP, 1, true},
	"PASS":         {handlePASS, 1, true},
	"NICK":         {handleNICK, 1, true},
	"USER":         {handleUSER, 4, true},
	"AUTHENTICATE": {handleAUTHENTICATE, 1, true},
	"PING":         {handlePING, 1, true},
	"PONG":         {handlePONG, 0, true},
	"QUIT":         {handleQUIT, 0, true},
	"LOGOUT":       {handleQUIT, 0, true},

	"PRIVMSG":   {handlePRIVMSG, 0, false},
	"NOTICE":    {handleNOTICE, 0, false},
	"TAGMSG":    {handleTAGMSG, 1, false},
	"JOIN":      {handleJOIN, 1, false},
	"PART":      {handlePART, 1, false},
	"NAMES":     {handleNAMES, 0, false},
	"TOPIC":     {handleTOPIC, 1, false},
	"LIST":      {handleLIST, 0, false},
	"MODE":      {handleMODE, 1, false},
	"WHO":       {handleWHO, 0, false},
	"WHOIS":     {handleWHOIS, 1, false},
	"WHOWAS":    {handleWHOWAS, 1, false},
	"ISON":      {handleISON, 1, false},
	"USERHOST":  {handleUSERHOST, 1, false},
	"MOTD":      {func(c *client, _ *irc.Message) { c.motd() }, 0, false},
	"LUSERS":    {func(c *client, _ *irc.Message) { c.lusers() }, 0, false},
	"AWAY":      {handleAWAY, 0, false},
	"VERSION":   {handleVERSION, 0, false},
	"TIME":      {handleTIME, 0, false},
	"MONITOR":   {handleMONITOR, 1, false},
	"SILENCE":   {handleSILENCE, 0, false},
	"BLOCK":     {func(c *client, m *irc.Message) { c.blockAlias("+", m.Params[0]) }, 1, false},
	"UNBLOCK":   {func(c *client, m *irc.Message) { c.blockAlias("-", m.Params[0]) }, 1, false},
	"WHOELSE":   {handleWHOELSE, 0, false},
	"WHOLASTHR": {handleWHOLASTHR, 0, false},
}

// aliases whose last argument is the raw rest of the line.
var restCommands = map[string]struct {
	args int // words before the text
	run  func(c *client, args []string, text string)
}{
	"BROADCAST": {0, func(c *client, _ []string, text string) {
		c.privmsg("PRIVMSG", c.srv.conf().Channel, text, "")
	}},
	"MESSAGE": {1, func(c *client, args []string, text string) {
		c.privmsg("PRIVMSG", args[0], text, "")
	}},
}

func (c *client) dispatch(m *irc.Message, raw string) {
	if rc, ok := restCommands[m.Command]; ok {
		if !c.registered {
			c.reply(irc.ERR_NOTREGISTERED, "You have not registered")
			return
		}
		args, text, ok := splitRest(raw, rc.args)
		if !ok || text == "" {
			c.reply(irc.ERR_NEEDMOREPARAMS, m.Command, "Not enough parameters")
			return
		}
		rc.run(c, args, text)
		return
	}
	cmd, ok := c.srv.commands[m.Command]
	if !ok {
		if c.registered {
			c.reply(irc.ERR_UNKNOWNCOMMAND, m.Command, "Unknown command")
		} else {
			c.reply(irc.ERR_NOTREGISTERED, "You have not registered")
		}
		return
	}
	if !cmd.preLogin && !c.registered {
		c.reply(irc.ERR_NOTREGISTERED, "You have not registered")
		return
	}
	if len(m.Params) < cmd.minParams {
		c.reply(irc.ERR_NEEDMOREPARAMS, m.Command, "Not enough parameters")
		return
	}
	cmd.handle(c, m)
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

func handlePING(c *client, m *irc.Message) {
	c.send("", "PONG", c.srv.conf().ServerName, m.Params[0])
}

func handlePONG(c *client, m *irc.Message) {
	if c.replayToken == "" {
		return
	}
	for _, p := range m.Params {
		if p == c.replayToken {
			c.ackReplay()
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
