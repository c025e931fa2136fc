package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions describe a NATS server run inside this process: for tests,
// for `make cluster-demo` (cmd/natsd), and for a node that brings its own.
type NATSOptions struct {
	Name     string // the server's name (unique in a NATS cluster)
	Host     string // listen address for clients (127.0.0.1 if empty)
	Port     int    // client port; -1 picks a free one
	StoreDir string // where JetStream keeps its files
	// SyncAlways makes JetStream fsync every write before acknowledging
	// it, as the embedded store does; otherwise it flushes every two
	// minutes (see Mailbox).
	SyncAlways bool
	// A NATS cluster of several servers: this server's route listener
	// and the routes to the others (nats-route://host:port).
	ClusterName string
	ClusterHost string
	ClusterPort int
	Routes      []string
}

// RunNATS starts a NATS server with JetStream and waits until it takes
// clients.
func RunNATS(o NATSOptions) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.StoreDir == "" {
		return nil, errors.New("cluster: NATS needs a store directory")
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	}
	if o.SyncAlways {
		opts.SyncAlways = true
	}
	if o.ClusterPort != 0 {
		host := o.ClusterHost
		if host == "" {
			host = o.Host
		}
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: host, Port: o.ClusterPort}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("cluster: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("cluster: the NATS server did not start in 10s")
	}
	return s, nil
}
