// Command natsd runs a NATS server with JetStream, from the nats-server
// library this project is built with, for `make cluster-demo` and for
// trying cluster mode without installing NATS. In production run the
// official nats-server (2.11 or newer: cluster mode relies on KV limit
// markers).
//
//	natsd -name n1 -addr 127.0.0.1:4222 -store data/n1 [-cluster 127.0.0.1:6222 -routes nats-route://127.0.0.1:6223,...]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/lobbychat/ircd/cluster"
)

func main() {
	name := flag.String("name", "natsd", "the server's name, unique in a NATS cluster")
	addr := flag.String("addr", "127.0.0.1:4222", "client listen address")
	store := flag.String("store", "data/nats", "JetStream's directory")
	clusterAddr := flag.String("cluster", "", "route listen address, to form a NATS cluster (host:port)")
	routes := flag.String("routes", "", "comma-separated routes to the other servers (nats-route://host:port)")
	syncAlways := flag.Bool("sync-always", false, "fsync every JetStream write before acknowledging it")
	flag.Parse()
	o := cluster.NATSOptions{Name: *name, StoreDir: *store, SyncAlways: *syncAlways, ClusterName: "lobby"}
	var err error
	if o.Host, o.Port, err = hostPort(*addr); err != nil {
		fail(err)
	}
	if *clusterAddr != "" {
		if o.ClusterHost, o.ClusterPort, err = hostPort(*clusterAddr); err != nil {
			fail(err)
		}
		for _, r := range strings.Split(*routes, ",") {
			if r = strings.TrimSpace(r); r != "" {
				o.Routes = append(o.Routes, r)
			}
		}
	}
	s, err := cluster.RunNATS(o)
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "natsd %s: clients at %s, JetStream in %s\n", *name, s.ClientURL(), *store)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	s.Shutdown()
	s.WaitForShutdown()
}

func hostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err == nil && n == 0 {
		n = -1 // any free port (the server reads 0 as its default, 4222)
	}
	return h, n, err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "natsd:", err)
	os.Exit(1)
}
