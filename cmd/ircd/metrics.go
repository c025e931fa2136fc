package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lobbychat/ircd/ircd"
)

// statsCollector exports the server's counters at scrape time, so the
// message path only bumps atomics and ircd knows nothing of Prometheus.
type statsCollector struct {
	srv   *ircd.Server
	be    *backends
	descs map[string]*prometheus.Desc
}

var metricHelp = map[string]string{
	"ircd_connections":               "Open client connections.",
	"ircd_users_logged_in":           "Users logged in now.",
	"ircd_connections_total":         "Connections accepted.",
	"ircd_connections_refused_total": "Connections refused by max_clients or max_per_ip.",
	"ircd_logins_total":              "Successful logins.",
	"ircd_login_failures_total":      "Failed logins (bad credentials, locked or throttled).",
	"ircd_lockouts_total":            "Account lockouts started.",
	"ircd_messages_relayed_total":    "PRIVMSG, NOTICE and TAGMSG sent by users.",
	"ircd_offline_stored_total":      "Offline messages stored.",
	"ircd_offline_delivered_total":   "Offline messages delivered and acknowledged.",
	"ircd_sendq_disconnects_total":   "Clients disconnected for exceeding their SendQ.",
	"ircd_store_corrupt_records_total": "Damaged records or pages the store met and skipped (each is logged); " +
		"not zero means run 'ircd store check'.",
	"ircd_cluster_connected": "1 while this node reaches NATS (cluster mode); 0 means new logins are refused.",
}

func newStatsCollector(srv *ircd.Server, be *backends) *statsCollector {
	c := &statsCollector{srv: srv, be: be, descs: make(map[string]*prometheus.Desc)}
	for name, help := range metricHelp {
		c.descs[name] = prometheus.NewDesc(name, help, nil, nil)
	}
	return c
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	gauge := func(name string, v int) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, float64(v))
	}
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge("ircd_connections", st.Connections)
	gauge("ircd_users_logged_in", st.LoggedIn)
	counter("ircd_connections_total", st.ConnectionsTotal)
	counter("ircd_connections_refused_total", st.Refused)
	counter("ircd_logins_total", st.Logins)
	counter("ircd_login_failures_total", st.LoginFailures)
	counter("ircd_lockouts_total", st.Lockouts)
	counter("ircd_messages_relayed_total", st.MessagesRelayed)
	counter("ircd_offline_stored_total", st.OfflineStored)
	counter("ircd_offline_delivered_total", st.OfflineDelivered)
	counter("ircd_sendq_disconnects_total", st.SendQDisconnects)
	if c.be.st != nil {
		counter("ircd_store_corrupt_records_total", c.be.st.CorruptRecords())
	}
	if n := c.be.node; n != nil {
		up := 0
		if n.Connected() {
			up = 1
		}
		gauge("ircd_cluster_connected", up)
	}
}

// metricsHandler serves /metrics from a registry of our own (no global
// default registry), with Go runtime and process metrics alongside, and
// /debug/pprof/.
func metricsHandler(srv *ircd.Server, be *backends) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStatsCollector(srv, be),
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles for finding hot paths under load; the metrics listener is
	// meant for loopback or a private network, like /metrics itself.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}
