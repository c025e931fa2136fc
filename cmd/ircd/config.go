package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/lobbychat/ircd/ircd"
)

// duration reads "60s"-style strings.
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use forms like \"60s\", \"1h\")", b)
	}
	d.Duration = v
	return nil
}

// config mirrors config.toml. Every key has a default (see defaultConfig)
// so a minimal file works.
type config struct {
	Server struct {
		Name    string   `toml:"name"`
		Network string   `toml:"network"`
		MOTD    string   `toml:"motd"`
		Listen  []string `toml:"listen"`
		CPUs    int      `toml:"cpus"`
	} `toml:"server"`
	Channel struct {
		Name          string `toml:"name"`
		Topic         string `toml:"topic"`
		AnnounceLimit int    `toml:"announce_limit"`
		History       int    `toml:"history"`
	} `toml:"channel"`
	Accounts struct {
		UsersFile     string   `toml:"users_file"`
		MaxFailures   int      `toml:"max_failures"`
		Lockout       duration `toml:"lockout"`
		Guests        bool     `toml:"guests"`
		OnDuplicate   string   `toml:"on_duplicate"`
		DuplicatePing duration `toml:"duplicate_ping"`
	} `toml:"accounts"`
	Store struct {
		Path             string   `toml:"path"`
		MailboxLimit     int      `toml:"mailbox_limit"`
		MailboxPerSender int      `toml:"mailbox_per_sender"`
		CheckTimeout     duration `toml:"check_timeout"`
	} `toml:"store"`
	Presence struct {
		Recent duration `toml:"recent"`
	} `toml:"presence"`
	Limits struct {
		MaxClients          int      `toml:"max_clients"`
		MaxPerIP            int      `toml:"max_per_ip"`
		SendQ               int      `toml:"sendq"`
		RegistrationTimeout duration `toml:"registration_timeout"`
		PingInterval        duration `toml:"ping_interval"`
		PingTimeout         duration `toml:"ping_timeout"`
		FloodBurst          int      `toml:"flood_burst"`
		FloodRate           float64  `toml:"flood_rate"`
		IPLoginFailures     int      `toml:"ip_login_failures"`
		IPLoginWindow       duration `toml:"ip_login_window"`
	} `toml:"limits"`
	TLS struct {
		Listen []string `toml:"listen"`
		Cert   string   `toml:"cert"`
		Key    string   `toml:"key"`
	} `toml:"tls"`
	Metrics struct {
		Listen string `toml:"listen"`
	} `toml:"metrics"`
	Web struct {
		Listen         []string `toml:"listen"`
		TLSListen      []string `toml:"tls_listen"`
		AllowedOrigins []string `toml:"allowed_origins"`
		TrustedProxies []string `toml:"trusted_proxies"`
		Insecure       bool     `toml:"insecure"`
	} `toml:"web"`
	Cluster struct {
		NATS     []string `toml:"nats"`
		Node     string   `toml:"node"`
		User     string   `toml:"user"`
		Password string   `toml:"password"`
		Token    string   `toml:"token"`
		Creds    string   `toml:"creds"`
		TLSCA    string   `toml:"tls_ca"`
		TLSCert  string   `toml:"tls_cert"`
		TLSKey   string   `toml:"tls_key"`
		Replicas int      `toml:"replicas"`
		Lease    duration `toml:"lease"`
	} `toml:"cluster"`
	Log struct {
		Level  string `toml:"level"`
		Format string `toml:"format"`
	} `toml:"log"`
}

// defaultConfig is config.toml's defaults: the server's own come from
// ircd.DefaultConfig, the one table of them; the rest (files, accounts,
// store, logs) are the daemon's.
func defaultConfig() config {
	d := ircd.DefaultConfig()
	var c config
	c.Server.Name = d.ServerName
	c.Server.Network = d.Network
	c.Server.Listen = []string{"127.0.0.1:6667"}
	c.Server.CPUs = 1
	c.Channel.Name = d.Channel
	c.Channel.History = d.History
	c.Accounts.UsersFile = "users.txt"
	c.Accounts.MaxFailures = 3
	c.Accounts.Lockout.Duration = 60 * time.Second
	c.Accounts.OnDuplicate = d.OnDuplicate
	c.Accounts.DuplicatePing.Duration = d.DuplicatePing
	c.Store.Path = "data/ircd.db"
	c.Store.MailboxLimit = 1000
	c.Store.MailboxPerSender = 100
	c.Store.CheckTimeout.Duration = 30 * time.Second
	c.Presence.Recent.Duration = d.Recent
	c.Limits.MaxClients = d.MaxClients
	c.Limits.MaxPerIP = d.MaxPerIP
	c.Limits.SendQ = d.SendQ
	c.Limits.FloodBurst = d.FloodBurst
	c.Limits.FloodRate = d.FloodRate
	c.Limits.IPLoginFailures = 10
	c.Limits.IPLoginWindow.Duration = 10 * time.Minute
	c.Limits.RegistrationTimeout.Duration = d.RegTimeout
	c.Limits.PingInterval.Duration = d.PingInterval
	c.Limits.PingTimeout.Duration = d.PingTimeout
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.Cluster.Replicas = 1
	c.Cluster.Lease.Duration = 12 * time.Second
	return c
}

// loadConfig reads path over the defaults. Unknown keys and bad values
// are errors naming the key; relative paths are resolved against the
// config file's folder.
func loadConfig(path string) (config, error) {
	c := defaultConfig()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	for _, k := range md.Undecoded() {
		problems = append(problems, fmt.Sprintf("unknown key %q", k.String()))
	}
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			problems = append(problems, key+": "+fmt.Sprintf(format, args...))
		}
	}
	check(c.Server.Name != "" && !strings.ContainsAny(c.Server.Name, " :!@"), "server.name", "must be a host-like name, got %q", c.Server.Name)
	check(c.Server.Network != "" && !strings.ContainsAny(c.Server.Network, " "), "server.network", "must be one word, got %q", c.Server.Network)
	check(len(c.Server.Listen) > 0, "server.listen", "needs at least one address")
	check(c.Server.CPUs >= 0, "server.cpus", "must be >= 0 (0 = every CPU)")
	if err := ircd.ValidChannelName(c.Channel.Name); err != nil {
		problems = append(problems, "channel.name: "+err.Error())
	}
	check(c.Channel.AnnounceLimit >= 0, "channel.announce_limit", "must be >= 0")
	check(c.Accounts.UsersFile != "", "accounts.users_file", "must be set")
	check(c.Accounts.MaxFailures >= 1, "accounts.max_failures", "must be >= 1, got %d", c.Accounts.MaxFailures)
	check(c.Accounts.Lockout.Duration > 0, "accounts.lockout", "must be > 0")
	check(c.Accounts.DuplicatePing.Duration >= 0, "accounts.duplicate_ping", "must be >= 0 (0 refuses a second login at once)")
	check(c.Accounts.OnDuplicate == "reject" || c.Accounts.OnDuplicate == "replace", "accounts.on_duplicate", "must be \"reject\" or \"replace\", got %q", c.Accounts.OnDuplicate)
	check(c.Store.Path != "", "store.path", "must be set")
	check(c.Store.MailboxLimit >= 0, "store.mailbox_limit", "must be >= 0 (0 = no limit)")
	check(c.Store.MailboxPerSender >= 0, "store.mailbox_per_sender", "must be >= 0 (0 = no limit)")
	check(c.Store.CheckTimeout.Duration >= 0, "store.check_timeout", "must be >= 0 (0 = no check at startup)")
	check(c.Presence.Recent.Duration > 0, "presence.recent", "must be > 0")
	check(c.Limits.MaxClients >= 0, "limits.max_clients", "must be >= 0 (0 = no limit)")
	check(c.Limits.MaxPerIP >= 0, "limits.max_per_ip", "must be >= 0 (0 = no limit)")
	check(c.Limits.SendQ >= 4096, "limits.sendq", "must be at least 4096 bytes")
	check(c.Limits.FloodBurst >= 1, "limits.flood_burst", "must be >= 1")
	check(c.Limits.FloodRate >= 0, "limits.flood_rate", "must be >= 0 (0 = no flood control)")
	check(c.Limits.IPLoginFailures >= 0, "limits.ip_login_failures", "must be >= 0 (0 = no per-address throttle)")
	check(c.Limits.IPLoginWindow.Duration > 0, "limits.ip_login_window", "must be > 0")
	check(len(c.TLS.Listen) == 0 || (c.TLS.Cert != "" && c.TLS.Key != ""), "tls", "listen needs cert and key")
	check(c.Limits.RegistrationTimeout.Duration > 0, "limits.registration_timeout", "must be > 0")
	check(c.Limits.PingInterval.Duration > 0, "limits.ping_interval", "must be > 0")
	check(c.Limits.PingTimeout.Duration > 0, "limits.ping_timeout", "must be > 0")
	check(c.Channel.History >= 0 && c.Channel.History <= 100000, "channel.history", "must be 0 (off) to 100000, got %d", c.Channel.History)
	for _, a := range c.Web.Listen {
		// SASL PLAIN would cross the network in the clear.
		check(c.Web.Insecure || loopback(a), "web.listen", "%s is not a loopback address: serve the web client over TLS (web.tls_listen), or set web.insecure = true behind a TLS proxy", a)
	}
	check(len(c.Web.TLSListen) == 0 || (c.TLS.Cert != "" && c.TLS.Key != ""), "web.tls_listen", "needs [tls] cert and key")
	for _, o := range c.Web.AllowedOrigins {
		check(o != "*" && o != "", "web.allowed_origins", "%q would let any site's pages talk to the server as its visitors; name the hosts", o)
	}
	for _, p := range c.Web.TrustedProxies {
		_, _, err := net.ParseCIDR(p)
		check(err == nil, "web.trusted_proxies", "%q is not a CIDR (e.g. \"10.0.0.0/8\", \"127.0.0.1/32\")", p)
	}
	for _, u := range c.Cluster.NATS {
		pu, err := url.Parse(u)
		check(err == nil && (pu.Scheme == "nats" || pu.Scheme == "tls") && pu.Host != "", "cluster.nats", "%q is not a NATS address (nats://host:port or tls://host:port)", u)
	}
	check(c.Cluster.Node == "" || validNodeName(c.Cluster.Node), "cluster.node", "must be 1 to 64 letters, digits, '-' or '_', got %q", c.Cluster.Node)
	check(c.Cluster.Replicas >= 1 && c.Cluster.Replicas <= 5, "cluster.replicas", "must be 1 to 5, got %d", c.Cluster.Replicas)
	// The lease must outlast a JetStream leader election (4-8 s seen).
	check(c.Cluster.Lease.Duration >= 2*time.Second, "cluster.lease", "must be at least 2s (12s or more in production)")
	check(c.Cluster.TLSCert == "" || c.Cluster.TLSKey != "", "cluster.tls_key", "needed with tls_cert")
	_, lerr := parseLevel(c.Log.Level)
	check(lerr == nil, "log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	check(c.Log.Format == "text" || c.Log.Format == "json", "log.format", "must be \"text\" or \"json\", got %q", c.Log.Format)
	if len(problems) > 0 {
		return c, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	dir := filepath.Dir(path)
	c.Accounts.UsersFile = resolve(dir, c.Accounts.UsersFile)
	c.Store.Path = resolve(dir, c.Store.Path)
	if c.TLS.Cert != "" {
		c.TLS.Cert = resolve(dir, c.TLS.Cert)
	}
	if c.TLS.Key != "" {
		c.TLS.Key = resolve(dir, c.TLS.Key)
	}
	for _, f := range []*string{&c.Cluster.Creds, &c.Cluster.TLSCA, &c.Cluster.TLSCert, &c.Cluster.TLSKey} {
		if *f != "" {
			*f = resolve(dir, *f)
		}
	}
	return c, nil
}

// loopback reports whether a listen address is on the loopback interface
// only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validNodeName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("unknown level")
}
