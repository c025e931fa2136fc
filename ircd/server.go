// Package ircd is the chat server: listeners, connections, registration,
// the command table, the one channel, presence and silence lists.
package ircd

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/store"
)

// Store is the durable state the server needs. It is an interface so a
// clustered store can replace the embedded one without touching handlers.
type Store interface {
	Append(to string, m store.Message) (store.Message, error)
	Pending(to string) ([]store.Message, error)
	Ack(to string, upTo uint64) error
	AddSilence(account, mask string) (bool, error)
	RemoveSilence(account, mask string) (bool, error)
	AllSilences() (map[string][]string, error)
	SetLastSeen(seen map[string]time.Time) error
	LastSeen() (map[string]time.Time, error)
	Close() error
}

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
	LastSeenFlush time.Duration // how often online users' last-seen is persisted
	SilenceLimit  int
	MonitorLimit  int
	AnnounceLimit int // above this many members, JOIN/QUIT are not announced; 0 = always
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

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ServerName, "irc.localhost")
	def(&c.Network, "LobbyNet")
	def(&c.Version, "lobbyircd-0.1")
	def(&c.Channel, "#lobby")
	def(&c.OnDuplicate, "reject")
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&c.Recent, time.Hour)
	dur(&c.LastSeenFlush, 30*time.Second)
	dur(&c.WriteTimeout, 30*time.Second)
	dur(&c.RegTimeout, 60*time.Second)
	dur(&c.PingInterval, 120*time.Second)
	dur(&c.PingTimeout, 60*time.Second)
	dur(&c.FloodKill, 10*time.Second)
	if c.SilenceLimit <= 0 {
		c.SilenceLimit = 32
	}
	if c.MonitorLimit <= 0 {
		c.MonitorLimit = 100
	}
	if c.SendQ <= 0 {
		c.SendQ = 1 << 20
	}
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
	live     atomic.Pointer[Config] // replaced whole on Reload; never mutated
	log      *slog.Logger
	accounts *accounts.Accounts
	store    Store
	created  time.Time
	channel  *channel
	deferred deferredFlush // JOIN/PART/QUIT announcements to others wait for it

	// mail serialises a recipient's login (claim + replay) against
	// senders deciding between live delivery and storing, so a message
	// is either queued to the live session or found by the replay.
	mail [64]sync.RWMutex

	mu        sync.RWMutex
	users     map[string]*client            // folded nick -> registered client
	conns     map[*client]struct{}          // every open connection
	perIP     map[string]int                // open connections per address
	lastSeen  map[string]time.Time          // folded nick -> when they left
	seenDirty map[string]struct{}           // accounts that left since the last flush
	silences  map[string]*silenceList       // folded account -> its list
	monitors  map[string]map[*client]string // folded target -> watchers
	listeners map[net.Listener]struct{}
	poller    *poller // watches idle plaintext connections; nil before Serve
	noPoller  bool    // this system has none
	shutdown  bool
	nextID    uint64

	stats    stats
	commands map[string]command // the command table; read-only after New

	wg       sync.WaitGroup // connections
	stop     chan struct{}
	stopOnce sync.Once
	bg       sync.WaitGroup // background loops
}

// New creates a server. It loads silence lists and last-seen times from
// the store; it does not listen until Serve.
func New(cfg Config, acc *accounts.Accounts, st Store) (*Server, error) {
	cfg.setDefaults()
	if !validChannelName(cfg.Channel) {
		return nil, fmt.Errorf("invalid channel name %q", cfg.Channel)
	}
	s := &Server{
		log:       cfg.Logger,
		accounts:  acc,
		store:     st,
		created:   cfg.Now(),
		users:     make(map[string]*client),
		conns:     make(map[*client]struct{}),
		perIP:     make(map[string]int),
		seenDirty: make(map[string]struct{}),
		silences:  make(map[string]*silenceList),
		monitors:  make(map[string]map[*client]string),
		listeners: make(map[net.Listener]struct{}),
		stop:      make(chan struct{}),
		deferred:  deferredFlush{delay: announceDelay},
	}
	s.live.Store(&cfg)
	s.commands = make(map[string]command, len(commandTable)+len(cfg.extraCommands))
	for name, cmd := range commandTable {
		s.commands[name] = cmd
	}
	for name, cmd := range cfg.extraCommands {
		s.commands[name] = cmd
	}
	s.channel = newChannel(cfg.Channel, cfg.Topic, cfg.ServerName, s.created)
	seen, err := st.LastSeen()
	if err != nil {
		return nil, fmt.Errorf("loading last-seen times: %w", err)
	}
	s.lastSeen = seen
	all, err := st.AllSilences()
	if err != nil {
		return nil, fmt.Errorf("loading silence lists: %w", err)
	}
	for acct, masks := range all {
		s.silences[acct] = newSilenceList(masks)
	}
	s.bg.Add(2)
	go s.lastSeenLoop()
	go s.timeoutLoop()
	return s, nil
}

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
	cfg.setDefaults()
	s.live.Store(&cfg)
}

func (s *Server) mailLock(key string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &s.mail[h.Sum32()%uint32(len(s.mail))]
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
		p, err := newPoller(s.pollerFailed)
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

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ircd: server closed")

// Shutdown stops accepting, tells every client, waits for their queues to
// drain (or ctx to end), records everyone's last-seen time and closes the
// store.
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
	s.mu.Lock()
	p := s.poller
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
	s.flushLastSeen()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// lastSeenLoop persists "now" for every online user periodically, so that
// after a crash WHOLASTHR still counts them as seen at about that moment.
func (s *Server) lastSeenLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.conf().LastSeenFlush)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.flushLastSeen()
		}
	}
}

// timeoutLoop enforces registration and ping timeouts for every
// connection. One sweep replaces a read deadline per connection: polled
// clients have no blocked read to time out, and re-arming a deadline on
// every line cost more than this loop does.
func (s *Server) timeoutLoop() {
	defer s.bg.Done()
	var conns []*client
	trim := burstTrim{free: func() {
		t0 := time.Now()
		// Two collections: sync.Pool keeps what it held (the flushers'
		// 32 KB buffers, thousands of them in a storm) for one more.
		runtime.GC()
		debug.FreeOSMemory()
		s.log.Info("returned memory to the OS after a burst of logins", "took", time.Since(t0).Round(time.Millisecond))
	}}
	for {
		cfg := s.conf()
		// A tick of a quarter of the shortest timeout keeps each one
		// within 25% late.
		tick := min(cfg.RegTimeout, cfg.PingInterval, cfg.PingTimeout) / 4
		tick = max(min(tick, time.Second), 5*time.Millisecond)
		t := time.NewTimer(tick)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.RLock()
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.RUnlock()
		now := time.Now().UnixNano()
		for _, c := range conns {
			c.checkTimeouts(cfg, now)
		}
		drained := func() bool {
			total, busy := 0, 0
			for _, c := range conns {
				n, b := c.out.backlog()
				total += n
				if b {
					busy++
				}
			}
			return total+busy*flushBufSize < trimBacklog
		}
		trim.check(s.stats.logins.Load(), time.Now(), drained)
		clear(conns) // do not keep departed clients alive
		conns = conns[:0]
	}
}

// burstTrim hands memory back to the OS once a burst of logins has
// settled: no login for a second and the replies it caused written out
// (a storm's NAMES replies can take seconds to reach slow readers). The
// burst leaves the heap at twice its peak, and an idle server allocates
// nothing, so the runtime would not collect and return that memory until
// its two-minute forced GC.
type burstTrim struct {
	seen       uint64 // logins counted at the last check
	quietSince time.Time
	trimmedAt  uint64    // logins counted at the last trim
	lastTrim   time.Time // when it was
	free       func()    // collects and returns memory
}

const (
	trimBacklog = 1 << 20          // bytes queued or being written, a busy flusher's buffer included, that count as drained
	trimBurst   = 1000             // logins since the last trim that make a burst
	trimQuiet   = time.Second      // ...followed by this long without one
	trimAgain   = 10 * time.Second // logins this soon after a trim continue its burst
)

func (b *burstTrim) check(logins uint64, now time.Time, drained func() bool) {
	if logins != b.seen {
		b.seen, b.quietSince = logins, now
		return
	}
	if now.Sub(b.quietSince) < trimQuiet || logins == b.trimmedAt {
		return
	}
	// A pause inside a storm can trigger a trim with the storm not over;
	// the logins after it then belong to that burst, however few.
	burst := logins-b.trimmedAt >= trimBurst || b.quietSince.Sub(b.lastTrim) < trimAgain
	if burst && drained() {
		b.trimmedAt, b.lastTrim = logins, now
		b.free()
	}
}

// flushLastSeen persists, in one transaction, "now" for everyone online
// and the departure time of everyone who left since the last flush.
// Departures are batched rather than written one fsync each, so 10,000
// users dropping at once cost one write; a crash loses at most one
// LastSeenFlush period of them, and those users were persisted as online
// at most that long before.
func (s *Server) flushLastSeen() {
	now := s.now()
	s.mu.Lock()
	seen := make(map[string]time.Time, len(s.users)+len(s.seenDirty))
	for key, c := range s.users {
		if c.account != "" {
			seen[key] = now
		}
	}
	for key := range s.seenDirty {
		if at, ok := s.lastSeen[key]; ok {
			seen[key] = at
		}
	}
	clear(s.seenDirty)
	s.mu.Unlock()
	if len(seen) == 0 {
		return
	}
	if err := s.store.SetLastSeen(seen); err != nil {
		s.log.Error("persisting last-seen times", "err", err)
		s.mu.Lock()
		for key := range seen {
			if _, online := s.users[key]; !online {
				s.seenDirty[key] = struct{}{} // try again next time
			}
		}
		s.mu.Unlock()
	}
}

// lookup returns the registered client using nick, if any.
func (s *Server) lookup(nick string) *client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users[accounts.Fold(nick)]
}

// onlineCount returns how many users are logged in.
func (s *Server) onlineCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users)
}

// AccountsChanged ends the sessions of accounts that no longer exist,
// after the users file was reloaded.
func (s *Server) AccountsChanged() {
	db := s.accounts.DB()
	s.mu.RLock()
	var gone []*client
	for _, c := range s.users {
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
	LoggedIn         int    // registered users now
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
	conns, users := len(s.conns), len(s.users)
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
