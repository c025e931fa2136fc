package e2e

// The built-in web client (web/static), driven in headless Chromium over
// the DevTools protocol (chromedp), against the built bin/ircd with a
// [web] listener. What a test checks is the page's DOM contract: the ids,
// classes and data- attributes listed in web/static (login form, tabs,
// logs of div.line with data-from/data-kind and time[datetime], nick
// list, block list, WHOELSE panel, #status). Raw TCP clients are the
// other users.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// webConfig is the [web] section: one plain listener on loopback.
const webConfig = "[web]\nlisten = [\"127.0.0.1:0\"]\n"

// webWait bounds one wait on the page (a line crossing, a login).
const webWait = 15 * time.Second

// startWebServer starts bin/ircd with a [web] listener.
func startWebServer(t *testing.T, opt serverOptions) *server {
	t.Helper()
	opt.Extra = webConfig + opt.Extra
	s := startServer(t, opt)
	if s.WebPort == 0 {
		t.Fatalf("no web listener in the log:\n%s", s.Log())
	}
	return s
}

// WebURL is the page's address.
func (s *server) WebURL() string { return fmt.Sprintf("http://127.0.0.1:%d/", s.WebPort) }

// pinPorts rewrites config.toml so that the listeners which said port 0
// ask for the ports they got, for a restart on the same addresses.
func (s *server) pinPorts(t *testing.T) {
	t.Helper()
	path := s.Dir + "/config.toml"
	b, err := os.ReadFile(path)
	must(t, err)
	ports := map[string]int{"server": s.Port, "tls": s.TLSPort, "web": s.WebPort}
	section := ""
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if m := regexp.MustCompile(`^\[(\w+)\]`).FindStringSubmatch(l); m != nil {
			section = m[1]
			continue
		}
		if p := ports[section]; p != 0 && strings.HasPrefix(strings.TrimSpace(l), "listen") {
			lines[i] = strings.Replace(l, `"127.0.0.1:0"`, fmt.Sprintf(`"127.0.0.1:%d"`, p), 1)
		}
	}
	must(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600))
}

// restartSamePorts starts a stopped server again on the ports it had
// (pinPorts first). A port still held by the previous process's last
// sockets, or taken meanwhile, fails the bind: it tries again for 10 s.
func (s *server) restartSamePorts(t *testing.T) {
	t.Helper()
	s.pinPorts(t)
	port, web := s.Port, s.WebPort
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.tryStart()
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			t.Fatalf("restarting on the same ports: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the port is not ours yet: try again
	}
	if s.Port != port || s.WebPort != web {
		t.Fatalf("restarted on other ports: irc %d web %d, was %d and %d", s.Port, s.WebPort, port, web)
	}
}

// ---- Chromium ----

// chromiumPath is the browser: Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	requireTools(t, "chromium")
	p, err := exec.LookPath("chromium")
	must(t, err)
	return p
}

// startChromium starts one headless Chromium for the test and returns
// its context; pages are tabs in it (openPage). It is stopped at cleanup.
func startChromium(t *testing.T, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	all := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // we may run as root, where the sandbox cannot start
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("lang", "en-US"),
	)
	all = append(all, opts...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), all...)
	bctx, bcancel := chromedp.NewContext(actx)
	// The first Run starts the browser; no timeout on it (a timeout there
	// would stop the browser), so a watchdog bounds the start instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }()
	select {
	case err := <-started:
		if err != nil {
			bcancel()
			acancel()
			t.Fatalf("starting chromium: %v", err)
		}
	case <-time.After(30 * time.Second):
		bcancel()
		acancel()
		t.Fatal("chromium did not start in 30 s")
	}
	t.Cleanup(func() { bcancel(); acancel() })
	return bctx
}

// webPage is one tab with the web client, in its own browser context
// (no shared storage with the other tabs).
type webPage struct {
	t      *testing.T
	s      *server
	ctx    context.Context
	name   string // for messages
	mu     sync.Mutex
	events []string // console, exceptions and WebSocket frames, for failures
	wsOpen atomic.Int32
}

// openPage opens url (the server's page unless empty) in a new tab.
func openPage(t *testing.T, browser context.Context, s *server, name, url string) *webPage {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &webPage{t: t, s: s, ctx: ctx, name: name}
	if url == "" {
		url = s.WebURL()
	}
	must(t, chromedp.Listen(ctx, p.record))
	must(t, p.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
		return err
	})))
	must(t, p.do(webWait, chromedp.Navigate(url)))
	return p
}

// record keeps what the page did, for failure messages; it runs in
// chromedp's event loop, so it only appends.
func (p *webPage) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = fmt.Sprintf("exception %s", d.Text)
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	case *network.EventWebSocketCreated:
		p.wsOpen.Add(1)
		line = "ws created " + ev.URL
	case *network.EventWebSocketClosed:
		line = "ws closed"
	case *network.EventWebSocketFrameError:
		line = "ws error " + ev.ErrorMessage
	case *network.EventWebSocketHandshakeResponseReceived:
		line = fmt.Sprintf("ws handshake %d", ev.Response.Status)
	case *network.EventWebSocketFrameSent:
		line = "> " + strings.TrimRight(string(ev.Response.PayloadData), "\r\n")
	case *network.EventWebSocketFrameReceived:
		line = "< " + strings.TrimRight(string(ev.Response.PayloadData), "\r\n")
	default:
		return
	}
	p.mu.Lock()
	p.events = append(p.events, time.Now().UTC().Format("15:04:05.000 ")+line)
	p.mu.Unlock()
}

// WebSockets is how many WebSockets the page has opened so far.
func (p *webPage) WebSockets() int { return int(p.wsOpen.Load()) }

// do runs actions with a timeout.
func (p *webPage) do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// jsPrelude are helpers for the expressions the tests evaluate, written
// against the page's DOM contract.
const jsPrelude = `
const $ = s => document.querySelector(s);
const $$ = s => [...document.querySelectorAll(s)];
const vis = e => !!e && e.checkVisibility();
const txt = e => e ? e.textContent.replace(/\s+/g, ' ').trim() : '';
const log = target => $$('div.log[role="log"]').find(l => l.dataset.target === target);
const lines = target => { const l = log(target); return l ? [...l.querySelectorAll('div.line')] : []; };
const find = (target, from, text) => lines(target).filter(l =>
	(from === null || l.dataset.from === from) && txt(l.querySelector('.text')).includes(text));
const whoHas = n => $$('#who-panel li').some(l => l.dataset.nick === n ||
	[...l.querySelectorAll('*')].some(e => txt(e) === n) || new RegExp('(^|\\W)' + n + '(\\W|$)').test(txt(l)));
const tab = target => $$('#tabs button.tab').find(b => b.dataset.target === target);
const status = () => txt($('#status'));
const connected = () => /\bconnected\b/i.test(status()) && !/reconnecting/i.test(status());
const loginError = () => txt($('#login-error'));
const lineInfo = l => l && ({from: l.dataset.from || '', kind: l.dataset.kind || '', msgid: l.dataset.msgid || '',
	time: (l.querySelector('time[datetime]') || {getAttribute: () => ''}).getAttribute('datetime'),
	nick: txt(l.querySelector('.nick')), text: txt(l.querySelector('.text')), visible: vis(l)});
`

// js quotes a Go value as a JavaScript literal.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// evalJS evaluates expr (with the prelude) in the page.
func evalJS[T any](p *webPage, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T]("(() => {"+jsPrelude+"\nreturn ("+expr+");\n})()"))
}

// eval is evalJS that fails the test on an error.
func eval[T any](p *webPage, expr string) T {
	p.t.Helper()
	v, err := evalJS[T](p, expr)
	if err != nil {
		p.t.Fatalf("%s: evaluating %s: %v\n%s", p.name, expr, err, p.debug())
	}
	return v
}

// waitJS waits until expr is true in the page. (Polled from here with
// Runtime.evaluate: chromedp's Poll compiles its predicate with new
// Function, which the page's CSP, without 'unsafe-eval', refuses.)
func (p *webPage) waitJS(what string, timeout time.Duration, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := evalJS[bool](p, "!!("+expr+")")
		if err == nil && ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out after %v waiting for %s (%s; last error %v)\n%s", p.name, timeout, what, expr, lastErr, p.debug())
		}
		select {
		case <-p.ctx.Done():
			p.t.Fatalf("%s: browser gone while waiting for %s: %v", p.name, what, p.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// holdJS checks that expr stays true for d (a bounded check of a negative:
// something that must not happen).
func (p *webPage) holdJS(what string, d time.Duration, expr string) {
	p.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ok, err := evalJS[bool](p, "!!("+expr+")")
		if err != nil || !ok {
			p.t.Fatalf("%s: %s no longer holds (%s; err %v)\n%s", p.name, what, expr, err, p.debug())
		}
		time.Sleep(100 * time.Millisecond) // sampling interval of the hold
	}
}

// debug describes the page for a failure: status, login error, the
// tabs, the log texts, then what the page did (console, frames) and the
// server's log tail.
func (p *webPage) debug() string {
	var b strings.Builder
	state, err := evalJS[string](p, `JSON.stringify({status: status(), loginHidden: !!($('#login') || {}).hidden,
		chatHidden: !!($('#chat') || {}).hidden, loginError: loginError(),
		tabs: $$('#tabs button.tab').map(b => b.dataset.target + (b.getAttribute('aria-selected') === 'true' ? '*' : '') + ' ' + txt(b)),
		logs: $$('div.log').map(l => ({target: l.dataset.target, lines: [...l.querySelectorAll('div.line')].map(lineInfo)})),
		nicks: $$('#nicklist li[data-nick]').map(l => l.dataset.nick + (l.classList.contains('away') ? '(away)' : '')),
		blocks: $$('#blocks li[data-nick]').map(l => l.dataset.nick), who: txt($('#who-panel'))}, null, 1)`)
	if err != nil {
		fmt.Fprintf(&b, "--- page state: %v\n", err)
	} else {
		fmt.Fprintf(&b, "--- page state:\n%s\n", state)
	}
	p.mu.Lock()
	ev := p.events
	if len(ev) > 120 {
		ev = ev[len(ev)-120:]
	}
	fmt.Fprintf(&b, "--- page events (last %d):\n%s\n", len(ev), strings.Join(ev, "\n"))
	p.mu.Unlock()
	if p.s != nil {
		l := p.s.Log()
		if len(l) > 4000 {
			l = l[len(l)-4000:]
		}
		fmt.Fprintf(&b, "--- server log (tail):\n%s", l)
	}
	return b.String()
}

// ---- the page's actions ----

// Login fills in the login form and submits it.
func (p *webPage) Login(nick, password string) {
	p.t.Helper()
	p.waitJS("the login form", webWait, `vis($('form#login')) && vis($('input#nick')) && vis($('input#password')) && vis($('button#login-submit'))
		&& !$('input#nick').disabled && !$('input#password').disabled && !$('button#login-submit').disabled`)
	// Empty the fields first (chromedp's SetValue cannot set ""), then
	// type as a user does.
	eval[chromedp.Void](p, `(() => { $('input#nick').value = ''; $('input#password').value = ''; })()`)
	err := p.do(webWait,
		chromedp.SendKeys(chromedp.CSS("input#nick"), nick),
		chromedp.SendKeys(chromedp.CSS("input#password"), password),
		chromedp.Click(chromedp.CSS("button#login-submit")),
	)
	if err != nil {
		p.t.Fatalf("%s: filling in the login form: %v\n%s", p.name, err, p.debug())
	}
}

// WaitConnected waits until the page is logged in: form hidden, chat
// shown, status "connected", the #lobby log there.
func (p *webPage) WaitConnected() {
	p.t.Helper()
	p.waitJS("the chat after login", webWait,
		`$('form#login').hidden && !$('#chat').hidden && vis($('#chat')) && connected() && !!log('#lobby') && !!tab('#lobby')`)
}

// LoginOK logs in and waits until the chat shows.
func (p *webPage) LoginOK(nick, password string) {
	p.t.Helper()
	p.Login(nick, password)
	p.WaitConnected()
}

// Type types a line into the input and presses Enter.
func (p *webPage) Type(line string) {
	p.t.Helper()
	p.waitJS("the input", webWait, `vis($('form#send')) && vis($('#input'))`)
	if err := p.do(webWait, chromedp.SendKeys(chromedp.CSS("#input"), line+kb.Enter)); err != nil {
		p.t.Fatalf("%s: typing %q: %v\n%s", p.name, line, err, p.debug())
	}
	// The page takes the line (and empties the input) when it sends it.
	p.waitJS("the input to be emptied after Enter", webWait, `$('#input').value === ''`)
}

// Click clicks the first element matching the CSS selector.
func (p *webPage) Click(sel string) {
	p.t.Helper()
	p.waitJS("clickable "+sel, webWait, `vis($(`+js(sel)+`))`)
	if err := p.do(webWait, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("%s: clicking %s: %v\n%s", p.name, sel, err, p.debug())
	}
}

// ClickNick clicks nick's name in the nick list (left in its entry, away
// from its block button).
func (p *webPage) ClickNick(nick string) {
	p.t.Helper()
	li := `document.querySelector('#nicklist li[data-nick="' + ` + js(nick) + ` + '"]')`
	p.waitJS(nick+" in the nick list", webWait, `vis(`+li+`)`)
	type pt struct{ X, Y float64 }
	at := eval[pt](p, `(() => { const li = `+li+`; li.scrollIntoView({block: 'nearest'});
		const e = [...li.children].find(c => c.tagName !== 'BUTTON' && vis(c)) || li;
		const r = e.getBoundingClientRect(); return {X: r.left + Math.min(8, r.width / 2), Y: r.top + r.height / 2}; })()`)
	if err := p.do(webWait, chromedp.MouseClickXY(at.X, at.Y)); err != nil {
		p.t.Fatalf("%s: clicking %s in the nick list: %v\n%s", p.name, nick, err, p.debug())
	}
}

// Tab brings the conversation with target to the front.
func (p *webPage) Tab(target string) {
	p.t.Helper()
	p.Click(`#tabs button.tab[data-target=` + js(target) + `]`)
	p.waitJS("tab "+target+" selected", webWait, `tab(`+js(target)+`).getAttribute('aria-selected') === 'true' && vis(log(`+js(target)+`))`)
}

// lineInfo is what the page shows for one line (div.line).
type lineInfo struct {
	From    string `json:"from"`
	Kind    string `json:"kind"`
	MsgID   string `json:"msgid"`
	Time    string `json:"time"`
	Nick    string `json:"nick"`
	Text    string `json:"text"`
	Visible bool   `json:"visible"`
}

// WaitLine waits until the log of target shows a line from from (any
// sender if from is "") whose text contains text, and returns it.
func (p *webPage) WaitLine(target, from, text string) lineInfo {
	p.t.Helper()
	fromJS := "null"
	if from != "" {
		fromJS = js(from)
	}
	q := `find(` + js(target) + `, ` + fromJS + `, ` + js(text) + `)`
	p.waitJS(fmt.Sprintf("%q from %q in the log of %s", text, from, target), webWait, q+`.length > 0`)
	return eval[lineInfo](p, `lineInfo(`+q+`[0])`)
}

// Lines returns the lines of target's log whose text contains text.
func (p *webPage) Lines(target, text string) []lineInfo {
	p.t.Helper()
	return eval[[]lineInfo](p, `find(`+js(target)+`, null, `+js(text)+`).map(lineInfo)`)
}

// ---- the tests ----

// webSetup starts a server with a web listener (after checking that
// Chromium is there) and a Chromium for the test.
func webSetup(t *testing.T, opt serverOptions) (*server, context.Context) {
	t.Helper()
	chromiumPath(t)
	s := startWebServer(t, opt)
	return s, startChromium(t)
}

// rawIn logs a raw client in and waits for its NAMES.
func rawIn(t *testing.T, s *server, nick string) *rawClient {
	t.Helper()
	c := dialRaw(t, s)
	c.Login(nick, nick+"pw")
	return c
}

// aliceIn logs alice in from the page and waits until each of the raw
// users already in #lobby has seen her join.
func aliceIn(t *testing.T, br context.Context, s *server, others ...*rawClient) *webPage {
	t.Helper()
	p := openPage(t, br, s, "alice", "")
	p.LoginOK("alice", "alicepw")
	for _, o := range others {
		o.Expect(`:alice!\S+ JOIN :?#lobby`, webWait)
	}
	return p
}

// TestWebChannel: alice logs in from the browser and talks in #lobby
// with bob on raw TCP; each sees the other's line; alice's own line and
// bob's show with data-from, a msgid and the time of the message.
func TestWebChannel(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	p := aliceIn(t, br, s, bob)
	p.waitJS("#lobby selected", webWait, `tab('#lobby').getAttribute('aria-selected') === 'true' && vis(log('#lobby'))`)

	out := uniq("hello from the browser")
	p.Type(out)
	bob.Expect(`:alice!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(out)+`$`, webWait)
	mine := p.WaitLine("#lobby", "alice", out)

	in := uniq("hello from bob")
	before := time.Now()
	bob.Send("PRIVMSG #lobby :%s", in)
	got := p.WaitLine("#lobby", "bob", in)
	if got.Kind != "privmsg" || got.Nick != "bob" || got.MsgID == "" || !got.Visible {
		t.Errorf("bob's line: %+v; want kind privmsg, .nick bob, a msgid, visible", got)
	}
	checkTime(t, "bob's line", got.Time, before, time.Now())
	if mine.Kind != "privmsg" || mine.Time == "" {
		t.Errorf("alice's own line: %+v; want kind privmsg with a time", mine)
	}
	if n := len(p.Lines("#lobby", in)); n != 1 {
		t.Errorf("bob's line shown %d times, want 1\n%s", n, p.debug())
	}

	// /me: an action, for bob a CTCP ACTION.
	act := uniq("waves from the browser")
	p.Type("/me " + act)
	bob.Expect(`:alice!\S+ PRIVMSG #lobby :\x01ACTION `+regexp.QuoteMeta(act)+"\x01$", webWait)
	if l := p.WaitLine("#lobby", "alice", act); l.Kind != "action" {
		t.Errorf("alice's /me: %+v; want data-kind action", l)
	}
	// carol comes and goes: a join line, then a quit line, from her.
	carol := rawIn(t, s, "carol")
	p.waitJS("carol's join line", webWait, `lines('#lobby').some(l => l.dataset.kind === 'join' && l.dataset.from === 'carol')`)
	p.waitJS("carol in the nick list", webWait, `!!$('#nicklist li[data-nick="carol"]')`)
	carol.Send("QUIT :see you")
	p.waitJS("carol's quit line", webWait, `lines('#lobby').some(l => l.dataset.kind === 'quit' && l.dataset.from === 'carol')`)
	p.waitJS("carol gone from the nick list", webWait, `!$('#nicklist li[data-nick="carol"]')`)

	bact := uniq("bob dances")
	bob.Send("PRIVMSG #lobby :\x01ACTION %s\x01", bact)
	if l := p.WaitLine("#lobby", "bob", bact); l.Kind != "action" || strings.Contains(l.Text, "ACTION") {
		t.Errorf("bob's action: %+v; want data-kind action without the CTCP wrapping", l)
	}
}

// checkTime parses a time[datetime] value and checks it is within
// [from-1s, to+1s] (server-time has millisecond precision; the clocks are
// the same machine's).
func checkTime(t *testing.T, what, datetime string, from, to time.Time) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, datetime)
	if err != nil {
		t.Errorf("%s: time[datetime]=%q is not ISO-8601: %v", what, datetime, err)
		return time.Time{}
	}
	if ts.Before(from.Add(-time.Second)) || ts.After(to.Add(time.Second)) {
		t.Errorf("%s: time[datetime]=%s, want between %s and %s", what, datetime, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	return ts
}

// TestWebPrivate: /msg from the page reaches bob; bob's PRIVMSG opens a
// tab for bob (with an unread count while it is not in front) with the
// text in its log.
func TestWebPrivate(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	p := aliceIn(t, br, s, bob)

	out := uniq("hi bob")
	p.Type("/msg bob " + out)
	bob.Expect(`:alice!\S+ PRIVMSG bob :`+regexp.QuoteMeta(out)+`$`, webWait)

	in := uniq("hi alice")
	bob.Send("PRIVMSG alice :%s", in)
	got := p.WaitLine("bob", "bob", in)
	if got.Kind != "privmsg" {
		t.Errorf("bob's PM: %+v; want data-kind privmsg", got)
	}
	p.waitJS("a tab for bob", webWait, `!!tab('bob')`)
	// The line sent with /msg is in the same conversation.
	p.WaitLine("bob", "alice", out)

	// A second message while #lobby is in front counts as unread.
	p.Tab("#lobby")
	in2 := uniq("are you there")
	bob.Send("PRIVMSG alice :%s", in2)
	p.WaitLine("bob", "bob", in2)
	p.waitJS("an unread count on bob's tab", webWait, `/[1-9]/.test(txt(tab('bob').querySelector('.unread')))`)
	p.Tab("bob")
	p.waitJS("the unread count cleared", webWait, `!/[1-9]/.test(txt(tab('bob').querySelector('.unread')))`)

	// /query opens a conversation without a message; /close closes it.
	p.Type("/query carol")
	p.waitJS("a tab for carol, in front", webWait, `!!tab('carol') && tab('carol').getAttribute('aria-selected') === 'true'`)
	p.Type("/close")
	p.waitJS("carol's tab closed", webWait, `!tab('carol')`)
}

// TestWebOfflineMessage: bob writes to alice while she is offline; when
// she logs in from the page, the line is in her conversation with bob at
// the time bob sent it, not at login.
func TestWebOfflineMessage(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	text := uniq("while you were out")
	bob.Send("PRIVMSG alice :%s", text)
	sent := serverTime(t, bob.Expect(` 301 bob alice `, webWait))
	// Let the clock move on, so the stored time and the login time differ.
	waitUntil(sent.Add(2500 * time.Millisecond))

	p := openPage(t, br, s, "alice", "")
	login := time.Now()
	p.LoginOK("alice", "alicepw")
	got := p.WaitLine("bob", "bob", text)
	shown, err := time.Parse(time.RFC3339Nano, got.Time)
	if err != nil {
		t.Fatalf("offline line %+v: time[datetime] is not ISO-8601: %v\n%s", got, err, p.debug())
	}
	if d := shown.Sub(sent); d < -time.Second || d > time.Second || !shown.Before(login.Add(-time.Second)) {
		t.Errorf("offline message shown at %s; stored at %s, logged in at %s (server-time not used?)\n%s",
			got.Time, sent.UTC().Format(time.RFC3339Nano), login.UTC().Format(time.RFC3339Nano), p.debug())
	}
	if n := len(p.Lines("bob", text)); n != 1 {
		t.Errorf("offline message shown %d times, want 1\n%s", n, p.debug())
	}
	t.Logf("offline message stored at %s, login at %s, shown with datetime=%s",
		sent.UTC().Format("15:04:05.000"), login.UTC().Format("15:04:05.000"), got.Time)
}

// TestWebBlock: alice blocks bob with the nick list's block button: bob's
// lines in #lobby and his PMs no longer reach her, #blocks lists him;
// the unblock button there lets him through again. /block and /unblock
// typed do the same.
func TestWebBlock(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	carol := rawIn(t, s, "carol")
	p := aliceIn(t, br, s, bob)
	carol.Expect(`:alice!\S+ JOIN :?#lobby`, webWait)
	before := uniq("bob before the block")
	bob.Send("PRIVMSG #lobby :%s", before)
	p.WaitLine("#lobby", "bob", before)

	// sync has alice say something and waits until bob has it: the server
	// handled everything the page sent before.
	sync := func(word string) {
		t.Helper()
		m := uniq(word)
		p.Type(m)
		bob.Expect(`:alice!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(m)+`$`, webWait)
	}
	// blocked checks that bob's lobby line and PM do not show: carol's
	// lines, sent after the server dropped bob's, show first.
	blocked := func(round string) {
		t.Helper()
		chanLine, pm := uniq("bob in lobby while blocked "+round), uniq("bob pm while blocked "+round)
		bob.Send("PRIVMSG #lobby :%s", chanLine)
		bob.Send("PRIVMSG alice :%s", pm)
		bob.Sync()
		fence, fencePM := uniq("carol fence "+round), uniq("carol pm fence "+round)
		carol.Send("PRIVMSG #lobby :%s", fence)
		carol.Send("PRIVMSG alice :%s", fencePM)
		p.WaitLine("#lobby", "carol", fence)
		p.WaitLine("carol", "carol", fencePM)
		p.Tab("#lobby")
		if l := p.Lines("#lobby", chanLine); len(l) > 0 && l[0].Visible {
			t.Errorf("%s: bob's lobby line shows while he is blocked: %+v", round, l)
		}
		if l := p.Lines("bob", pm); len(l) > 0 {
			t.Errorf("%s: bob's PM shows while he is blocked: %+v", round, l)
		}
	}
	unblocked := func(round string) {
		t.Helper()
		chanLine, pm := uniq("bob in lobby after unblock "+round), uniq("bob pm after unblock "+round)
		bob.Send("PRIVMSG #lobby :%s", chanLine)
		bob.Send("PRIVMSG alice :%s", pm)
		if l := p.WaitLine("#lobby", "bob", chanLine); !l.Visible {
			p.Tab("#lobby")
			if l := p.Lines("#lobby", chanLine); len(l) == 0 || !l[0].Visible {
				t.Errorf("%s: bob's lobby line after unblock is hidden: %+v", round, l)
			}
		}
		p.WaitLine("bob", "bob", pm)
	}

	// The nick list's block button.
	p.Click(`#nicklist li[data-nick="bob"] button.block[data-nick="bob"]`)
	p.waitJS("bob in #blocks", webWait, `!!$('#blocks li[data-nick="bob"]')`)
	sync("sync after block button")
	blocked("button")
	p.Click(`#blocks li[data-nick="bob"] button.unblock[data-nick="bob"]`)
	p.waitJS("bob out of #blocks", webWait, `!$('#blocks li[data-nick="bob"]')`)
	sync("sync after unblock button")
	unblocked("button")

	// The commands.
	p.Tab("#lobby")
	p.Type("/block bob")
	p.waitJS("bob in #blocks after /block", webWait, `!!$('#blocks li[data-nick="bob"]')`)
	sync("sync after /block")
	blocked("command")
	p.Tab("#lobby")
	p.Type("/unblock bob")
	p.waitJS("bob out of #blocks after /unblock", webWait, `!$('#blocks li[data-nick="bob"]')`)
	sync("sync after /unblock")
	unblocked("command")
}

// TestWebReconnect: the server stops (SIGTERM) while alice is logged in
// from the page; the page says "reconnecting", and once the server runs
// again on the same ports it logs in again by itself: "connected", and a
// new line from bob shows in #lobby.
func TestWebReconnect(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	p := openPage(t, br, s, "alice", "")
	p.LoginOK("alice", "alicepw")
	first := p.WebSockets()

	s.stopSignal(syscall.SIGTERM)
	p.waitJS(`"reconnecting" while the server is down`, webWait, `/reconnecting/i.test(status())`)
	s.restartSamePorts(t)
	p.waitJS("connected again", 60*time.Second, `connected() && $('form#login').hidden && !!log('#lobby')`)
	if n := p.WebSockets(); n <= first {
		t.Errorf("connected again without a new WebSocket (%d, was %d)", n, first)
	}
	bob := rawIn(t, s, "bob")
	// alice is back in #lobby: bob sees her in NAMES or JOIN.
	text := uniq("welcome back")
	bob.Send("PRIVMSG #lobby :%s", text)
	p.WaitLine("#lobby", "bob", text)
	out := uniq("alice after the restart")
	p.Type(out)
	bob.Expect(`:alice!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(out)+`$`, webWait)
}

// TestWebLockout: three wrong passwords typed in the page lock the
// account; the page then says "retry in N s".
func TestWebLockout(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	p := openPage(t, br, s, "alice", "")
	for i := 1; i <= 3; i++ {
		p.Login("alice", fmt.Sprintf("wrong%d", i))
		// The server has refused it (its log says so), then the page
		// shows why.
		waitFor(t, fmt.Sprintf("failed login %d in the server log", i), webWait, func() (bool, string) {
			return strings.Count(s.Log(), "login failed") >= i, s.Log()
		})
		if i < 3 {
			p.waitJS(fmt.Sprintf("the wrong-password message (attempt %d)", i), webWait,
				`/wrong name or password/i.test(loginError()) && vis($('#login-error')) && vis($('form#login'))`)
		} else {
			p.waitJS("a message after the third attempt", webWait,
				`/wrong name or password|retry in \d+ ?s/i.test(loginError()) && vis($('#login-error')) && vis($('form#login'))`)
		}
	}
	if n := strings.Count(s.Log(), "login failed"); n != 3 {
		t.Fatalf("%d failed logins in the server log, want 3:\n%s", n, s.Log())
	}
	// The third failure started the lockout; the page shows the lockout
	// when it learns of it: at the latest on the next attempt, with the
	// right password.
	locked := `/retry in \d+ ?s/i.test(loginError()) && vis($('#login-error'))`
	if ok, _ := evalJS[bool](p, locked); !ok {
		p.Login("alice", "alicepw")
	}
	p.waitJS(`"retry in N s"`, webWait, locked)
	msg := eval[string](p, `loginError()`)
	m := regexp.MustCompile(`(?i)retry in (\d+) ?s`).FindStringSubmatch(msg)
	if m == nil || m[1] == "0" {
		t.Errorf("lockout message %q: want a positive number of seconds", msg)
	}
	if eval[bool](p, `connected()`) {
		t.Errorf("locked out, yet the page says connected\n%s", p.debug())
	}
	// Retrying cannot help: the page stays on the form with the message.
	sockets := p.WebSockets()
	p.holdJS("the lockout message, without a reconnect", 3*time.Second, locked+` && vis($('form#login')) && !/reconnecting/i.test(status())`)
	if n := p.WebSockets(); n != sockets {
		t.Errorf("the page opened %d more WebSocket(s) after the lockout\n%s", n-sockets, p.debug())
	}
	t.Logf("lockout message: %q", msg)
}

// TestWebWrongPassword: a wrong password shows "wrong name or password"
// and the login form stays, usable: the right password then logs in.
func TestWebWrongPassword(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	p := openPage(t, br, s, "alice", "")
	p.Login("alice", "not-the-password")
	p.waitJS("the wrong-password message", webWait,
		`/wrong name or password/i.test(loginError()) && vis($('#login-error')) && vis($('form#login')) && !$('form#login').hidden`)
	if eval[bool](p, `/reconnecting/i.test(status())`) {
		t.Errorf("a refused login says reconnecting\n%s", p.debug())
	}
	p.LoginOK("alice", "alicepw")
}

// TestWebAlreadyLoggedIn: alice is logged in over TCP; the page's login
// as alice is refused with "already logged in", the form stays with the
// message, and the page does not try again (no new WebSocket, no
// "reconnecting").
func TestWebAlreadyLoggedIn(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{Accounts: "on_duplicate = \"reject\"\nduplicate_ping = \"0s\"\n"})
	rawIn(t, s, "alice")
	p := openPage(t, br, s, "alice", "")
	p.Login("alice", "alicepw")
	shown := `/already logged in/i.test(loginError()) && vis($('#login-error')) && vis($('form#login')) && !$('form#login').hidden`
	p.waitJS(`"already logged in"`, webWait, shown)
	sockets := p.WebSockets()
	p.holdJS("the refusal, without a reconnect", 4*time.Second, shown+` && !/reconnecting/i.test(status())`)
	if n := p.WebSockets(); n != sockets {
		t.Errorf("the page opened %d more WebSocket(s) after the refusal\n%s", n-sockets, p.debug())
	}
	if n := strings.Count(s.Log(), "login refused: already logged in"); n != 1 {
		t.Errorf("%d refused logins in the server log, want 1 (the page tried again?)\n%s", n, s.Log())
	}
}

// TestWebHistory: bob and carol talk in #lobby before alice logs in from
// the page; their lines are in her #lobby log after login (CHATHISTORY),
// each once, with the times they were said.
func TestWebHistory(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	carol := rawIn(t, s, "carol")
	var said []string
	start := time.Now()
	for i := 0; i < 3; i++ {
		b, c := uniq(fmt.Sprintf("bob says %d", i)), uniq(fmt.Sprintf("carol says %d", i))
		bob.Send("PRIVMSG #lobby :%s", b)
		carol.Expect(regexp.QuoteMeta(b), webWait)
		carol.Send("PRIVMSG #lobby :%s", c)
		bob.Expect(regexp.QuoteMeta(c), webWait)
		said = append(said, b, c)
	}
	end := time.Now()

	p := openPage(t, br, s, "alice", "")
	p.LoginOK("alice", "alicepw")
	for i, text := range said {
		from := map[int]string{0: "bob", 1: "carol"}[i%2]
		l := p.WaitLine("#lobby", from, text)
		checkTime(t, "history line "+text, l.Time, start, end)
	}
	if !eval[bool](p, `!!log('#lobby').querySelector('div.day-sep')`) {
		t.Errorf("no div.day-sep in #lobby before the day's lines\n%s", p.debug())
	}
	// A live line after the history: once it shows, the history answer
	// is in; each old line must be there once, in order.
	live := uniq("bob live")
	bob.Send("PRIVMSG #lobby :%s", live)
	p.WaitLine("#lobby", "bob", live)
	texts := eval[[]string](p, `lines('#lobby').map(l => txt(l.querySelector('.text')))`)
	last := -1
	for _, text := range append(said, live) {
		n, at := 0, -1
		for i, s := range texts {
			if strings.Contains(s, text) {
				n++
				at = i
			}
		}
		if n != 1 {
			t.Errorf("%q shown %d times in #lobby, want once\n%s", text, n, p.debug())
		}
		if at < last {
			t.Errorf("%q out of order in #lobby: %q", text, texts)
		}
		last = at
	}
}

// TestWebWhoelse: the WHOELSE and WHOLASTHR buttons list the other users
// in #who-panel; the nick list has them, and /away marks alice away for
// bob.
func TestWebWhoelse(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	dave := rawIn(t, s, "dave")
	dave.Send("QUIT :gone")
	dave.Expect(`^ERROR `, webWait)
	p := aliceIn(t, br, s, bob)
	p.waitJS("bob in the nick list", webWait, `!!$('#nicklist li[data-nick="bob"]') && !!$('#nicklist li[data-nick="alice"]')`)

	p.Click("button#btn-whoelse")
	p.waitJS("bob in the WHOELSE panel", webWait,
		`vis($('#who-panel')) && whoHas('bob')`)
	if eval[bool](p, `whoHas('alice') || whoHas('dave')`) {
		t.Errorf("WHOELSE lists alice (herself) or dave (offline)\n%s", p.debug())
	}
	p.Click("button#btn-wholasthr")
	p.waitJS("bob and dave in the WHOLASTHR panel", webWait,
		`vis($('#who-panel')) && whoHas('bob') && whoHas('dave')`)

	// bob away and back: his entry in the nick list has the class away
	// while he is.
	bob.Send("AWAY :lunch")
	p.waitJS("bob marked away in the nick list", webWait, `$('#nicklist li[data-nick="bob"]').classList.contains('away')`)
	bob.Send("AWAY")
	p.waitJS("bob back in the nick list", webWait, `!$('#nicklist li[data-nick="bob"]').classList.contains('away')`)

	// Typed, the same.
	p.Type("/whoelse")
	p.waitJS("bob in the panel after /whoelse", webWait,
		`vis($('#who-panel')) && whoHas('bob') && !whoHas('dave')`)

	// Clicking a nick opens a conversation.
	p.ClickNick("bob")
	p.waitJS("a tab for bob, in front", webWait, `!!tab('bob') && tab('bob').getAttribute('aria-selected') === 'true'`)

	// /away: bob asks WHO and sees alice gone (G); back, here (H).
	p.Type("/away lunch")
	waitAway := func(flag string) {
		t.Helper()
		waitFor(t, "alice's away flag "+flag, webWait, func() (bool, string) {
			bob.Send("WHO alice")
			line := bob.Expect(` 352 bob \S+ \S+ \S+ \S+ alice [HG]`, webWait)
			return regexp.MustCompile(` alice ` + flag).MatchString(line), line
		})
	}
	waitAway("G")
	p.Type("/away")
	waitAway("H")
}

// TestWebQuote: /quote sends a raw line; /logout signs out, for good.
func TestWebQuote(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	p := openPage(t, br, s, "alice", "")
	p.LoginOK("alice", "alicepw")
	text := uniq("raw from the browser")
	p.Type("/quote PRIVMSG bob :" + text)
	bob.Expect(`:alice!\S+ PRIVMSG bob :`+regexp.QuoteMeta(text)+`$`, webWait)

	// /logout: the login form again, and bob sees alice quit.
	p.Type("/logout")
	p.waitJS("the login form after /logout", webWait, `vis($('form#login')) && !$('form#login').hidden`)
	bob.Expect(`:alice!\S+ QUIT `, webWait)
	p.holdJS("no reconnect after /logout", 2*time.Second, `!/reconnecting/i.test(status()) && vis($('form#login'))`)
}

// TestWebLogoutButton: the logout button ends the session.
func TestWebLogoutButton(t *testing.T) {
	t.Parallel()
	s, br := webSetup(t, serverOptions{})
	bob := rawIn(t, s, "bob")
	p := aliceIn(t, br, s, bob)
	p.Click("button#logout")
	p.waitJS("the login form after logout", webWait, `vis($('form#login')) && !$('form#login').hidden`)
	bob.Expect(`:alice!\S+ QUIT `, webWait)
}

// crossOriginPage is a page of another origin that opens a WebSocket to
// the address in its ?ws= and records what happened in window.result.
const crossOriginPage = `<!doctype html><html><head><meta charset="utf-8"><title>other</title></head><body><script>
window.result = "pending";
function tryWS(url) {
	window.result = "pending";
	const ws = new WebSocket(url, ["text.ircv3.net"]);
	ws.onopen = () => { if (window.result === "pending") window.result = "open"; ws.close(); };
	ws.onerror = () => { if (window.result === "pending") window.result = "error"; };
	ws.onclose = () => { if (window.result === "pending") window.result = "close"; };
}
tryWS(new URLSearchParams(location.search).get("ws"));
</script></body></html>`

// TestWebCrossOrigin: a page of another origin (another port of
// 127.0.0.1) cannot open the IRC WebSocket: the server refuses it (403)
// and the socket fails before it opens. The same script from the page's
// own origin connects.
func TestWebCrossOrigin(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	// The other origin first: the second server allows it by name.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, crossOriginPage)
	}))
	t.Cleanup(other.Close)
	otherHost := other.Listener.Addr().String()
	s, br := webSetup(t, serverOptions{})
	allowing := startWebServer(t, serverOptions{Extra: fmt.Sprintf("allowed_origins = [%q]\n", otherHost)})
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d/irc", s.WebPort)
	if _, port, _ := net.SplitHostPort(otherHost); port == fmt.Sprint(s.WebPort) {
		t.Fatal("the other origin has the server's port")
	}

	foreign := openPage(t, br, s, "foreign", other.URL+"/?ws="+wsURL)
	foreign.waitJS("the foreign page's WebSocket to end", webWait, `window.result !== "pending"`)
	if r := eval[string](foreign, `window.result`); r == "open" {
		t.Errorf("a page from %s opened the IRC WebSocket (result %q)\n%s", other.URL, r, foreign.debug())
	}
	// Refused by the server (403), not failed for another reason.
	if ev := strings.Join(foreign.eventsSnapshot(), "\n"); !regexp.MustCompile(`ws handshake 403|ws error .*\b403\b`).MatchString(ev) {
		t.Errorf("the foreign page's WebSocket failed, but not with a 403 from the server:\n%s", ev)
	}

	// The page's own origin: the same script (DevTools' evaluation is not
	// subject to the page's CSP, the connection is).
	own := openPage(t, br, s, "own", "")
	own.waitJS("the page to load", webWait, `document.readyState === 'complete'`)
	eval[chromedp.Void](own, `(() => { window.result = 'pending'; const ws = new WebSocket(`+js(wsURL)+`, ['text.ircv3.net']);
		ws.onopen = () => { if (window.result === 'pending') window.result = 'open'; ws.close(); };
		ws.onerror = () => { if (window.result === 'pending') window.result = 'error'; };
		ws.onclose = () => { if (window.result === 'pending') window.result = 'close'; }; })()`)
	own.waitJS("the own-origin WebSocket to open", webWait, `window.result === 'open'`)

	// A server whose allowed_origins names the other origin lets its page
	// in.
	allowedURL := fmt.Sprintf("ws://127.0.0.1:%d/irc", allowing.WebPort)
	named := openPage(t, br, allowing, "allowed", other.URL+"/?ws="+allowedURL)
	named.waitJS("the allowed origin's WebSocket to open", webWait, `window.result === 'open'`)
}

func (p *webPage) eventsSnapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

// TestWebTLS: the page served over HTTPS from [web] tls_listen (the [tls]
// certificate, self-signed here, so Chromium is told to accept it) talks
// to the server over wss:// and works as over http.
func TestWebTLS(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	dir := t.TempDir()
	writeTestCert(t, dir)
	cfg := tlsServerConfig + "[web]\ntls_listen = [\"127.0.0.1:0\"]\n"
	s := startServerConfig(t, dir, cfg, defaultUsers)
	if s.WebTLSPort == 0 {
		t.Fatalf("no TLS web listener in the log:\n%s", s.Log())
	}
	br := startChromium(t, chromedp.Flag("ignore-certificate-errors", true))
	bob := rawIn(t, s, "bob")
	p := openPage(t, br, s, "alice", fmt.Sprintf("https://127.0.0.1:%d/", s.WebTLSPort))
	p.LoginOK("alice", "alicepw")
	if ev := strings.Join(p.eventsSnapshot(), "\n"); !strings.Contains(ev, fmt.Sprintf("ws created wss://127.0.0.1:%d/", s.WebTLSPort)) {
		t.Errorf("the page over https did not open a wss:// WebSocket to its host:\n%s", ev)
	}
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, webWait)
	out := uniq("over wss")
	p.Type(out)
	bob.Expect(`:alice!\S+ PRIVMSG #lobby :`+regexp.QuoteMeta(out)+`$`, webWait)
	in := uniq("back over tcp")
	bob.Send("PRIVMSG #lobby :%s", in)
	p.WaitLine("#lobby", "bob", in)
}
