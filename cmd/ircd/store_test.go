package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lobbychat/ircd/store"
)

// runToExit runs the daemon expecting it to refuse to start, and returns
// its exit error and output. A daemon that serves instead is killed.
func (d *testDaemon) runToExit() (error, string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.bin, "-config", filepath.Join(d.dir, "config.toml")).CombinedOutput()
	if ctx.Err() != nil {
		d.t.Fatalf("the daemon did not exit: %s", out)
	}
	return err, string(out)
}

func wantRefusal(t *testing.T, err error, out string, wants ...string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("daemon exit = %v, want exit status 1; output:\n%s", err, out)
	}
	for _, bad := range []string{"panic", "SIGSEGV", "SIGBUS", "goroutine "} {
		if strings.Contains(out, bad) {
			t.Fatalf("daemon crashed (%q):\n%s", bad, out)
		}
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}

// A database truncated to 8 KB: the daemon exits 1 with a message naming
// the file and the commands that recover it, instead of SIGSEGV.
func TestDaemonRefusesTruncatedStore(t *testing.T) {
	d := newDaemon(t)
	d.start()
	alice := d.login("alice")
	fmt.Fprintf(alice.c, "PRIVMSG bob :stored before the damage\r\n")
	alice.expect(` 301 alice bob `)
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(d.dir, "state", "ircd.db")
	if err := os.Truncate(db, 8192); err != nil {
		t.Fatal(err)
	}
	err, out := d.runToExit()
	cfg := filepath.Join(d.dir, "config.toml")
	wantRefusal(t, err, out, db+" is damaged", "truncated",
		"store check -config "+cfg, "store salvage -config "+cfg)
	if fi, _ := os.Stat(db); fi.Size() != 8192 {
		t.Fatalf("database changed to %d bytes", fi.Size())
	}
}

// A 0-byte database is refused and left as it is, not started over.
func TestDaemonRefusesEmptyStore(t *testing.T) {
	d := newDaemon(t)
	db := filepath.Join(d.dir, "state", "ircd.db")
	os.MkdirAll(filepath.Dir(db), 0o700)
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err, out := d.runToExit()
	wantRefusal(t, err, out, db+" is empty (0 bytes)")
	if fi, _ := os.Stat(db); fi.Size() != 0 {
		t.Fatalf("the empty database was re-initialised (%d bytes)", fi.Size())
	}
}

// putBadRecord appends an undecodable record to a mailbox, as damage on
// disk would leave one.
func putBadRecord(t *testing.T, db, to string) uint64 {
	t.Helper()
	b, err := bolt.Open(db, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var id uint64
	err = b.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte("mail")).Bucket([]byte(to))
		id, _ = mb.NextSequence()
		return mb.Put(binary.BigEndian.AppendUint64(nil, id), []byte{2, 0xff, 0xff, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func appendAll(t *testing.T, db, to string, texts ...string) {
	t.Helper()
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, text := range texts {
		if _, err := st.Append(context.Background(), to, store.Message{From: "alice!alice@127.0.0.1", Command: "PRIVMSG", Text: text, Time: time.Now(), Sender: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
}

func metric(t *testing.T, addr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("metrics lack %s", name)
	}
	return string(m[1])
}

// An undecodable record in the middle of bob's mailbox: the server
// starts, bob gets the others (every login, no crash), the record is
// logged without text and counted in the metrics, and bob's
// acknowledgement deletes it with the rest.
func TestDaemonDeliversPastBadRecord(t *testing.T) {
	d := newDaemon(t, "[metrics]\nlisten = \"127.0.0.1:0\"")
	db := filepath.Join(d.dir, "state", "ircd.db")
	appendAll(t, db, "bob", "first")
	bad := putBadRecord(t, db, "bob")
	appendAll(t, db, "bob", "third")
	d.start()

	for range 2 { // a second login must not crash either
		bob := d.login("bob")
		bob.expect(`^:alice!alice@127\.0\.0\.1 PRIVMSG bob :\[[^]]*\] first$`)
		bob.expect(`^:alice!alice@127\.0\.0\.1 PRIVMSG bob :\[[^]]*\] third$`)
		fmt.Fprintf(bob.c, "QUIT\r\n")
		bob.expect(`^ERROR `)
	}
	waitLogMatch(t, d, fmt.Sprintf(`skipped an undecodable message.* mailbox=bob id=%d`, bad))
	if v := metric(t, d.metricsAddr, "ircd_store_corrupt_records_total"); v != "2" {
		t.Fatalf("ircd_store_corrupt_records_total = %s, want 2 (two logins)", v)
	}

	bob := d.login("bob")
	bob.expect(` PRIVMSG bob :.* third$`)
	readReplay(t, bob) // answers the replay's PING: acknowledged
	fmt.Fprintf(bob.c, "QUIT\r\n")
	bob.expect(`^ERROR `)
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r, err := store.Check(db, time.Minute)
	if err != nil || !r.OK() || r.Messages != 0 {
		t.Fatalf("after the ack: Check = %+v, %v; want a sound, empty mailbox", r, err)
	}
}

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := realMain(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// ircd store check and salvage, and ircd check, on a damaged database:
// check lists the damage and fails; salvage writes a new file next to it
// and prints the commands that put it in place; after them the database
// is sound and holds every readable record.
func TestStoreCheckAndSalvageCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[store]\npath = \"data/ircd.db\"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "users.txt"), []byte("alice alicepw\nbob bobpw\n"), 0o600)
	db := filepath.Join(dir, "data", "ircd.db")

	if code, out, errs := runMain("store", "check", "-config", cfg); code != 0 || !strings.Contains(out, "no database yet") {
		t.Fatalf("store check without a database = %d, %q, %q", code, out, errs)
	}
	if code, _, _ := runMain("store", "fix", "-config", cfg); code != 2 {
		t.Fatalf("unknown store subcommand exit %d, want 2", code)
	}

	var texts []string
	for i := range 300 {
		texts = append(texts, fmt.Sprintf("message %03d, with some words to fill the pages", i))
	}
	appendAll(t, db, "bob", texts...)
	appendAll(t, db, "carol", "for carol")
	bad := putBadRecord(t, db, "bob")

	// While a server holds it, ircd check does not fail on it.
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runMain("check", "-config", cfg); code != 0 || !strings.Contains(out, "in use by a running server") {
		t.Fatalf("check while in use = %d, %q, %q", code, out, errs)
	}
	st.Close()

	code, out, _ := runMain("store", "check", "-config", cfg)
	if code != 1 || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, fmt.Sprintf(`mail/"bob": message %d cannot be decoded`, bad)) ||
		!strings.Contains(out, "store salvage -config "+cfg) {
		t.Fatalf("store check of a bad record = %d:\n%s", code, out)
	}
	// Now damage the structure too: zero the page holding message 150.
	b, _ := os.ReadFile(db)
	ps := os.Getpagesize()
	at := bytes.Index(b, []byte("message 150,"))
	if at < 0 {
		t.Fatal("message 150 not found in the file")
	}
	f, _ := os.OpenFile(db, os.O_WRONLY, 0)
	f.WriteAt(make([]byte, ps), int64(at/ps*ps))
	f.Close()
	if code, out, _ := runMain("check", "-config", cfg); code != 1 || !strings.Contains(out, "DAMAGED") {
		t.Fatalf("ircd check of a damaged database = %d:\n%s", code, out)
	}

	before, _ := os.ReadFile(db)
	code, out, errs := runMain("store", "salvage", "-config", cfg)
	if code != 0 {
		t.Fatalf("store salvage = %d: %s%s", code, out, errs)
	}
	t.Log(out)
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Fatal("salvage changed the original")
	}
	mv := regexp.MustCompile(`(?m)^  mv (\S+) (\S+)$`).FindAllStringSubmatch(out, -1)
	if len(mv) != 2 || !strings.HasPrefix(mv[0][2], db+".damaged-") || !strings.HasPrefix(mv[1][1], db+".salvaged-") || mv[1][2] != db {
		t.Fatalf("salvage printed no usable mv commands:\n%s", out)
	}
	for _, m := range mv {
		if err := os.Rename(m[1], m[2]); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := runMain("store", "check", "-config", cfg); code != 0 || !strings.Contains(out, "ok (2 mailboxes") {
		t.Fatalf("store check after salvage = %d: %s%s", code, out, errs)
	}
	if code, out, errs := runMain("check", "-config", cfg); code != 0 {
		t.Fatalf("ircd check after salvage = %d: %s%s", code, out, errs)
	}

	st, err = store.Open(db, store.Options{CheckTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msgs, err := st.Pending(context.Background(), "bob")
	if err != nil || len(msgs) < 200 || len(msgs) >= 300 || msgs[0].Text != texts[0] || msgs[len(msgs)-1].Text != texts[299] {
		t.Fatalf("bob's salvaged mailbox: %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if strings.HasPrefix(m.Text, "message 150,") {
			t.Fatal("a message from the zeroed page came back")
		}
	}
	if c, _ := st.Pending(context.Background(), "carol"); len(c) != 1 {
		t.Fatalf("carol's mailbox: %+v", c)
	}

	// -out names the new file.
	out2 := filepath.Join(dir, "copy.db")
	if code, out, errs := runMain("store", "salvage", "-config", cfg, "-out", out2); code == 0 {
		t.Fatalf("salvage of an open database succeeded: %s%s", out, errs)
	}
	st.Close()
	if code, out, errs := runMain("store", "salvage", "-config", cfg, "-out", out2); code != 0 || !strings.Contains(out, "into "+out2) {
		t.Fatalf("salvage -out = %d: %s%s", code, out, errs)
	}
}
