package ircd

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/cluster"
	"github.com/lobbychat/ircd/local"
	"github.com/lobbychat/ircd/store"
)

const testUsers = `alice alicepw
bob bobpw
carol carolpw
dave davepw
`

// fakeClock is the injectable clock: tests move time instead of sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testServer struct {
	t        testing.TB
	srv      *Server
	addr     string
	clock    *fakeClock
	store    *store.Store // the local kit's database
	presence Presence
	mailbox  Mailbox
	acc      *accounts.Accounts
	db       *accounts.DB
	node     *cluster.Node // the cluster kit's, if used
	dbPath   string
	cfg      Config
	opts     storeOpts
	closeKit func()
}

type storeOpts struct {
	mailboxLimit int
	perSender    int
	nats         *natsserver.Server // if set, the cluster backends on this NATS server
	node         string             // ...as this node
	accounts     *accounts.Accounts // shared by the servers of one test, if set
	seenFlush    time.Duration
	tls          *tls.Config // if set, the server listens with TLS
}

type option func(*Config, *storeOpts)

func withConfig(f func(*Config)) option { return func(c *Config, _ *storeOpts) { f(c) } }
func withMailboxLimit(n int) option     { return func(_ *Config, o *storeOpts) { o.mailboxLimit = n } }
func withMailboxShare(n int) option     { return func(_ *Config, o *storeOpts) { o.perSender = n } }
func withNode(ns *natsserver.Server, node string) option {
	return func(_ *Config, o *storeOpts) { o.nats, o.node = ns, node }
}
func withSeenFlush(d time.Duration) option { return func(_ *Config, o *storeOpts) { o.seenFlush = d } }
func withTLS(cfg *tls.Config) option       { return func(_ *Config, o *storeOpts) { o.tls = cfg } }

// startServer runs a real server on 127.0.0.1:0 with fresh state.
func startServer(t testing.TB, opts ...option) *testServer {
	t.Helper()
	ts := &testServer{t: t, clock: newFakeClock(), dbPath: filepath.Join(t.TempDir(), "data", "ircd.db")}
	ts.cfg = Config{ServerName: "irc.test", Network: "TestNet", MOTD: "hello", Topic: "the topic"}
	for _, o := range opts {
		o(&ts.cfg, &ts.opts)
	}
	if ts.opts.nats == nil && os.Getenv("IRCD_TEST_BACKEND") == "cluster" {
		// `make test` runs the suite this way too: one node of a cluster.
		ts.opts.nats, ts.opts.node = runNATS(t), "test"
	}
	ts.cfg.Now = ts.clock.Now
	db, err := accounts.Parse(strings.NewReader(testUsers), "users.txt")
	if err != nil {
		t.Fatal(err)
	}
	if ts.opts.nats == nil {
		ts.acc = accounts.New(db, accounts.NewLoginLimiter(testLimits, ts.clock.Now))
	} else {
		ts.db = db // the cluster kit makes the accounts with the cluster's limiter
	}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// localKit opens the single-process backends: the embedded store, the
// in-memory presence and the direct bus.
func (ts *testServer) localKit() Backends {
	t := ts.t
	st, err := store.Open(ts.dbPath, store.Options{MailboxLimit: ts.opts.mailboxLimit, MailboxPerSender: ts.opts.perSender, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := local.NewPresence(st, local.PresenceOptions{Now: ts.clock.Now, Flush: ts.opts.seenFlush})
	if err != nil {
		t.Fatal(err)
	}
	ts.store = st
	ts.closeKit = func() {
		p.Close()
		st.Close()
	}
	return Backends{Accounts: ts.acc, Presence: p, Mailbox: st, Silences: st, Bus: &local.Bus{}, Node: "test"}
}

// testLimits is the login limiter's policy in protocol tests.
var testLimits = accounts.LimiterPolicy{MaxFailures: 3, Lockout: time.Minute}

// clusterKit connects this server to the test's NATS server as a node of
// a cluster: every backend is the JetStream one.
func (ts *testServer) clusterKit() Backends {
	t := ts.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := cluster.Connect(ctx, cluster.Config{URLs: []string{ts.opts.nats.ClientURL()}, Node: ts.opts.node,
		MailboxLimit: ts.opts.mailboxLimit, MailboxPerSender: ts.opts.perSender, Now: ts.clock.Now, Lease: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := n.Limiter(ctx, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	ts.acc = accounts.New(ts.db, lim)
	ts.node = n
	ts.closeKit = func() { n.Close() }
	return Backends{Accounts: ts.acc, Presence: n.Presence(), Mailbox: n.Mailbox(), Silences: n.Silences(), Bus: n.Bus(), Node: n.Name()}
}

func (ts *testServer) start() {
	t := ts.t
	t.Helper()
	var b Backends
	if ts.opts.nats != nil {
		b = ts.clusterKit()
	} else {
		b = ts.localKit()
	}
	srv, err := New(ts.cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, ts.addr = srv, l.Addr().String()
	ts.presence, ts.mailbox = b.Presence, b.Mailbox
	if os.Getenv("IRCD_TEST_NO_POLLER") != "" {
		l = hiddenSocketListener{l} // `make test` runs the suite this way too
	}
	if ts.opts.tls != nil {
		l = tls.NewListener(l, ts.opts.tls)
	}
	go srv.Serve(l)
}

// pending is how many stored messages nick has.
func (ts *testServer) pending(nick string) (int, error) {
	msgs, err := ts.mailbox.Pending(context.Background(), accounts.Fold(nick))
	return len(msgs), err
}

// hiddenSocketListener hands out connections that do not expose their
// socket, as a TLS connection does not: the server falls back to a reader
// goroutine per connection instead of its poller.
type hiddenSocketListener struct{ net.Listener }

func (l hiddenSocketListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	ts.closeKit()
	ts.srv = nil
}

// restart stops the server and starts a new one on the same store file.
func (ts *testServer) restart() {
	ts.stop()
	ts.start()
}

// testClient is a line-based IRC client for protocol tests.
type testClient struct {
	t    testing.TB
	name string
	conn net.Conn
	r    *bufio.Reader
	log  []string
}

const waitTime = 5 * time.Second

func (ts *testServer) dial(name string) *testClient {
	ts.t.Helper()
	conn, err := net.DialTimeout("tcp", ts.addr, waitTime)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { conn.Close() })
	return &testClient{t: ts.t, name: name, conn: conn, r: bufio.NewReader(conn)}
}

func (c *testClient) send(format string, args ...any) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(waitTime))
	if _, err := fmt.Fprintf(c.conn, format+"\r\n", args...); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

func (c *testClient) sendRaw(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(waitTime))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// readLine returns the next line or an error at the deadline.
func (c *testClient) readLine(deadline time.Time) (string, error) {
	c.conn.SetReadDeadline(deadline)
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	c.log = append(c.log, line)
	return line, nil
}

// expect reads until a line matches re and returns it.
func (c *testClient) expect(re string) string {
	c.t.Helper()
	line, _ := c.expectLine(re)
	return line
}

// expectMatch is expect returning the submatches.
func (c *testClient) expectMatch(re string) []string {
	c.t.Helper()
	_, m := c.expectLine(re)
	return m
}

func (c *testClient) expectLine(re string) (string, []string) {
	c.t.Helper()
	return c.expectLineWithin(re, waitTime)
}

// expectWithin is expect for what takes longer than a reply: a lease
// that must lapse, say.
func (c *testClient) expectWithin(re string, wait time.Duration) string {
	c.t.Helper()
	line, _ := c.expectLineWithin(re, wait)
	return line
}

func (c *testClient) expectLineWithin(re string, wait time.Duration) (string, []string) {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(wait)
	for {
		line, err := c.readLine(deadline)
		if err != nil {
			c.t.Fatalf("%s: waiting for /%s/: %v; recent lines:\n%s", c.name, re, err, c.recent())
		}
		if m := rx.FindStringSubmatch(line); m != nil {
			return line, m
		}
	}
}

func (c *testClient) recent() string {
	from := max(0, len(c.log)-25)
	return "  " + strings.Join(c.log[from:], "\n  ")
}

// sync sends a PING and reads up to its PONG, returning the lines before
// it. Everything the server queued before the PONG has arrived, so this
// is how a test proves something was NOT sent.
func (c *testClient) sync() []string {
	c.t.Helper()
	return c.syncWithin(waitTime)
}

// syncWithin is sync for a client whose server has much to do first.
func (c *testClient) syncWithin(wait time.Duration) []string {
	c.t.Helper()
	token := fmt.Sprintf("sync-%d", time.Now().UnixNano())
	c.send("PING %s", token)
	var lines []string
	deadline := time.Now().Add(wait)
	for {
		line, err := c.readLine(deadline)
		if err != nil {
			c.t.Fatalf("%s: waiting for PONG %s: %v; recent:\n%s", c.name, token, err, c.recent())
		}
		if strings.Contains(line, "PONG") && strings.HasSuffix(line, token) {
			return lines
		}
		lines = append(lines, line)
	}
}

// expectNone syncs and fails if any line before the PONG matches re.
func (c *testClient) expectNone(re string) {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	for _, l := range c.sync() {
		if rx.MatchString(l) {
			c.t.Fatalf("%s: unexpected line %q", c.name, l)
		}
	}
}

// expectClosed reads until the server closes the connection and returns
// the lines seen.
func (c *testClient) expectClosed() []string {
	c.t.Helper()
	var lines []string
	deadline := time.Now().Add(waitTime)
	for {
		line, err := c.readLine(deadline)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("%s: connection not closed; recent:\n%s", c.name, c.recent())
			}
			return lines
		}
		lines = append(lines, line)
	}
}

func (c *testClient) register(nick, pass string) {
	c.t.Helper()
	if pass != "" {
		c.send("PASS %s", pass)
	}
	c.send("NICK %s", nick)
	c.send("USER %s 0 * :%s real", nick, nick)
}

// login registers with PASS/NICK/USER and waits for the end of NAMES.
func (ts *testServer) login(nick string, caps ...string) *testClient {
	ts.t.Helper()
	c := ts.dial(nick)
	if len(caps) > 0 {
		c.send("CAP LS 302")
		c.send("CAP REQ :%s", strings.Join(caps, " "))
		c.expect(`CAP \* ACK`)
		c.send("CAP END")
	}
	c.register(nick, nick+"pw")
	c.expect(` 366 ` + nick + ` #lobby `)
	return c
}

// waitGone waits until the server has noticed that nick's connection
// closed (the reader runs cleanup asynchronously).
func (ts *testServer) waitGone(nick string) {
	ts.t.Helper()
	waitFor(ts.t, nick+" to go offline", func() bool { _, on := ts.presence.Lookup(nick); return !on })
}

// waitFor polls cond until it holds, failing the test after waitTime:
// for state the server changes after its last reply, such as cleanup.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
