// Package cluster runs one room on several daemons: it implements the
// server's shared state (ircd.Presence, Mailbox, Silences, Bus and the
// accounts.Limiter) on NATS, with JetStream for what must last.
//
//   - Room events go over core NATS, one subject for the room; each node
//     fans out to its own members. A JetStream stream would put a raft
//     commit on every channel line.
//   - Lines and requests to one session (a private message, "mail
//     waiting", end, PING) are requests to the subject of the node that
//     holds it.
//   - Session claims live in a KV bucket, created and replaced with
//     compare-and-set; every node keeps a copy of who is online by
//     watching it. Each node renews a heartbeat key; when a node's
//     heartbeat expires, the others end its sessions.
//   - Stored private messages are a JetStream stream with file storage;
//     silence lists, last-seen times and the login limiter are KV buckets.
//
// A node that loses NATS keeps serving its connected users where it can
// (room lines to its own members, everything local), refuses new logins
// and never confirms a message it could not store; it reconnects on its
// own and claims its sessions again.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobbychat/ircd/state"
)

// Config is how a node reaches NATS and what it creates there.
type Config struct {
	URLs     []string    // NATS servers, e.g. nats://127.0.0.1:4222
	Node     string      // this daemon's name in the cluster; unique
	User     string      // optional credentials for NATS
	Password string      //
	Token    string      //
	Creds    string      // a .creds file (JWT + seed)
	TLS      *tls.Config // optional TLS to NATS
	Replicas int         // replicas of every stream and bucket (1; 3 on a 3-server NATS cluster)
	// Lease is how long a node's heartbeat lasts without renewal: a node
	// that dies is noticed, and its users may log in elsewhere, within
	// Lease plus one renewal period. It must outlast a JetStream leader
	// election (seen here: 4-8 s).
	Lease     time.Duration
	OpTimeout time.Duration // bound on one request to NATS (default 5s)

	MailboxLimit     int // stored messages per recipient; 0 = none
	MailboxPerSender int // per sender per recipient; 0 = none

	Logger *slog.Logger
	Now    func() time.Time
}

const (
	defaultLease     = 12 * time.Second
	defaultOpTimeout = 5 * time.Second

	bucketSessions = "ircd_sessions"
	bucketNodes    = "ircd_nodes"
	bucketSeen     = "ircd_seen"
	bucketSilences = "ircd_silences"
	bucketLogins   = "ircd_logins"
	streamMail     = "ircd_mail"

	subjectRoom = "ircd.room"
	subjectMail = "ircd.mail" // .<recipient>.<sender>
)

func nodeSubject(node, what string) string { return "ircd.node." + key(node) + "." + what }

// Node is one daemon's connection to the cluster. Its Presence, Bus,
// Mailbox, Silences and Limiter share it.
type Node struct {
	cfg  Config
	log  *slog.Logger
	name string
	boot string // this run of the node; a restart is a new boot

	nc   *nats.Conn // JetStream, KV watches and requests
	room *nats.Conn // room events only, with NoEcho: a node never hears its own
	js   jetstream.JetStream

	sessions, nodes, seen, silences, logins jetstream.KeyValue
	mail                                    jetstream.Stream

	connected atomic.Bool

	presence *Presence
	bus      *Bus
	mailbox  *Mailbox

	stop chan struct{}
	wg   sync.WaitGroup
}

// Connect joins the cluster: it connects to NATS, creates the streams
// and buckets if they are missing, loads who is online and starts the
// heartbeat.
func Connect(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Node == "" {
		return nil, errors.New("cluster: node name is empty")
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("cluster: no NATS server to connect to")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = defaultLease
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = defaultOpTimeout
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [6]byte
	rand.Read(b[:])
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Node), name: cfg.Node, boot: hex.EncodeToString(b[:]), stop: make(chan struct{})}
	var err error
	if n.nc, err = nats.Connect(joinURLs(cfg.URLs), n.natsOptions("ircd "+cfg.Node)...); err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	if n.room, err = nats.Connect(joinURLs(cfg.URLs), append(n.natsOptions("ircd "+cfg.Node+" room"), nats.NoEcho())...); err != nil {
		n.nc.Close()
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	n.connected.Store(true)
	if n.js, err = jetstream.New(n.nc); err != nil {
		n.Close()
		return nil, err
	}
	// A JetStream cluster that has just formed elects its leaders first:
	// keep trying until ctx ends.
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := n.createResources(ctx)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			n.Close()
			return nil, err
		case <-time.After(wait):
			n.log.Info("waiting for JetStream", "err", err)
		}
	}
	n.presence = &Presence{n: n}
	n.bus = &Bus{n: n}
	n.mailbox = &Mailbox{n: n}
	n.mailbox.limit.Store(int64(cfg.MailboxLimit))
	if err := n.presence.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.heartbeat(ctx); err != nil {
		n.Close()
		return nil, err
	}
	n.wg.Add(1)
	go n.heartbeatLoop()
	return n, nil
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

func (n *Node) natsOptions(name string) []nats.Option {
	cfg := n.cfg
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(cfg.OpTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if n.connected.Swap(false) {
				n.log.Error("lost NATS; new logins are refused until it is back", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			n.log.Info("NATS is back")
			go n.reconnected()
		}),
		nats.ClosedHandler(func(*nats.Conn) { n.connected.Store(false) }),
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	return opts
}

// createResources makes the buckets and the mail stream, or checks that
// they exist with settings that fit.
func (n *Node) createResources(ctx context.Context) error {
	cfg := n.cfg
	kv := func(name string, c jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		c.Bucket, c.Storage, c.Replicas = name, jetstream.FileStorage, cfg.Replicas
		ctx, cancel := n.op(ctx)
		defer cancel()
		b, err := n.js.CreateOrUpdateKeyValue(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
		}
		return b, nil
	}
	var err error
	if n.sessions, err = kv(bucketSessions, jetstream.KeyValueConfig{History: 1}); err != nil {
		return err
	}
	// A heartbeat lives for one lease unless renewed; when it lapses the
	// server leaves a marker that every watcher sees.
	if n.nodes, err = kv(bucketNodes, jetstream.KeyValueConfig{History: 1, TTL: cfg.Lease, LimitMarkerTTL: cfg.Lease}); err != nil {
		return err
	}
	if n.seen, err = kv(bucketSeen, jetstream.KeyValueConfig{History: 1}); err != nil {
		return err
	}
	if n.silences, err = kv(bucketSilences, jetstream.KeyValueConfig{History: 1}); err != nil {
		return err
	}
	if n.logins, err = kv(bucketLogins, jetstream.KeyValueConfig{History: 1}); err != nil {
		return err
	}
	octx, cancel := n.op(ctx)
	defer cancel()
	n.mail, err = n.js.CreateOrUpdateStream(octx, mailStreamConfig(cfg.Replicas, cfg.MailboxPerSender))
	if err != nil {
		return fmt.Errorf("cluster: stream %s: %w", streamMail, err)
	}
	return nil
}

// heartbeat renews this node's lease: its key, whose value is the boot.
func (n *Node) heartbeat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.OpTimeout)
	defer cancel()
	_, err := n.nodes.Put(ctx, key(n.name), []byte(n.boot))
	return err
}

func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	every := n.cfg.Lease / 4
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		err := n.heartbeat(context.Background())
		switch {
		case err != nil && !failing:
			n.log.Error("renewing this node's lease", "err", err)
			failing = true
		case err == nil && failing:
			n.log.Info("lease renewed again")
			failing = false
		}
		if err == nil {
			n.presence.sweepDeadNodes()
		}
	}
}

// reconnected runs after NATS came back: the lease may have lapsed and
// other nodes ended this node's sessions, so they are claimed again, and
// a session whose name someone else took meanwhile is ended.
func (n *Node) reconnected() {
	if err := n.heartbeat(context.Background()); err != nil {
		n.log.Error("renewing the lease after reconnecting", "err", err)
		return
	}
	n.connected.Store(true)
	n.presence.reclaim()
}

// Connected reports whether NATS is reachable now (for metrics).
func (n *Node) Connected() bool { return n.connected.Load() && n.nc.IsConnected() }

// Name is this node's name.
func (n *Node) Name() string { return n.name }

// Boot identifies this run of the node; session ids carry it.
func (n *Node) Boot() string { return n.boot }

// Presence, Bus, Mailbox, Silences and Limiter are this node's
// implementations of the server's state interfaces.
func (n *Node) Presence() *Presence { return n.presence }
func (n *Node) Bus() *Bus           { return n.bus }
func (n *Node) Mailbox() *Mailbox   { return n.mailbox }
func (n *Node) Silences() *Silences { return &Silences{n: n} }

// Close leaves the cluster: this node's lease is given up at once, so the
// others end its sessions without waiting for it to lapse (the server has
// released them already after a clean shutdown).
func (n *Node) Close() error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	if n.presence != nil {
		n.presence.close() // ends the watch loops
	}
	if n.bus != nil {
		n.bus.close()
	}
	n.wg.Wait()
	if n.nodes != nil && n.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.OpTimeout)
		n.nodes.Delete(ctx, key(n.name))
		cancel()
	}
	if n.room != nil {
		n.room.Drain()
	}
	if n.nc != nil {
		n.nc.Drain()
	}
	return nil
}

// down reports, at once, that NATS is out of reach: a call would wait
// for its whole timeout while the connection is being restored.
func (n *Node) down() error {
	if n.nc.IsConnected() {
		return nil
	}
	return fmt.Errorf("%w: NATS is not connected", state.ErrUnavailable)
}

// op bounds one call to NATS.
func (n *Node) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.cfg.OpTimeout)
}

// unavailable wraps an error from NATS as state.ErrUnavailable.
func unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w (%w)", what, state.ErrUnavailable, err)
}

// Kill drops this node's connections to NATS at once, renewing and
// releasing nothing: what a killed process leaves behind, for tests of
// how the others recover.
func (n *Node) Kill() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	n.room.Close()
	n.nc.Close()
}
