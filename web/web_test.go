package web_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/local"
	"github.com/lobbychat/ircd/store"
	"github.com/lobbychat/ircd/web"
)

const wait = 5 * time.Second

// server is one ircd server with a TCP listener and a web listener, on
// 127.0.0.1.
type server struct {
	srv     *ircd.Server
	tcpAddr string
	webURL  string // http://127.0.0.1:port
}

func start(t *testing.T, cfg web.Config) *server {
	t.Helper()
	return startConfig(t, cfg, ircd.Config{ServerName: "irc.test", History: 50})
}

func startConfig(t *testing.T, cfg web.Config, icfg ircd.Config) *server {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "ircd.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := local.NewPresence(st, local.PresenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := accounts.Parse(strings.NewReader("alice alicepw\nbob bobpw\n"), "users.txt")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ircd.New(icfg, ircd.Backends{
		Accounts: accounts.New(db, nil), Presence: p, Mailbox: st, Silences: st, Bus: &local.Bus{}, Node: "t"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	h, err := web.New(srv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		srv.Shutdown(ctx)
		p.Close()
		st.Close()
	})
	return &server{srv: srv, tcpAddr: l.Addr().String(), webURL: hs.URL}
}

// wsClient is an IRC client over WebSocket.
type wsClient struct {
	t     *testing.T
	c     *websocket.Conn
	proto string
}

func (s *server) dialWS(t *testing.T, protos []string, header http.Header) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.webURL, "http")+"/irc",
		&websocket.DialOptions{Subprotocols: protos, HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c, proto: c.Subprotocol()}, resp, nil
}

// dialText opens a text.ircv3.net WebSocket, failing the test if it is
// refused.
func (s *server) dialText(t *testing.T, header http.Header) *wsClient {
	t.Helper()
	w, _, err := s.dialWS(t, []string{"text.ircv3.net"}, header)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *wsClient) send(line string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
		w.t.Fatal(err)
	}
}

// expect reads messages until one matches re; each message must be one
// line without CRLF.
func (w *wsClient) expect(re string) string {
	w.t.Helper()
	rx := regexp.MustCompile(re)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		typ, msg, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("waiting for /%s/: %v", re, err)
		}
		line := string(msg)
		if strings.ContainsAny(line, "\r\n") {
			w.t.Fatalf("a message with a line ending: %q", line)
		}
		if want := websocket.MessageText; w.proto == "binary.ircv3.net" {
			want = websocket.MessageBinary
			if typ != want {
				w.t.Fatalf("message type %v, want %v", typ, want)
			}
		}
		if testing.Verbose() {
			w.t.Log("<<", line)
		}
		if rx.MatchString(line) {
			return line
		}
	}
}

func (w *wsClient) login(nick string) {
	w.t.Helper()
	w.send("PASS " + nick + "pw")
	w.send("NICK " + nick)
	w.send("USER " + nick + " 0 * :" + nick)
	w.expect(` 366 ` + nick + ` `)
}

// tcpClient is an ordinary IRC client on the TCP listener.
type tcpClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (s *server) dialTCP(t *testing.T, nick string) *tcpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.tcpAddr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := &tcpClient{t: t, c: c, r: bufio.NewReader(c)}
	c.Write([]byte("PASS " + nick + "pw\r\nNICK " + nick + "\r\nUSER " + nick + " 0 * :" + nick + "\r\n"))
	tc.expect(` 366 ` + nick + ` `)
	return tc
}

func (c *tcpClient) expect(re string) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	c.c.SetReadDeadline(time.Now().Add(wait))
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("waiting for /%s/: %v", re, err)
		}
		if line = strings.TrimRight(line, "\r\n"); rx.MatchString(line) {
			return line
		}
	}
}

func TestSubprotocolFollowsTheClientsOrder(t *testing.T) {
	s := start(t, web.Config{})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"binary.ircv3.net", "text.ircv3.net"}, "binary.ircv3.net"},
		{[]string{"text.ircv3.net", "binary.ircv3.net"}, "text.ircv3.net"},
		{[]string{"chat", "text.ircv3.net"}, "text.ircv3.net"},
		{nil, ""}, // none: accepted, spoken as text
	} {
		w, _, err := s.dialWS(t, tc.offer, nil)
		if err != nil {
			t.Fatalf("offer %v: %v", tc.offer, err)
		}
		if w.proto != tc.want {
			t.Fatalf("offer %v: got %q, want %q", tc.offer, w.proto, tc.want)
		}
		w.send("PING x")
		w.expect(`PONG irc\.test :?x$`)
	}
}

// A web user and a TCP user in the same room, and between them: one IRC
// line per WebSocket message either way.
func TestWebAndTCPUsersTalk(t *testing.T) {
	s := start(t, web.Config{})
	w := s.dialText(t, nil)
	w.login("alice")
	bob := s.dialTCP(t, "bob")
	w.expect(`:bob!\S+ JOIN #lobby$`)
	w.send("PRIVMSG #lobby :from the web")
	bob.expect(`:alice!alice@127\.0\.0\.1 PRIVMSG #lobby :from the web$`)
	bob.c.Write([]byte("PRIVMSG alice :to the web\r\n"))
	w.expect(`:bob!\S+ PRIVMSG alice :to the web$`)
	// History: a web client that joins later asks for what was said.
	w.send("CAP REQ :batch")
	w.send("CHATHISTORY LATEST #lobby * 10")
	w.expect(`BATCH \+\S+ chathistory #lobby$`)
	w.expect(`^@batch=\S+ :alice!\S+ PRIVMSG #lobby :from the web$`)
	w.expect(`BATCH -\S+$`)
}

// Text mode carries UTF-8 only: invalid bytes from a web user are
// replaced, not relayed.
func TestInvalidUTF8Replaced(t *testing.T) {
	s := start(t, web.Config{})
	w := s.dialText(t, nil)
	w.login("alice")
	bob := s.dialTCP(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte("PRIVMSG #lobby :bad \xff byte\r\nPRIVMSG #lobby :smuggled")); err != nil {
		t.Fatal(err)
	}
	line := bob.expect(`PRIVMSG #lobby :bad`)
	if !strings.Contains(line, "bad \uFFFD byte") || !strings.Contains(line, "smuggled") {
		t.Fatalf("got %q: want the byte replaced and the CRLF inside one message kept in one line", line)
	}
}

// A message longer than the longest line (8191 bytes of tags + 512)
// ends the connection.
func TestOversizeMessageRefused(t *testing.T) {
	s := start(t, web.Config{})
	w := s.dialText(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	w.c.Write(ctx, websocket.MessageText, []byte("PRIVMSG #lobby :"+strings.Repeat("x", 9000)))
	_, _, err := w.c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("after an oversize message: %v, want close 1009", err)
	}
}

func TestOriginChecked(t *testing.T) {
	s := start(t, web.Config{AllowedOrigins: []string{"chat.example.org"}})
	_, resp, err := s.dialWS(t, []string{"text.ircv3.net"}, http.Header{"Origin": {"http://evil.example.com"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a page from another site: %v, %v; want 403", err, resp)
	}
	if _, _, err := s.dialWS(t, []string{"text.ircv3.net"}, http.Header{"Origin": {"https://chat.example.org"}}); err != nil {
		t.Fatalf("an allowed origin: %v", err)
	}
	if _, _, err := s.dialWS(t, []string{"text.ircv3.net"}, http.Header{"Origin": {s.webURL}}); err != nil {
		t.Fatalf("the page's own origin: %v", err)
	}
}

// The user's address is X-Forwarded-For's only behind a trusted proxy.
func TestForwardedForFromTrustedProxiesOnly(t *testing.T) {
	_, loop, _ := net.ParseCIDR("127.0.0.1/32")
	xff := http.Header{"X-Forwarded-For": {"198.51.100.9, 203.0.113.7"}}
	for _, tc := range []struct {
		proxies []*net.IPNet
		want    string
	}{
		{nil, `127\.0\.0\.1`},
		{[]*net.IPNet{loop}, `203\.0\.113\.7`},
	} {
		s := start(t, web.Config{TrustedProxies: tc.proxies})
		w := s.dialText(t, xff)
		w.login("alice")
		w.send("WHOIS alice")
		w.expect(` 311 alice alice alice ` + tc.want + ` \* :alice$`)
	}
}

// The per-address limit counts a web user by their own address: from one
// address it holds over WebSocket as over TCP, and behind a trusted proxy
// each forwarded address has a count of its own, so one busy address does
// not lock out everyone else behind the proxy.
func TestPerAddressLimitOverWebSocket(t *testing.T) {
	_, loop, _ := net.ParseCIDR("127.0.0.1/32")
	s := startConfig(t, web.Config{TrustedProxies: []*net.IPNet{loop}}, ircd.Config{ServerName: "irc.test", MaxPerIP: 3})
	from := func(ip string) *wsClient { return s.dialText(t, http.Header{"X-Forwarded-For": {ip}}) }
	for range 3 {
		w := from("203.0.113.7")
		w.send("PING counted")
		w.expect(` PONG \S+ :?counted$`)
	}
	from("203.0.113.7").expect(`^ERROR :Closing link: Too many connections from your address$`)
	from("198.51.100.9").login("alice")
}

func TestPageHeaders(t *testing.T) {
	s := start(t, web.Config{})
	resp, err := http.Get(s.webURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("ETag") == "" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, h)
	}
	if h.Get("Strict-Transport-Security") != "" {
		t.Fatal("HSTS over plain HTTP")
	}
	req, _ := http.NewRequest("GET", s.webURL+"/", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", resp.StatusCode)
	}
}
