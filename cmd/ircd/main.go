// Command ircd runs the chat server.
//
//	ircd [run] -config FILE                        serve (the default subcommand)
//	ircd check -config FILE                        validate the config, users file and database
//	ircd passwd                                    read a password, print a bcrypt hash for users.txt
//	ircd store check -config FILE                  list the database's damage; exit 1 if any
//	ircd store salvage -config FILE [-out PATH]    copy every readable record into a new database
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/ircd"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run", "check":
		fs := flag.NewFlagSet(sub, flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "config.toml", "path to config.toml")
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if sub == "check" {
			return check(*path, stdout, stderr)
		}
		if err := run(*path, stderr); err != nil {
			fmt.Fprintln(stderr, "ircd:", err)
			return 1
		}
		return 0
	case "passwd":
		return passwd(stdin, stdout, stderr)
	case "store":
		return storeCommand(args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ircd: unknown subcommand %q (want run, check, passwd or store)\n", sub)
		return 2
	}
}

func check(path string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	db, err := accounts.Load(cfg.Accounts.UsersFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d accounts)\n", path, db.Len())
	if len(cfg.Cluster.NATS) > 0 {
		if _, err := clusterConfig(cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "cluster: node %s, NATS %s (the embedded store is not used)\n", nodeName(cfg), strings.Join(cfg.Cluster.NATS, ", "))
		return 0
	}
	return checkDatabase(path, cfg, stdout, stderr, true)
}

func passwd(stdin io.Reader, stdout, stderr io.Writer) int {
	var pw string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintln(stderr, "ircd passwd:", err)
			return 1
		}
		pw = string(b)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "ircd passwd:", err)
			return 1
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" || strings.ContainsAny(pw, " \t") {
		fmt.Fprintln(stderr, "ircd passwd: the password must be non-empty and contain no spaces")
		return 1
	}
	hash, err := accounts.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "ircd passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

func newLogger(cfg config, level *slog.LevelVar, w io.Writer) *slog.Logger {
	l, _ := parseLevel(cfg.Log.Level)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serverConfig(cfg config, log *slog.Logger) ircd.Config {
	return ircd.Config{
		ServerName:    cfg.Server.Name,
		Network:       cfg.Server.Network,
		MOTD:          cfg.Server.MOTD,
		Channel:       cfg.Channel.Name,
		Topic:         cfg.Channel.Topic,
		AnnounceLimit: cfg.Channel.AnnounceLimit,
		History:       cfg.Channel.History,
		Guests:        cfg.Accounts.Guests,
		OnDuplicate:   cfg.Accounts.OnDuplicate,
		DuplicatePing: cfg.Accounts.DuplicatePing.Duration,
		Recent:        cfg.Presence.Recent.Duration,
		SendQ:         cfg.Limits.SendQ,
		RegTimeout:    cfg.Limits.RegistrationTimeout.Duration,
		PingInterval:  cfg.Limits.PingInterval.Duration,
		PingTimeout:   cfg.Limits.PingTimeout.Duration,
		MaxClients:    cfg.Limits.MaxClients,
		MaxPerIP:      cfg.Limits.MaxPerIP,
		FloodBurst:    cfg.Limits.FloodBurst,
		FloodRate:     cfg.Limits.FloodRate,
		Logger:        log,
	}
}

func limiterPolicy(cfg config) accounts.LimiterPolicy {
	return accounts.LimiterPolicy{
		MaxFailures:  cfg.Accounts.MaxFailures,
		Lockout:      cfg.Accounts.Lockout.Duration,
		AddrFailures: cfg.Limits.IPLoginFailures,
		AddrWindow:   cfg.Limits.IPLoginWindow.Duration,
	}
}

func loadUsers(path string, log *slog.Logger) (*accounts.DB, error) {
	db, err := accounts.Load(path)
	if err != nil {
		return nil, err
	}
	if plain := db.Plaintext(); len(plain) > 0 {
		log.Warn("users file has plaintext passwords; hash them with 'ircd passwd'", "file", path, "accounts", len(plain))
	}
	return db, nil
}

// daemon is one running server with everything main wires around it.
type daemon struct {
	path  string
	cfg   config
	log   *slog.Logger
	level *slog.LevelVar
	acc   *accounts.Accounts
	be    *backends
	srv   *ircd.Server
	certs certStore
}

// setCPUs sets how many threads run Go code at once (GOMAXPROCS), before
// anything starts: the server makes one event loop per such CPU. One is
// the cheapest per message and per login (BENCHMARKS.md): with more, the
// runtime keeps waking idle threads to look for work. A GOMAXPROCS
// environment variable wins over the file.
func setCPUs(n int, log *slog.Logger) {
	if env := os.Getenv("GOMAXPROCS"); env != "" {
		log.Info("cpus", "n", runtime.GOMAXPROCS(0), "from", "GOMAXPROCS")
		return
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	log.Info("cpus", "n", runtime.GOMAXPROCS(0), "of", runtime.NumCPU())
}

func run(path string, stderr io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	d := &daemon{path: path, cfg: cfg, level: new(slog.LevelVar)}
	d.log = newLogger(cfg, d.level, stderr)
	setCPUs(cfg.Server.CPUs, d.log)
	db, err := loadUsers(cfg.Accounts.UsersFile, d.log)
	if err != nil {
		return err
	}
	if len(cfg.TLS.Listen) > 0 {
		if err := d.certs.load(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return err
		}
	}
	d.be, err = d.openBackends(db)
	if err != nil {
		return err
	}
	d.acc = d.be.Accounts
	d.srv, err = ircd.New(serverConfig(cfg, d.log), d.be.Backends)
	if err != nil {
		d.be.close()
		return err
	}
	// Catch signals before the first listener opens: a SIGHUP sent as soon
	// as the port answers must reload, not kill the process by default.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	serveErr := make(chan error, len(cfg.Server.Listen)+len(cfg.TLS.Listen)+1)
	if err := d.listen(serveErr); err != nil {
		d.shutdown()
		return err
	}

	for {
		select {
		case err := <-serveErr:
			d.log.Error("listener failed", "err", err)
			d.shutdown()
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.log.Info("shutting down", "signal", sig.String())
			d.shutdown()
			return nil
		}
	}
}

// listen opens every plaintext, TLS and metrics listener, or none.
func (d *daemon) listen(serveErr chan<- error) error {
	var opened []net.Listener
	fail := func(err error) error {
		for _, l := range opened {
			l.Close()
		}
		return err
	}
	for _, addr := range d.cfg.Server.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen %s: %w", addr, err))
		}
		opened = append(opened, l)
	}
	for _, addr := range d.cfg.TLS.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen (tls) %s: %w", addr, err))
		}
		opened = append(opened, tls.NewListener(l, d.certs.tlsConfig()))
	}
	webLs, err := d.listenWeb(serveErr)
	if err != nil {
		return fail(err)
	}
	fail = func(err error) error {
		for _, l := range append(opened, webLs...) {
			l.Close()
		}
		return err
	}
	if addr := d.cfg.Metrics.Listen; addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen (metrics) %s: %w", addr, err))
		}
		d.log.Info("metrics listening", "addr", l.Addr().String())
		hs := &http.Server{Handler: metricsHandler(d.srv, d.be), ReadHeaderTimeout: 5 * time.Second}
		go func() { serveErr <- hs.Serve(l) }()
	}
	for i, l := range opened {
		// The bound address (listen may say port 0) and the transport:
		// tests and scripts read both from here.
		d.log.Info("listening", "addr", l.Addr().String(), "tls", i >= len(d.cfg.Server.Listen))
		go func() { serveErr <- d.srv.Serve(l) }()
	}
	return nil
}

// reload re-reads the users file, the reloadable parts of the config and
// the TLS certificate. Anything that fails to load keeps its old state.
func (d *daemon) reload() {
	if db, err := loadUsers(d.cfg.Accounts.UsersFile, d.log); err != nil {
		d.log.Error("reload: keeping the old users", "err", err)
	} else {
		d.acc.Swap(db)
		d.srv.AccountsChanged()
		d.log.Info("reloaded users file", "accounts", db.Len())
	}
	cfg, err := loadConfig(d.path)
	if err != nil {
		d.log.Error("reload: keeping the old config", "err", err)
		return
	}
	cfg.Accounts.UsersFile = d.cfg.Accounts.UsersFile // listeners, paths and names need a restart
	if cfg.Server.CPUs != d.cfg.Server.CPUs {
		d.log.Warn("reload: server.cpus takes effect at the next start")
	}
	d.srv.Reload(serverConfig(cfg, d.log))
	d.be.reload(cfg)
	if l, err := parseLevel(cfg.Log.Level); err == nil {
		d.level.Set(l)
	}
	if len(d.cfg.TLS.Listen) > 0 {
		if err := d.certs.load(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			d.log.Error("reload: keeping the old certificate", "err", err)
		}
	}
	d.log.Info("reloaded config", "file", d.path)
}

func (d *daemon) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		d.log.Error("shutdown", "err", err)
	}
	if err := d.be.close(); err != nil {
		d.log.Error("closing the state backends", "err", err)
	}
}
