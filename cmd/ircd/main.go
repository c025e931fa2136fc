// Command ircd runs the chat server.
//
//	ircd [run] -config FILE   serve (the default subcommand)
//	ircd check -config FILE   validate the config and users file
//	ircd passwd               read a password, print a bcrypt hash for users.txt
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/lobbychat/ircd/accounts"
	"github.com/lobbychat/ircd/ircd"
	"github.com/lobbychat/ircd/store"
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
	default:
		fmt.Fprintf(stderr, "ircd: unknown subcommand %q (want run, check or passwd)\n", sub)
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
	return 0
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

func newLogger(cfg config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.Log.Level)
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
		Guests:        cfg.Accounts.Guests,
		OnDuplicate:   cfg.Accounts.OnDuplicate,
		Recent:        cfg.Presence.Recent.Duration,
		SendQ:         cfg.Limits.SendQ,
		RegTimeout:    cfg.Limits.RegistrationTimeout.Duration,
		PingInterval:  cfg.Limits.PingInterval.Duration,
		PingTimeout:   cfg.Limits.PingTimeout.Duration,
		Logger:        log,
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

func run(path string, stderr io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	db, err := loadUsers(cfg.Accounts.UsersFile, log)
	if err != nil {
		return err
	}
	acc := accounts.New(db, accounts.NewLockout(cfg.Accounts.MaxFailures, cfg.Accounts.Lockout.Duration, time.Now))
	st, err := store.Open(cfg.Store.Path, store.Options{MailboxLimit: cfg.Store.MailboxLimit})
	if err != nil {
		return err
	}
	srv, err := ircd.New(serverConfig(cfg, log), acc, st)
	if err != nil {
		st.Close()
		return err
	}
	var listeners []net.Listener
	for _, addr := range cfg.Server.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			srv.Shutdown(context.Background())
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		listeners = append(listeners, l)
		log.Info("listening", "addr", l.Addr().String())
	}
	serveErr := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { serveErr <- srv.Serve(l) }()
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case err := <-serveErr:
			log.Error("listener failed", "err", err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			srv.Shutdown(ctx)
			cancel()
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if db, err := loadUsers(cfg.Accounts.UsersFile, log); err != nil {
					log.Error("reload failed; keeping the old users", "err", err)
				} else {
					acc.Swap(db)
					srv.AccountsChanged()
					log.Info("reloaded users file", "accounts", db.Len())
				}
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				log.Error("shutdown", "err", err)
			}
			return nil
		}
	}
}
