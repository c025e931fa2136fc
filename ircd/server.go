// Package ircd is the chat server: listeners, connections, registration,
// the command table and the room. The state it shares with other sessions
// and nodes lives behind the interfaces in state.go.
package ircd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lobbychat/ircd/accounts"
)

// Config is everything the server takes from config.toml, as plain values.
type Config struct {
	ServerName string
	Network    string
	MOTD       string // may hold several lines
	Version    string

	Channel string
	Topic   string

	Guests        bool
	OnDuplicate   string        // "reject" or "replace"
	DuplicatePing time.Duration // reject: first PING the old session, end it if silent this long; 0 = refuse at once

	Recent        time.Duration // WHOLASTHR window
	SilenceLimit  int
	MonitorLimit  int
	AnnounceLimit int // above this many members, JOIN/QUIT are not announced; 0 = always
	History       int // room lines kept for CHATHISTORY; 0 = none
	SendQ         int
	WriteTimeout  time.Duration
	RegTimeout    time.Duration
	PingInterval  time.Duration
	PingTimeout   time.Duration
	MaxClients    int           // connections in all; 0 = no limit
	MaxPerIP      int           // connections per address; 0 = no limit
	FloodBurst    int           // lines a client may send at once before being slowed
	FloodRate     float64       // lines per second after the burst; 0 = no flood control
	FloodKill     time.Duration // how long a client may stay throttled before "Excess Flood"
	Logger        *slog.Logger
	Now           func() time.Time // injectable clock

	extraCommands map[string]command // tests only: added to the command table
}

// DefaultConfig is every default of the server's configuration, the one
// table of them: config.toml's defaults are read from here too.
func DefaultConfig() Config {
	return Config{
		ServerName:    "irc.localhost",
		Network:       "LobbyNet",
		Version:       "lobbyircd-0.1",
		Channel:       "#lobby",
		History:       200,
		OnDuplicate:   "reject",
		DuplicatePing: 5 * time.Second,
		Recent:        time.Hour,
		SilenceLimit:  32,
		MonitorLimit:  100,
		SendQ:         1 << 20,
		WriteTimeout:  30 * time.Second,
		RegTimeout:    60 * time.Second,
		PingInterval:  120 * time.Second,
		PingTimeout:   60 * time.Second,
		MaxClients:    10000,
		MaxPerIP:      10,
		FloodBurst:    10,
		FloodRate:     2,
		FloodKill:     10 * time.Second,
	}
}

// setDefaults fills what was left zero from DefaultConfig. Limits whose
// zero means "none" (MaxClients, MaxPerIP, FloodRate, AnnounceLimit,
// DuplicatePing) are taken as given.
func (c *Config) setDefaults() {
	d := DefaultConfig()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ServerName, d.ServerName)
	def(&c.Network, d.Network)
	def(&c.Version, d.Version)
	def(&c.Channel, d.Channel)
	def(&c.OnDuplicate, d.OnDuplicate)
	dur := func(v *time.Duration, dv time.Duration) {
		if *v <= 0 {
			*v = dv
		}
	}
	dur(&c.Recent, d.Recent)
	dur(&c.WriteTimeout, d.WriteTimeout)
	dur(&c.RegTimeout, d.RegTimeout)
	dur(&c.PingInterval, d.PingInterval)
	dur(&c.PingTimeout, d.PingTimeout)
	dur(&c.FloodKill, d.FloodKill)
	num := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	num(&c.SilenceLimit, d.SilenceLimit)
	num(&c.MonitorLimit, d.MonitorLimit)
	num(&c.SendQ, d.SendQ)
	num(&c.FloodBurst, d.FloodBurst)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// announceDelay is how long a JOIN, PART or QUIT announcement may wait in
// a member's queue for company; a person does not notice 20 ms, and in a
// login burst it turns one write per announcement into one per period.
const announceDelay = 20 * time.Millisecond

// Server is one chat server. Several can run in one process.
type Server struct {
	live      atomic.Pointer[Config] // replaced whole on Reload; never mutated
	log       *slog.Logger
	accounts  *accounts.Accounts
	presence  Presence
	mailbox   Mailbox
	silences  Silences
	bus       Bus
	node      string
	created   time.Time
	room      *room
	deferred  deferredFlush      // JOIN/PART/QUIT announcements to others wait for it
	commands  map[string]command // the command table; read-only after New
	stats     stats
	msgPrefix string        // node and boot, for message ids
	msgSeq    atomic.Uint64 // ...and a counter

	// Lock order: s.mu, then room.mu, then a sendQueue's mu. No lock is
	// held across a backend call (disk or network).
	mu        sync.RWMutex
	sessions  map[string]*client   // folded nick -> this node's registered session
	conns     map[*client]struct{} // every open connection
	perIP     map[string]int       // open connections per address
	listeners map[net.Listener]struct{}
	poller    *poller // watches idle plaintext connections; nil before Serve
	noPoller  bool    // this system has none
	shutdown  bool
	nextID    uint64

	ctx      context.Context // what backend calls take; it ends at Shutdown
	cancel   context.CancelFunc
	wg       sync.WaitGroup // connections
	stop     chan struct{}
	stopOnce sync.Once
	bg       sync.WaitGroup // background loops
}

// New creates a server on the given backends; it does not listen until
// Serve. The caller closes the backends after Shutdown.
func New(cfg Config, b Backends) (*Server, error) {
	cfg.setDefaults()
	if err := ValidChannelName(cfg.Channel); err != nil {
		return nil, err
	}
	if b.Accounts == nil || b.Presence == nil || b.Mailbox == nil || b.Silences == nil || b.Bus == nil {
		return nil, errors.New("ircd: every backend must be set")
	}
	s := &Server{
		log:       cfg.Logger,
		accounts:  b.Accounts,
		presence:  b.Presence,
		mailbox:   b.Mailbox,
		silences:  b.Silences,
		bus:       b.Bus,
		node:      b.Node,
		created:   cfg.Now(),
		sessions:  make(map[string]*client),
		conns:     make(map[*client]struct{}),
		perIP:     make(map[string]int),
		listeners: make(map[net.Listener]struct{}),
		stop:      make(chan struct{}),
		deferred:  deferredFlush{delay: announceDelay},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.msgPrefix = msgIDPrefix(b.Node)
	s.live.Store(&cfg)
	s.commands = make(map[string]command, len(commandTable)+len(cfg.extraCommands))
	for name, cmd := range commandTable {
		s.commands[name] = cmd
	}
	for name, cmd := range cfg.extraCommands {
		s.commands[name] = cmd
	}
	s.room = newRoom(cfg.Channel, cfg.Topic, cfg.ServerName, s.created)
	s.room.history = newHistory(cfg.History)
	b.Bus.Attach(busHandler{s})
	s.bg.Add(2)
	go s.timeoutLoop()
	go s.trimLoop()
	return s, nil
}

// ValidChannelName is the one rule for the channel's name, shared by the
// server and the config check: '#' then 1 to 49 bytes, no space, comma,
// BEL, NUL, CR or LF.
func ValidChannelName(name string) error {
	if len(name) < 2 || len(name) > channelLen || name[0] != '#' || strings.ContainsAny(name, " ,\x07\x00\r\n") {
		return fmt.Errorf("invalid channel name %q: it must start with '#', have at most %d bytes and no spaces, commas or control characters", name, channelLen)
	}
	return nil
}

// channelLen is ISUPPORT's CHANNELLEN.
const channelLen = 50

func (s *Server) now() time.Time { return s.conf().Now() }

// conf returns the current configuration. Callers must not modify it.
func (s *Server) conf() *Config { return s.live.Load() }

// Reload applies a new configuration. Names, the channel, the clock and
// the logger stay as they were; limits, MOTD, guests, duplicate policy
// and the presence window take effect for the next command or
// connection that uses them.
func (s *Server) Reload(cfg Config) {
	old := s.conf()
	cfg.ServerName, cfg.Network, cfg.Version = old.ServerName, old.Network, old.Version
	cfg.Channel, cfg.Topic = old.Channel, old.Topic
	cfg.Now, cfg.Logger = old.Now, old.Logger
	cfg.extraCommands = old.extraCommands
	cfg.setDefaults()
	s.live.Store(&cfg)
}

// Serve accepts connections on l until Shutdown or an accept error.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	if s.poller == nil && !s.noPoller {
		p, err := newPoller(runtime.GOMAXPROCS(0), s.pollerFailed)
		if err != nil {
			s.log.Info("no poller; one reader goroutine per connection", "err", err)
			s.noPoller = true
		}
		s.poller = p
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.newClient(nc)
	}
}

// ServeConn serves one connection accepted elsewhere (a WebSocket from
// the web listener): it goes through the same admission, line reader,
// command table, limits and send queue as a TCP connection, on a reader
// goroutine of its own.
func (s *Server) ServeConn(nc net.Conn) { s.newClient(nc) }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ircd: server closed")

// Shutdown stops accepting, tells every client, and waits for their
// queues to drain (or ctx to end) and their sessions to be released.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*client, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.quitWithError("Server shutting down", "Server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); s.bg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range conns {
			c.nc.Close()
		}
	}
	s.cancel()
	s.mu.Lock()
	p := s.poller
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
	return err
}

// session returns this node's registered session of nick, if any.
func (s *Server) session(nick string) *client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[accounts.Fold(nick)]
}

// AccountsChanged ends this node's sessions of accounts that no longer
// exist, after the users file was reloaded.
func (s *Server) AccountsChanged() {
	db := s.accounts.DB()
	s.mu.RLock()
	var gone []*client
	for _, c := range s.sessions {
		if _, ok := db.Lookup(c.account); c.account != "" && !ok {
			gone = append(gone, c)
		}
	}
	s.mu.RUnlock()
	for _, c := range gone {
		c.quit("Account removed", "Unauthorized (account removed)")
	}
}

// stats are the server's counters, bumped on the paths they count.
type stats struct {
	connections, refused, logins, loginFailures, lockouts atomic.Uint64
	relayed, offlineStored, offlineDelivered, sendqDrops  atomic.Uint64
}

// Stats is a snapshot of the server's counters and gauges, for metrics.
type Stats struct {
	Connections      int    // open connections now
	LoggedIn         int    // registered users on this node now
	ConnectionsTotal uint64 // accepted since start
	Refused          uint64 // refused by max_clients / max_per_ip
	Logins           uint64
	LoginFailures    uint64
	Lockouts         uint64 // account lockouts started
	MessagesRelayed  uint64 // PRIVMSG/NOTICE/TAGMSG from users, live or stored
	OfflineStored    uint64
	OfflineDelivered uint64 // acknowledged by the recipient
	SendQDisconnects uint64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	conns, users := len(s.conns), len(s.sessions)
	s.mu.RUnlock()
	st := &s.stats
	return Stats{
		Connections: conns, LoggedIn: users,
		ConnectionsTotal: st.connections.Load(), Refused: st.refused.Load(),
		Logins: st.logins.Load(), LoginFailures: st.loginFailures.Load(), Lockouts: st.lockouts.Load(),
		MessagesRelayed: st.relayed.Load(), OfflineStored: st.offlineStored.Load(),
		OfflineDelivered: st.offlineDelivered.Load(), SendQDisconnects: st.sendqDrops.Load(),
	}
}

// pollerFailed is the poller giving up (an epoll_wait error no valid set
// returns). Its clients would never be read again, so they are closed and
// can reconnect; new connections already get a reader goroutine.
func (s *Server) pollerFailed(err error, stranded []*client) {
	s.log.Error("connection poller stopped; closing the connections it watched", "err", err, "connections", len(stranded))
	for _, c := range stranded {
		c.quit("Server error", "Server error, please reconnect")
	}
}

// newMsgID returns an id unique to this server's run and, through the
// node name and boot value, across the nodes of a cluster: the msgid tag
// on every relayed message.
func (s *Server) newMsgID() string {
	n := s.msgSeq.Add(1)
	var b [32]byte
	return string(strconv.AppendUint(append(b[:0], s.msgPrefix...), n, 36)) // one allocation
}

// msgIDPrefix is 8 characters from the node's name and 4 random bytes,
// so ids stay short and do not repeat across nodes or restarts.
func msgIDPrefix(node string) string {
	h := fnv.New32a()
	h.Write([]byte(node))
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], h.Sum32())
	rand.Read(b[4:])
	return base64.RawURLEncoding.EncodeToString(b[:]) + "-"
}
