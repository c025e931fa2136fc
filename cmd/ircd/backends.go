package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/cluster"
	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/local"
	"github.com/lobbychat/ircd/store"
)

// backends are the owners of the server's shared state: the embedded
// store and local presence by default, or a cluster's on NATS when
// [cluster] names servers.
type backends struct {
	ircd.Backends
	st       *store.Store    // single process
	presence *local.Presence // single process
	node     *cluster.Node   // cluster
}

func (d *daemon) openBackends(db *accounts.DB) (*backends, error) {
	cfg := d.cfg
	if len(cfg.Cluster.NATS) > 0 {
		return d.openCluster(db)
	}
	start := time.Now()
	st, err := store.Open(cfg.Store.Path, store.Options{
		MailboxLimit:     cfg.Store.MailboxLimit,
		MailboxPerSender: cfg.Store.MailboxPerSender,
		CheckTimeout:     cfg.Store.CheckTimeout.Duration,
		Logger:           d.log,
	})
	if err != nil {
		return nil, withRecovery(err, d.path)
	}
	d.log.Info("store opened", "path", cfg.Store.Path, "check_timeout", cfg.Store.CheckTimeout.Duration, "took", time.Since(start).Round(time.Millisecond))
	p, err := local.NewPresence(st, local.PresenceOptions{Log: d.log})
	if err != nil {
		st.Close()
		return nil, err
	}
	acc := accounts.New(db, accounts.NewLoginLimiter(limiterPolicy(cfg), time.Now))
	return &backends{Backends: ircd.Backends{Accounts: acc, Presence: p, Mailbox: st, Silences: st, Bus: &local.Bus{}, Node: nodeName(cfg)},
		st: st, presence: p}, nil
}

func (d *daemon) openCluster(db *accounts.DB) (*backends, error) {
	cfg := d.cfg
	cc, err := clusterConfig(cfg)
	if err != nil {
		return nil, err
	}
	cc.Logger = d.log
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := cluster.Connect(ctx, cc)
	if err != nil {
		return nil, err
	}
	lim, err := n.Limiter(ctx, limiterPolicy(cfg))
	if err != nil {
		n.Close()
		return nil, err
	}
	d.log.Info("joined the cluster", "node", n.Name(), "nats", cfg.Cluster.NATS, "replicas", cc.Replicas, "lease", cc.Lease)
	acc := accounts.New(db, lim)
	return &backends{Backends: ircd.Backends{Accounts: acc, Presence: n.Presence(), Mailbox: n.Mailbox(), Silences: n.Silences(), Bus: n.Bus(), Node: n.Name()},
		node: n}, nil
}

func clusterConfig(cfg config) (cluster.Config, error) {
	c := cfg.Cluster
	cc := cluster.Config{URLs: c.NATS, Node: nodeName(cfg), User: c.User, Password: c.Password, Token: c.Token, Creds: c.Creds,
		Replicas: c.Replicas, Lease: c.Lease.Duration,
		MailboxLimit: cfg.Store.MailboxLimit, MailboxPerSender: cfg.Store.MailboxPerSender}
	if c.TLSCA != "" || c.TLSCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return cc, fmt.Errorf("cluster.tls_ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return cc, fmt.Errorf("cluster.tls_ca: no certificate in %s", c.TLSCA)
			}
		}
		if c.TLSCert != "" {
			kp, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return cc, fmt.Errorf("cluster.tls_cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		cc.TLS = tc
	}
	return cc, nil
}

// reload applies the reloadable limits to the backends.
func (b *backends) reload(cfg config) {
	b.Accounts.Limiter().SetPolicy(limiterPolicy(cfg))
	if b.st != nil {
		b.st.SetMailboxLimit(cfg.Store.MailboxLimit)
		b.st.SetMailboxPerSender(cfg.Store.MailboxPerSender)
	}
	if b.node != nil {
		b.node.Mailbox().SetLimits(context.Background(), cfg.Store.MailboxLimit, cfg.Store.MailboxPerSender)
	}
}

// close runs after the server's shutdown: its sessions have left.
func (b *backends) close() error {
	if b.node != nil {
		return b.node.Close()
	}
	b.presence.Close() // records the departures
	return b.st.Close()
}

// nodeName is this daemon's name in session ids and the cluster: [cluster]
// node, or the host's name.
func nodeName(cfg config) string {
	if cfg.Cluster.Node != "" {
		return cfg.Cluster.Node
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "ircd"
}
