package ircd

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gopkg.in/irc.v4"

	"github.com/lobbychat/ircd/accounts"
)

const (
	unauthorized       = "Unauthorized (bad account or password)"
	serviceUnavailable = "Service temporarily unavailable, please try again later"
)

func (c *client) capLS() string {
	var names []string
	for _, cn := range capNames {
		if cn.name == "sasl" {
			names = append(names, "sasl=PLAIN")
			continue
		}
		names = append(names, cn.name)
	}
	return strings.Join(names, " ")
}

func capBit(name string) uint32 {
	for _, cn := range capNames {
		if cn.name == name {
			return cn.bit
		}
	}
	return 0
}

func handleCAP(c *client, m *irc.Message) {
	sub := strings.ToUpper(m.Params[0])
	switch sub {
	case "LS":
		if !c.registered {
			c.reg.capBlocking = true
		}
		if v, err := strconv.Atoi(m.Param(1)); err == nil && v >= 302 {
			c.caps.Or(capCapNotify) // implied by 302
		}
		ls := c.capLS()
		if !c.has(capCapNotify) {
			ls = strings.ReplaceAll(ls, "sasl=PLAIN", "sasl")
		}
		c.send("", "CAP", c.name(), "LS", ls)
	case "LIST":
		var on []string
		for _, cn := range capNames {
			if c.has(cn.bit) {
				on = append(on, cn.name)
			}
		}
		c.send("", "CAP", c.name(), "LIST", strings.Join(on, " "))
	case "REQ":
		if len(m.Params) < 2 {
			c.reply(irc.ERR_NEEDMOREPARAMS, "CAP", "Not enough parameters")
			return
		}
		if !c.registered {
			c.reg.capBlocking = true
		}
		var add, del uint32
		ok := true
		for _, name := range strings.Fields(m.Params[1]) {
			remove := strings.HasPrefix(name, "-")
			bit := capBit(strings.TrimPrefix(name, "-"))
			if bit == 0 || (remove && bit == capCapNotify) {
				ok = false
				break
			}
			if remove {
				del |= bit
			} else {
				add |= bit
			}
		}
		if !ok {
			c.send("", "CAP", c.name(), "NAK", m.Params[1])
			return
		}
		for {
			old := c.caps.Load()
			if c.caps.CompareAndSwap(old, (old|add)&^del) {
				break
			}
		}
		c.send("", "CAP", c.name(), "ACK", m.Params[1])
	case "END":
		if !c.registered {
			c.reg.capBlocking = false
			c.maybeRegister()
		}
	default:
		c.reply(errUnknownSubcmd, sub, "Invalid CAP command")
	}
}

func handlePASS(c *client, m *irc.Message) {
	if c.registered {
		c.reply(irc.ERR_ALREADYREGISTERED, "You may not reregister")
		return
	}
	pw := m.Params[0]
	c.reg.pass = &pw
}

func handleNICK(c *client, m *irc.Message) {
	nick := m.Params[0]
	if nick == "" {
		c.reply(irc.ERR_NONICKNAMEGIVEN, "No nickname given")
		return
	}
	if c.registered {
		if nick != c.nick {
			c.reply(errCantChangeNick, nick, "Cannot change nickname: your nick is your account name")
		}
		return
	}
	if !accounts.ValidName(nick) {
		c.reply(irc.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
		return
	}
	c.reg.pendingNick = nick
	c.maybeRegister()
}

func handleUSER(c *client, m *irc.Message) {
	if c.registered {
		c.reply(irc.ERR_ALREADYREGISTERED, "You may not reregister")
		return
	}
	if m.Params[0] == "" || m.Params[3] == "" {
		c.reply(irc.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
		return
	}
	c.user = userName(m.Params[0])
	c.realname = sanitize(m.Params[3])
	c.reg.gotUser = true
	c.maybeRegister()
}

// userName keeps an ident usable in a nick!user@host mask.
func userName(u string) string {
	u = strings.TrimLeft(u, "~")
	var b strings.Builder
	for _, r := range u {
		if r > ' ' && r < 0x7f && r != '@' && r != '!' && r != ':' {
			b.WriteRune(r)
		}
		if b.Len() >= 10 {
			break
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

// registering is what a connection gathers while it logs in; it is
// dropped once the session is published, so a logged-in user does not
// carry it.
type registering struct {
	capBlocking bool    // CAP negotiation holds registration until CAP END
	pass        *string // PASS, if sent
	pendingNick string
	gotUser     bool
	sasl        saslState
	authFailed  string // closing ERROR text after a failed SASL attempt
}

type saslState struct {
	started bool
	buf     strings.Builder
	account string // set once authenticated
}

const (
	saslMaxBytes = 1200 // the base64 of the longest PLAIN payload we take
	saslChunk    = 400  // AUTHENTICATE's chunk size
)

func handleAUTHENTICATE(c *client, m *irc.Message) {
	if c.registered || c.reg.sasl.account != "" {
		c.reply(irc.ERR_SASLALREADY, "You have already authenticated using SASL")
		return
	}
	arg := m.Params[0]
	if arg == "*" {
		c.reg.sasl = saslState{}
		c.reply(irc.ERR_SASLABORTED, "SASL authentication aborted")
		return
	}
	if !c.reg.sasl.started {
		if strings.ToUpper(arg) != "PLAIN" {
			c.reply(irc.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
			c.reply(irc.ERR_SASLFAIL, "SASL authentication failed")
			return
		}
		c.reg.sasl.started = true
		c.send("", "AUTHENTICATE", "+")
		return
	}
	if len(arg) > saslChunk {
		// One chunk longer than the protocol allows.
		c.reg.sasl = saslState{}
		c.reply(irc.ERR_SASLTOOLONG, "SASL message too long")
		return
	}
	if arg != "+" {
		c.reg.sasl.buf.WriteString(arg)
	}
	if c.reg.sasl.buf.Len() > saslMaxBytes {
		// Well-formed chunks adding up to more than any PLAIN payload.
		c.reg.sasl = saslState{}
		c.reply(irc.ERR_SASLFAIL, "SASL authentication failed: the payload is too long")
		return
	}
	if len(arg) == saslChunk {
		return // more chunks follow
	}
	payload, err := base64.StdEncoding.DecodeString(c.reg.sasl.buf.String())
	c.reg.sasl = saslState{}
	if err != nil {
		c.reply(irc.ERR_SASLFAIL, "SASL authentication failed: invalid base64")
		return
	}
	parts := strings.Split(string(payload), "\x00")
	if len(parts) != 3 || (parts[0] != "" && accounts.Fold(parts[0]) != accounts.Fold(parts[1])) {
		c.reply(irc.ERR_SASLFAIL, "SASL authentication failed: malformed PLAIN payload")
		return
	}
	account, refusal := c.authenticate(parts[1], parts[2])
	if refusal != "" {
		c.reg.authFailed = refusal
		text := "SASL authentication failed"
		if refusal != unauthorized {
			// A lock, a throttle, an outage: say so (and for how long), as
			// the closing ERROR will; a wrong name or password says no more.
			text += ": " + strings.TrimPrefix(strings.TrimSuffix(refusal, ")"), "Unauthorized (")
		}
		c.reply(irc.ERR_SASLFAIL, text)
		return
	}
	c.reg.sasl.account = account
	c.reg.authFailed = "" // a retry that succeeds is a login
	c.reply(irc.RPL_LOGGEDIN, account+"!"+account+"@"+c.host, account, "You are now logged in as "+account)
	c.reply(irc.RPL_SASLSUCCESS, "SASL authentication successful")
}

// authenticate checks a password and returns the account, or the text
// for the closing ERROR.
func (c *client) authenticate(name, password string) (account, refusal string) {
	s := c.srv
	r := s.accounts.AuthenticateFrom(name, password, c.host)
	secs := int((r.RetryIn + time.Second - 1) / time.Second)
	switch r.Result {
	case accounts.OK:
		s.stats.logins.Add(1)
		s.log.Info("login ok", "account", r.Canonical, "addr", c.host)
		return r.Canonical, ""
	case accounts.LockedOut:
		s.stats.loginFailures.Add(1)
		s.log.Warn("login failed", s.accountAttr(name), "addr", c.host, "reason", "account locked")
		return "", fmt.Sprintf("Unauthorized (too many failed logins, retry in %ds)", secs)
	case accounts.Unavailable:
		s.log.Error("login refused: the login limiter's store is unreachable", s.accountAttr(name), "addr", c.host)
		return "", serviceUnavailable
	case accounts.AddressThrottled:
		s.stats.loginFailures.Add(1)
		s.log.Warn("login failed", s.accountAttr(name), "addr", c.host, "reason", "address throttled")
		return "", fmt.Sprintf("Unauthorized (too many failed logins from your address, retry in %ds)", secs)
	default:
		s.stats.loginFailures.Add(1)
		s.log.Warn("login failed", s.accountAttr(name), "addr", c.host, "reason", "bad account or password")
		if r.LockStarted {
			s.stats.lockouts.Add(1)
			s.log.Warn("lockout started", s.accountAttr(name), "addr", c.host)
		}
		return "", unauthorized
	}
}

// accountAttr names a login's account for the log only once it is known
// to be one: what a client typed as a name may be a mistyped password or
// part of one ("PASS Sunny:Day99" with a wrong NICK).
func (s *Server) accountAttr(name string) slog.Attr {
	if canonical, ok := s.accounts.DB().Lookup(name); ok {
		return slog.String("account", canonical)
	}
	return slog.String("account", "(not an account)")
}

// splitPass reads PASS as "account:password" whenever the part before the
// first ':' is a valid account name, and otherwise as the password of the
// NICK given. The rule looks only at the text: had it depended on whether
// NICK names an account, the reply to "PASS mallory:pw" + "NICK bob" would
// tell whether bob exists. A password with a ':' in it after a name-like
// word is sent as "account:password" (the split is at the first ':').
func splitPass(nick, pass string) (account, password string) {
	if name, pw, ok := strings.Cut(pass, ":"); ok && accounts.ValidName(name) {
		return name, pw
	}
	return nick, pass
}

func (c *client) refuse(numericText, errorText string) {
	c.send("", irc.ERR_PASSWDMISMATCH, "*", numericText)
	c.quit(errorText, errorText)
}

// maybeRegister logs the client in once NICK and USER are in and CAP
// negotiation (if any) has ended.
func (c *client) maybeRegister() {
	if c.registered || c.reg.pendingNick == "" || !c.reg.gotUser || c.reg.capBlocking || c.quitMsg.Load() != nil {
		return
	}
	s := c.srv
	nick := c.reg.pendingNick
	var account string
	switch {
	case c.reg.authFailed != "":
		c.refuse("Password incorrect", c.reg.authFailed)
		return
	case c.reg.sasl.account != "":
		account = c.reg.sasl.account
	case c.reg.pass != nil:
		name, pw := splitPass(nick, *c.reg.pass)
		acct, refusal := c.authenticate(name, pw)
		if refusal != "" {
			text := "Password incorrect"
			switch {
			case refusal == serviceUnavailable:
				text = "Service temporarily unavailable"
			case refusal != unauthorized:
				text = "Too many failed logins; try again later"
			}
			c.refuse(text, refusal)
			return
		}
		account = acct
	default:
		if _, isAccount := s.accounts.DB().Lookup(nick); s.conf().Guests && !isAccount {
			break // guest
		}
		c.refuse("Password required", "Unauthorized (login required: send PASS <password> with NICK <account>, or use SASL PLAIN)")
		return
	}
	if account != "" {
		nick = account
	}
	c.setIdentity(nick, c.user, account)
	c.completeRegistration()
}

func (c *client) welcome() {
	s := c.srv
	cfg := s.conf()
	c.reply(irc.RPL_WELCOME, fmt.Sprintf("Welcome to the %s IRC Network %s", cfg.Network, c.prefix))
	c.reply(irc.RPL_YOURHOST, fmt.Sprintf("Your host is %s, running version %s", cfg.ServerName, cfg.Version))
	c.reply(irc.RPL_CREATED, "This server was created "+s.created.UTC().Format(time.RFC1123))
	c.reply(irc.RPL_MYINFO, cfg.ServerName, cfg.Version, "i", "nt")
	c.isupport()
	c.lusers()
	c.motd()
}

func (c *client) isupport() {
	cfg := c.srv.conf()
	tokens := []string{
		"AWAYLEN=" + strconv.Itoa(awayLen), "CASEMAPPING=ascii", "CHANLIMIT=#:1", "CHANMODES=,,,nt",
		"CHANNELLEN=" + strconv.Itoa(channelLen), "CHANTYPES=#", "LINELEN=512", "MONITOR=" + strconv.Itoa(cfg.MonitorLimit),
		"NETWORK=" + cfg.Network, "NICKLEN=30", "PREFIX=(ov)@+",
		"SILENCE=" + strconv.Itoa(cfg.SilenceLimit), "TARGMAX=PRIVMSG:4,NOTICE:4,TAGMSG:4,JOIN:,PART:,WHOIS:1,MONITOR:",
		"TOPICLEN=390", "UTF8ONLY",
	}
	if c.srv.room.history != nil {
		tokens = append(tokens, "CHATHISTORY="+strconv.Itoa(chathistoryMax), "MSGREFTYPES=msgid,timestamp")
	}
	for len(tokens) > 0 {
		n := min(len(tokens), 12)
		params := append(append([]string{}, tokens[:n]...), "are supported by this server")
		c.reply(irc.RPL_ISUPPORT, params...)
		tokens = tokens[n:]
	}
}

func (c *client) lusers() {
	n := strconv.Itoa(c.srv.presence.Count())
	c.reply(irc.RPL_LUSERCLIENT, "There are "+n+" users and 0 invisible on 1 servers")
	c.reply(irc.RPL_LUSERCHANNELS, "1", "channels formed")
	c.reply(irc.RPL_LUSERME, "I have "+n+" clients and 0 servers")
	c.reply(rplLocalUsers, n, n, "Current local users "+n+", max "+n)
	c.reply(rplGlobalUsers, n, n, "Current global users "+n+", max "+n)
}

func (c *client) motd() {
	cfg := c.srv.conf()
	if strings.TrimSpace(cfg.MOTD) == "" {
		c.reply(irc.ERR_NOMOTD, "MOTD File is missing")
		return
	}
	c.reply(irc.RPL_MOTDSTART, "- "+cfg.ServerName+" Message of the day - ")
	for _, line := range strings.Split(strings.TrimRight(cfg.MOTD, "\n"), "\n") {
		c.reply(irc.RPL_MOTD, "- "+line)
	}
	c.reply(irc.RPL_ENDOFMOTD, "End of /MOTD command.")
}
