package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/lobbychat/ircd/store"
)

// progName is how the operator ran us, so printed commands can be pasted.
func progName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return os.Args[0]
	}
	return "ircd"
}

// withRecovery gives a damaged-database error from store.Open the exact
// commands that recover from it, with this program and config file.
func withRecovery(err error, configPath string) error {
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	return errors.New(ce.Recovery(shellQuote(progName()), shellQuote(configPath)))
}

func storeCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "salvage") {
		fmt.Fprintln(stderr, "usage: ircd store check -config FILE\n       ircd store salvage -config FILE [-out PATH]")
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("store "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.toml", "path to config.toml")
	out := new(string)
	if sub == "salvage" {
		out = fs.String("out", "", "where to write the new database (default: next to it, named .salvaged-TIME)")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if sub == "check" {
		return checkDatabase(*path, cfg, stdout, stderr, false)
	}
	return salvage(*path, cfg, *out, stdout, stderr)
}

// checkDatabase runs store.Check on the configured database and prints
// what it found: exit status 0 if the file is sound (or absent), 1 if not.
// With inUseOK, a database locked by a running server is skipped rather
// than failed: 'ircd check' is run before a reload, with the server up.
func checkDatabase(configPath string, cfg config, stdout, stderr io.Writer, inUseOK bool) int {
	db := cfg.Store.Path
	if _, err := os.Lstat(db); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "%s: no database yet (it is created at first start)\n", db)
		return 0
	}
	r, err := store.Check(db, 0)
	if err != nil {
		if inUseOK && errors.Is(err, store.ErrLocked) {
			fmt.Fprintf(stdout, "%s: in use by a running server; not checked (stop it to check the database)\n", db)
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	counts := fmt.Sprintf("%d mailboxes with %d messages, %d silence lists with %d masks, %d last-seen times",
		r.Mailboxes, r.Messages, r.SilenceLists, r.Silences, r.LastSeen)
	for _, n := range r.Notes {
		fmt.Fprintf(stdout, "%s: note: %s\n", db, n)
	}
	if r.OK() {
		fmt.Fprintf(stdout, "%s: ok (%s)\n", db, counts)
		return 0
	}
	fmt.Fprintf(stdout, "%s: DAMAGED\n", db)
	for _, p := range r.Problems {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	if r.More > 0 {
		fmt.Fprintf(stdout, "  ... and %d more\n", r.More)
	}
	fmt.Fprintf(stdout, "readable: %s\n", counts)
	fmt.Fprintf(stdout, "To copy every readable record into a new file: %s store salvage -config %s\n",
		shellQuote(progName()), shellQuote(configPath))
	return 1
}

func salvage(configPath string, cfg config, out string, stdout, stderr io.Writer) int {
	db := cfg.Store.Path
	stamp := time.Now().Format("20060102-150405")
	if out == "" {
		out = db + ".salvaged-" + stamp
	}
	r, err := store.Salvage(db, out)
	if err != nil {
		fmt.Fprintln(stderr, "ircd store salvage:", err)
		return 1
	}
	fmt.Fprintf(stdout, "salvaged %s into %s\n", db, out)
	fmt.Fprintf(stdout, "  mailboxes: %d, messages copied: %d, unreadable skipped: %d\n", r.Mailboxes, r.Messages, r.MessagesSkipped)
	fmt.Fprintf(stdout, "  silence lists: %d, masks copied: %d (of which %d with a damaged order, now last)\n", r.SilenceLists, r.Silences, r.Reordered)
	fmt.Fprintf(stdout, "  last-seen times copied: %d, unreadable skipped: %d\n", r.LastSeen, r.LastSeenSkipped)
	if len(r.Problems) > 0 {
		fmt.Fprintln(stdout, "damage met (records under these pages could not be read):")
		for _, p := range r.Problems {
			fmt.Fprintf(stdout, "  %s\n", p)
		}
		if r.More > 0 {
			fmt.Fprintf(stdout, "  ... and %d more\n", r.More)
		}
	}
	fmt.Fprintf(stdout, "%s is unchanged. To use the new file, stop the server, then run:\n", db)
	fmt.Fprintf(stdout, "  mv %s %s\n", shellQuote(db), shellQuote(db+".damaged-"+stamp))
	fmt.Fprintf(stdout, "  mv %s %s\n", shellQuote(out), shellQuote(db))
	fmt.Fprintln(stdout, "and start the server again.")
	return 0
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
