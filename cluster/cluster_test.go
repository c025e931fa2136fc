package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/cluster"
	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/state/statetest"
)

// runNATS starts a NATS server with JetStream in a temporary directory,
// stopped at the end of the test.
func runNATS(t *testing.T) *server.Server {
	t.Helper()
	s, err := cluster.RunNATS(cluster.NATSOptions{Name: "t", Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, ns *server.Server, cfg cluster.Config) *cluster.Node {
	t.Helper()
	cfg.URLs = []string{ns.ClientURL()}
	if cfg.Node == "" {
		cfg.Node = "n1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := cluster.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The JetStream backend runs the suites every implementation runs.
func TestStateSuites(t *testing.T) {
	var ns *server.Server
	var node *cluster.Node
	closeNode := func(t *testing.T) { node.Close() }
	t.Run("Mailbox", func(t *testing.T) {
		statetest.RunMailbox(t, statetest.MailboxKit{
			Open: func(t *testing.T, l statetest.MailboxLimits) ircd.Mailbox {
				ns = runNATS(t)
				node = connect(t, ns, cluster.Config{MailboxLimit: l.Total, MailboxPerSender: l.PerSender})
				return node.Mailbox()
			},
			Reopen: func(t *testing.T) ircd.Mailbox {
				node = connect(t, ns, cluster.Config{})
				return node.Mailbox()
			},
			Close: closeNode,
		})
	})
	t.Run("Silences", func(t *testing.T) {
		statetest.RunSilences(t, statetest.SilencesKit{
			Open: func(t *testing.T) ircd.Silences {
				ns = runNATS(t)
				node = connect(t, ns, cluster.Config{})
				return node.Silences()
			},
			Reopen: func(t *testing.T) ircd.Silences {
				node = connect(t, ns, cluster.Config{})
				return node.Silences()
			},
			Close: closeNode,
		})
	})
	t.Run("Presence", func(t *testing.T) {
		statetest.RunPresence(t, statetest.PresenceKit{
			Open: func(t *testing.T, now func() time.Time) ircd.Presence {
				ns = runNATS(t)
				node = connect(t, ns, cluster.Config{Now: now})
				return node.Presence()
			},
			Reopen: func(t *testing.T, now func() time.Time) ircd.Presence {
				node = connect(t, ns, cluster.Config{Now: now})
				return node.Presence()
			},
			Close: closeNode,
		})
	})
}

// The bus over NATS runs the bus suite with three nodes, and the
// cluster's limiter the limiter suite.
func TestBusSuite(t *testing.T) {
	var nodes []*cluster.Node
	statetest.RunBus(t, statetest.BusKit{
		Open: func(t *testing.T) []ircd.Bus {
			ns := runNATS(t)
			var buses []ircd.Bus
			for _, name := range []string{"n1", "n2", "n3"} {
				n := connect(t, ns, cluster.Config{Node: name})
				nodes = append(nodes, n)
				buses = append(buses, n.Bus())
			}
			return buses
		},
		Close: func(*testing.T) {
			for _, n := range nodes {
				n.Close()
			}
		},
	})
}

func TestLimiterSuite(t *testing.T) {
	var node *cluster.Node
	statetest.RunLimiter(t, statetest.LimiterKit{
		Open: func(t *testing.T, p accounts.LimiterPolicy, now func() time.Time) accounts.Limiter {
			node = connect(t, runNATS(t), cluster.Config{Now: now})
			l, err := node.Limiter(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
		Close: func(*testing.T) { node.Close() },
	})
}
