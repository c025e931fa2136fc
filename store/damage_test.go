package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// logBuffer collects a Store's log lines for a test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// fixture is the content fillStore writes.
type fixture struct {
	bob      []Message // bob's mailbox, enough for several leaf pages
	carol    []Message
	silences map[string][]string
	seen     map[string]time.Time
}

// bobText marks each of bob's messages so tests can find its page.
func bobText(i int) string { return fmt.Sprintf("bob-message-%04d padding to fill pages", i) }

// fillStore writes a fixture into a new database at path and closes it.
func fillStore(t *testing.T, path string) fixture {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f fixture
	when := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	for i := range 400 {
		m := mustAppend(t, s, "bob", Message{From: "alice!a@h", Command: "PRIVMSG", Text: bobText(i), Time: when, Sender: "alice"})
		f.bob = append(f.bob, m)
	}
	for i := range 3 {
		m := mustAppend(t, s, "carol", Message{From: "bob!b@h", Command: "NOTICE", Text: fmt.Sprint("for carol ", i), Time: when, Sender: "bob"})
		f.carol = append(f.carol, m)
	}
	f.silences = map[string][]string{"bob": {"spam!*@*", "eve!*@*"}, "carol": {"*!*@10.0.0.*"}}
	for acct, masks := range f.silences {
		for _, m := range masks {
			if _, err := s.AddSilence(ctx, acct, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.seen = make(map[string]time.Time)
	for i := range 50 {
		f.seen[fmt.Sprint("user", i)] = when.Add(time.Duration(i) * time.Minute)
	}
	if err := s.SetLastSeen(seenAt(f.seen)); err != nil {
		t.Fatal(err)
	}
	return f
}

// A record that cannot be decoded in the middle of a mailbox is skipped,
// counted and logged (without message text); the others are delivered and
// acknowledging past it deletes it.
func TestBadRecordMidMailbox(t *testing.T) {
	var log logBuffer
	s := newTestStore(t, Options{Logger: log.logger(), MailboxPerSender: 10})
	m1 := mustAppendFrom(t, s, "bob", "alice")
	putRaw(t, s, "bob", idKey(2), []byte{msgVersion, 5, 's', 'e', 'c', 'r'})
	m3 := mustAppendFrom(t, s, "bob", "carol")
	m4 := mustAppendFrom(t, s, "bob", "alice")

	msgs := mustPending(t, s, "bob")
	if len(msgs) != 3 || msgs[0].ID != m1.ID || msgs[1].ID != m3.ID || msgs[2].ID != m4.ID {
		t.Fatalf("Pending = %+v, want ids 1, 3, 4", msgs)
	}
	if n := s.CorruptRecords(); n != 1 {
		t.Fatalf("CorruptRecords = %d, want 1", n)
	}
	line := log.String()
	if !strings.Contains(line, "mailbox=bob") || !strings.Contains(line, "id=2") || strings.Contains(line, "secr") {
		t.Fatalf("log = %q; want mailbox and id, no message text", line)
	}

	if err := s.Ack(ctx, "bob", m3.ID); err != nil {
		t.Fatalf("Ack past the bad record: %v", err)
	}
	if msgs := mustPending(t, s, "bob"); len(msgs) != 1 || msgs[0].ID != m4.ID {
		t.Fatalf("Pending after Ack = %+v, want only id 4", msgs)
	}
	if n := s.CorruptRecords(); n != 1 {
		t.Fatalf("CorruptRecords = %d after the bad record was acked past, want still 1", n)
	}

	// A bad record last in the mailbox goes with the Ack of the one
	// before it: nothing could ever ack it otherwise.
	putRaw(t, s, "bob", idKey(5), []byte{0xee})
	if msgs := mustPending(t, s, "bob"); len(msgs) != 1 || msgs[0].ID != m4.ID {
		t.Fatalf("Pending = %+v, want only id 4", msgs)
	}
	if err := s.Ack(ctx, "bob", m4.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PendingCount("bob"); err != nil || n != 0 {
		t.Fatalf("PendingCount = %d, %v; want an empty mailbox", n, err)
	}
	if next := mustAppendFrom(t, s, "bob", "alice"); next.ID != 6 {
		t.Fatalf("next ID = %d, want 6", next.ID)
	}
}

// Damaged silence and last-seen entries cost only themselves.
func TestDamagedSilenceAndLastSeen(t *testing.T) {
	s := newTestStore(t, Options{})
	for _, m := range []string{"a!*@*", "b!*@*", "c!*@*"} {
		if _, err := s.AddSilence(ctx, "bob", m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddSilence(ctx, "carol", "x!*@*"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastSeen(seenAt(map[string]time.Time{"bob": time.Unix(100, 0), "carol": time.Unix(200, 0)})); err != nil {
		t.Fatal(err)
	}
	rawPut(t, s, [][]byte{bucketSilence, []byte("bob")}, []byte("a!*@*"), []byte{1, 2, 3})
	rawPut(t, s, [][]byte{bucketSilence}, []byte("notalist"), []byte("x"))
	rawPut(t, s, [][]byte{bucketLastSeen}, []byte("bob"), []byte{1})

	if got, err := s.Silences(ctx, "bob"); err != nil || strings.Join(got, " ") != "b!*@* c!*@* a!*@*" {
		t.Fatalf("Silences = %q, %v; want the damaged entry kept, last", got, err)
	}
	all, err := s.AllSilences()
	if err != nil || len(all) != 2 || len(all["bob"]) != 3 || len(all["carol"]) != 1 {
		t.Fatalf("AllSilences = %q, %v", all, err)
	}
	seen, err := s.LastSeen()
	if err != nil || len(seen) != 1 || !seen["carol"].At.Equal(time.Unix(200, 0)) {
		t.Fatalf("LastSeen = %v, %v; want carol only", seen, err)
	}
	if s.CorruptRecords() == 0 {
		t.Fatal("damage not counted")
	}
}

// A damaged mailbox sequence (below the stored IDs) must not let a new
// message take, and overwrite, a stored message's ID.
func TestSequenceBelowMessagesHealed(t *testing.T) {
	s := newTestStore(t, Options{})
	for range 3 {
		mustAppend(t, s, "bob", Message{Text: "x"})
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMail).Bucket([]byte("bob")).SetSequence(1)
	}); err != nil {
		t.Fatal(err)
	}
	if m := mustAppend(t, s, "bob", Message{Text: "new"}); m.ID != 4 {
		t.Fatalf("new ID = %d, want 4", m.ID)
	}
	if msgs := mustPending(t, s, "bob"); len(msgs) != 4 {
		t.Fatalf("Pending = %+v, want 4 messages", msgs)
	}
}

// rawPut writes a key straight into the bucket at path.
func rawPut(t *testing.T, s *Store, path [][]byte, k, v []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(path[0])
		for _, name := range path[1:] {
			b = b.Bucket(name)
		}
		return b.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.silenceCache.Clear() // damage under the store: what a restart would read
}

// callEverything calls every Store method on keys and returns how many
// failed. A fault or panic escaping the store would kill the test process;
// a call that hangs (bbolt's writer lock left held after a panic) fails
// the test after a bound.
func callEverything(t *testing.T, s *Store, keys []string) (errs int) {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- callAll(s, keys) }()
	select {
	case errs = <-done:
		return errs
	case <-time.After(20 * time.Second):
		t.Fatal("store calls hang on a damaged file")
		return 0
	}
}

func callAll(s *Store, keys []string) (errs int) {
	count := func(err error) {
		if err != nil {
			errs++
		}
	}
	for _, k := range keys {
		msgs, err := s.Pending(ctx, k)
		count(err)
		if len(msgs) > 0 {
			count(s.Ack(ctx, k, msgs[0].ID))
		}
		_, err = s.PendingCount(k)
		count(err)
		_, err = s.Append(ctx, k, Message{From: "x!y@z", Command: "PRIVMSG", Text: "after", Sender: "x"})
		count(err)
		_, err = s.Silences(ctx, k)
		count(err)
		_, err = s.AddSilence(ctx, k, "new!*@*")
		count(err)
		_, err = s.RemoveSilence(ctx, k, "spam!*@*")
		count(err)
	}
	_, err := s.AllSilences()
	count(err)
	_, err = s.LastSeen()
	count(err)
	count(s.SetLastSeen(seenAt(map[string]time.Time{"user1": time.Now()})))
	s.SetMailboxLimit(5)
	s.SetMailboxPerSender(5)
	_ = s.CorruptRecords()
	return errs
}

var fixtureKeys = []string{"bob", "carol", "nobody", "user1"}

// The file shrinking under a running store (its pages gone from the
// mmap, so reading them faults with SIGBUS) fails calls, not the process.
func TestFaultsBecomeErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	fillStore(t, path)
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pending(ctx, "bob"); err == nil {
		t.Fatal("Pending read a truncated file without error")
	}
	if errs := callEverything(t, s, fixtureKeys); errs == 0 {
		t.Fatal("no call failed on a truncated file")
	}
	if s.CorruptRecords() == 0 {
		t.Fatal("faults not counted")
	}
}

// zeroPagesWith zeroes, in the file at path, every page that holds needle.
func zeroPagesWith(t *testing.T, path string, pageSize int, needle string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pages []int
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(needle))
		if i < 0 {
			break
		}
		pg := (off + i) / pageSize
		pages = append(pages, pg)
		if _, err := f.WriteAt(make([]byte, pageSize), int64(pg*pageSize)); err != nil {
			t.Fatal(err)
		}
		off = (pg + 1) * pageSize
	}
	if len(pages) == 0 {
		t.Fatalf("%q not found in %s", needle, path)
	}
	return pages
}

// A leaf page of a mailbox zeroed while the server runs: Pending still
// returns every message on the other pages, those after the damage
// included, and counts what it lost; nothing else is affected.
func TestPendingReadsPastBrokenLeaf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f := fillStore(t, path)
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	zeroPagesWith(t, path, os.Getpagesize(), bobText(200))

	msgs, err := s.Pending(ctx, "bob")
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	got := make(map[uint64]bool)
	for i, m := range msgs {
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Fatalf("out of order: %d after %d", m.ID, msgs[i-1].ID)
		}
		got[m.ID] = true
	}
	lost := len(f.bob) - len(msgs)
	if got[f.bob[200].ID] || !got[f.bob[0].ID] || !got[f.bob[len(f.bob)-1].ID] || lost <= 0 || lost > 100 {
		t.Fatalf("Pending returned %d of %d; want all but the zeroed page's, first and last included", len(msgs), len(f.bob))
	}
	if n := s.CorruptRecords(); n != uint64(lost)+1 {
		t.Fatalf("CorruptRecords = %d, want the damaged page and the %d records lost", n, lost)
	}
	if c := mustPending(t, s, "carol"); len(c) != len(f.carol) {
		t.Fatalf("carol's mailbox affected: %d messages", len(c))
	}
	callEverything(t, s, fixtureKeys)
}
