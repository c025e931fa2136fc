package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lobbychat/ircd/state"
	bolt "go.etcd.io/bbolt"
)

func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	opts.NoSync = true
	return openTest(t, filepath.Join(t.TempDir(), "state.db"), opts)
}

func mustAppend(t *testing.T, s *Store, to string, m Message) Message {
	t.Helper()
	got, err := s.Append(ctx, to, m)
	if err != nil {
		t.Fatalf("Append(%q): %v", to, err)
	}
	return got
}

func mustPending(t *testing.T, s *Store, to string) []Message {
	t.Helper()
	msgs, err := s.Pending(ctx, to)
	if err != nil {
		t.Fatalf("Pending(%q): %v", to, err)
	}
	return msgs
}

func sameMessage(a, b Message) bool {
	return a.ID == b.ID && a.From == b.From && a.Command == b.Command &&
		a.Text == b.Text && a.Time.Equal(b.Time)
}

func TestAppendPendingAck(t *testing.T) {
	s := newTestStore(t, Options{})
	base := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	in := []Message{
		{From: "Alice", Command: "PRIVMSG", Text: "hello", Time: base},
		{From: "Bob", Command: "NOTICE", Text: "", Time: base.Add(time.Second)},
		{From: "Carol", Command: "PRIVMSG", Text: "ünïcode \x01ACTION waves\x01", Time: base.Add(2 * time.Second)},
	}
	var appended []Message
	for _, m := range in {
		appended = append(appended, mustAppend(t, s, "dave", m))
	}
	mustAppend(t, s, "erin", Message{From: "x", Command: "PRIVMSG", Text: "other box"})

	got := mustPending(t, s, "dave")
	if len(got) != len(in) {
		t.Fatalf("Pending returned %d messages, want %d", len(got), len(in))
	}
	for i, m := range got {
		if i > 0 && m.ID <= got[i-1].ID {
			t.Errorf("IDs not increasing: %d after %d", m.ID, got[i-1].ID)
		}
		if !sameMessage(m, appended[i]) {
			t.Errorf("message %d = %+v, want %+v", i, m, appended[i])
		}
		want := in[i]
		want.ID = m.ID
		if !sameMessage(m, want) {
			t.Errorf("message %d = %+v, want %+v", i, m, want)
		}
		if m.Time.Location() != time.UTC {
			t.Errorf("message %d time not UTC: %v", i, m.Time)
		}
	}
	if n, err := s.PendingCount("dave"); err != nil || n != 3 {
		t.Errorf("PendingCount = %d, %v; want 3", n, err)
	}

	if err := s.Ack(ctx, "dave", got[1].ID); err != nil {
		t.Fatal(err)
	}
	left := mustPending(t, s, "dave")
	if len(left) != 1 || !sameMessage(left[0], got[2]) {
		t.Fatalf("after Ack(%d) pending = %+v, want only %+v", got[1].ID, left, got[2])
	}

	// A message arriving between replay and Ack must survive the Ack.
	snapshot := mustPending(t, s, "dave")
	late := mustAppend(t, s, "dave", Message{From: "Frank", Command: "PRIVMSG", Text: "late"})
	if err := s.Ack(ctx, "dave", snapshot[len(snapshot)-1].ID); err != nil {
		t.Fatal(err)
	}
	left = mustPending(t, s, "dave")
	if len(left) != 1 || !sameMessage(left[0], late) {
		t.Fatalf("after snapshot Ack pending = %+v, want only %+v", left, late)
	}

	// Emptying the mailbox must not let IDs restart, or a stale Ack
	// could delete new messages.
	if err := s.Ack(ctx, "dave", late.ID); err != nil {
		t.Fatal(err)
	}
	next := mustAppend(t, s, "dave", Message{Text: "after empty"})
	if next.ID <= late.ID {
		t.Errorf("ID after emptying = %d, want > %d", next.ID, late.ID)
	}
	if n, err := s.PendingCount("dave"); err != nil || n != 1 {
		t.Errorf("PendingCount = %d, %v; want 1", n, err)
	}
	if n, _ := s.PendingCount("erin"); n != 1 {
		t.Errorf("other mailbox affected: count %d", n)
	}
	if msgs := mustPending(t, s, "nobody"); len(msgs) != 0 {
		t.Errorf("unknown mailbox pending = %+v", msgs)
	}
	if err := s.Ack(ctx, "nobody", 10); err != nil {
		t.Errorf("Ack on unknown mailbox: %v", err)
	}
}

func TestMailboxLimit(t *testing.T) {
	s := newTestStore(t, Options{MailboxLimit: 2})
	a := mustAppend(t, s, "bob", Message{Text: "1"})
	mustAppend(t, s, "bob", Message{Text: "2"})
	if _, err := s.Append(ctx, "bob", Message{Text: "3"}); !errors.Is(err, state.ErrMailboxFull) {
		t.Fatalf("third Append err = %v, want state.ErrMailboxFull", err)
	}
	if msgs := mustPending(t, s, "bob"); len(msgs) != 2 || msgs[1].Text != "2" {
		t.Fatalf("pending after full = %+v", msgs)
	}
	mustAppend(t, s, "carol", Message{Text: "other mailbox has its own limit"})

	if err := s.Ack(ctx, "bob", a.ID); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "bob", Message{Text: "3"})
	if _, err := s.Append(ctx, "bob", Message{Text: "4"}); !errors.Is(err, state.ErrMailboxFull) {
		t.Fatalf("Append after refill err = %v, want state.ErrMailboxFull", err)
	}

	s.SetMailboxLimit(3)
	mustAppend(t, s, "bob", Message{Text: "4"})
	if _, err := s.Append(ctx, "bob", Message{Text: "5"}); !errors.Is(err, state.ErrMailboxFull) {
		t.Fatalf("Append over new limit err = %v, want state.ErrMailboxFull", err)
	}
	s.SetMailboxLimit(0)
	mustAppend(t, s, "bob", Message{Text: "5"})

	var texts []string
	for _, m := range mustPending(t, s, "bob") {
		texts = append(texts, m.Text)
	}
	if want := []string{"2", "3", "4", "5"}; !slices.Equal(texts, want) {
		t.Fatalf("pending texts = %q, want %q", texts, want)
	}
	if n, err := s.PendingCount("bob"); err != nil || n != 4 {
		t.Errorf("PendingCount = %d, %v; want 4", n, err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	const goroutines, perG = 50, 20
	s := newTestStore(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				m := Message{From: strconv.Itoa(g), Command: "PRIVMSG", Text: strconv.Itoa(i)}
				if _, err := s.Append(ctx, "hot", m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	msgs, err := s.Pending(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != goroutines*perG {
		t.Fatalf("stored %d messages, want %d", len(msgs), goroutines*perG)
	}
	seen := make(map[uint64]bool)
	next := make(map[string]int)
	for _, m := range msgs {
		if seen[m.ID] {
			t.Fatalf("duplicate ID %d", m.ID)
		}
		seen[m.ID] = true
		if want := strconv.Itoa(next[m.From]); m.Text != want {
			t.Fatalf("goroutine %s: got message %s, want %s", m.From, m.Text, want)
		}
		next[m.From]++
	}
	if n, err := s.PendingCount("hot"); err != nil || n != goroutines*perG {
		t.Errorf("PendingCount = %d, %v", n, err)
	}
}

func TestConcurrentAppendLimit(t *testing.T) {
	const limit = 25
	s := newTestStore(t, Options{MailboxLimit: limit})
	var wg sync.WaitGroup
	var ok, full atomic.Int64
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Append(ctx, "bob", Message{Text: "x"})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, state.ErrMailboxFull):
				full.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != limit || full.Load() != 100-limit {
		t.Fatalf("ok=%d full=%d, want %d and %d", ok.Load(), full.Load(), limit, 100-limit)
	}
	if msgs := mustPending(t, s, "bob"); len(msgs) != limit {
		t.Fatalf("stored %d, want %d", len(msgs), limit)
	}
}

func TestSilence(t *testing.T) {
	s := newTestStore(t, Options{})
	add := func(account, mask string, want bool) {
		t.Helper()
		added, err := s.AddSilence(ctx, account, mask)
		if err != nil || added != want {
			t.Fatalf("AddSilence(%q, %q) = %v, %v; want %v", account, mask, added, err, want)
		}
	}
	remove := func(account, mask string, want bool) {
		t.Helper()
		removed, err := s.RemoveSilence(ctx, account, mask)
		if err != nil || removed != want {
			t.Fatalf("RemoveSilence(%q, %q) = %v, %v; want %v", account, mask, removed, err, want)
		}
	}
	list := func(account string, want ...string) {
		t.Helper()
		got, err := s.Silences(ctx, account)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Silences(%q) = %q, %v; want %q", account, got, err, want)
		}
	}

	// Inserted out of byte order to show insertion order is kept.
	add("alice", "z!*@*", true)
	add("alice", "a!*@*", true)
	add("alice", "m!*@host", true)
	add("alice", "a!*@*", false)
	add("bob", "a!*@*", true)
	list("alice", "z!*@*", "a!*@*", "m!*@host")
	list("bob", "a!*@*")
	list("carol")

	remove("alice", "a!*@*", true)
	remove("alice", "a!*@*", false)
	remove("alice", "never", false)
	remove("carol", "never", false)
	list("alice", "z!*@*", "m!*@host")
	list("bob", "a!*@*")

	add("alice", "a!*@*", true) // re-added goes to the end
	list("alice", "z!*@*", "m!*@host", "a!*@*")

	remove("bob", "a!*@*", true)
	list("bob")
	add("bob", "b!*@*", true)
	add("bob", "c!*@*", true)
	list("bob", "b!*@*", "c!*@*")

	all, err := s.AllSilences()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !slices.Equal(all["alice"], []string{"z!*@*", "m!*@host", "a!*@*"}) ||
		!slices.Equal(all["bob"], []string{"b!*@*", "c!*@*"}) {
		t.Fatalf("AllSilences = %q", all)
	}
}

func TestLastSeen(t *testing.T) {
	s := newTestStore(t, Options{})
	base := time.Date(2025, 1, 2, 3, 4, 5, 6, time.Local)
	want := make(map[string]state.Seen)
	for i := range 500 {
		nick := fmt.Sprintf("User%d", i)
		want[strings.ToLower(nick)] = state.Seen{Nick: nick, User: "u", Host: "10.0.0.1", Realname: "R " + nick, At: base.Add(time.Duration(i) * time.Minute)}
	}
	if err := s.SetLastSeen(want); err != nil {
		t.Fatal(err)
	}
	update := map[string]state.Seen{"user7": {At: base.Add(time.Hour * 1000)}} // a record with only its time
	if err := s.SetLastSeen(update); err != nil {
		t.Fatal(err)
	}
	want["user7"] = update["user7"]
	if err := s.SetLastSeen(nil); err != nil {
		t.Fatal(err)
	}

	got, err := s.LastSeen()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || !g.At.Equal(w.At) || g.Nick != w.Nick || g.User != w.User || g.Host != w.Host || g.Realname != w.Realname {
			t.Errorf("LastSeen[%q] = %+v, want %+v", k, g, w)
		}
	}
}

// Last-seen records written before the user's details were kept (8
// bytes, the time alone) still read.
func TestLastSeenOldFormat(t *testing.T) {
	sn, err := decodeSeen(binary.BigEndian.AppendUint64(nil, uint64(time.Unix(100, 0).UnixNano())))
	if err != nil || !sn.At.Equal(time.Unix(100, 0)) || sn.Nick != "" {
		t.Fatalf("decodeSeen = %+v, %v", sn, err)
	}
	for _, bad := range [][]byte{{1, 2, 3}, append(make([]byte, 8), 200)} {
		if _, err := decodeSeen(bad); err == nil {
			t.Errorf("decodeSeen(%v) accepted", bad)
		}
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
	m1, err := s.Append(ctx, "bob", Message{From: "Alice", Command: "PRIVMSG", Text: "one", Time: when})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSilence(ctx, "bob", "spam!*@*"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastSeen(seenAt(map[string]time.Time{"bob": when})); err != nil {
		t.Fatal(err)
	}

	// A second Open must fail promptly while the lock is held.
	start := time.Now()
	if s2, err := Open(path, Options{}); err == nil {
		s2.Close()
		t.Fatal("second Open of a locked database succeeded")
	} else if !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open error = %v, want a lock error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Open took %v", d)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	msgs, err := s.Pending(ctx, "bob")
	if err != nil || len(msgs) != 1 || !sameMessage(msgs[0], m1) {
		t.Fatalf("Pending after reopen = %+v, %v; want [%+v]", msgs, err, m1)
	}
	m2, err := s.Append(ctx, "bob", Message{Text: "two"})
	if err != nil || m2.ID <= m1.ID {
		t.Fatalf("Append after reopen = %+v, %v; want ID > %d", m2, err, m1.ID)
	}
	if sil, err := s.Silences(ctx, "bob"); err != nil || !slices.Equal(sil, []string{"spam!*@*"}) {
		t.Fatalf("Silences after reopen = %q, %v", sil, err)
	}
	seen, err := s.LastSeen()
	if err != nil || !seen["bob"].At.Equal(when) {
		t.Fatalf("LastSeen after reopen = %v, %v", seen, err)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "c", "state.db")
	s := openTest(t, path, Options{NoSync: true})
	if _, err := s.AddSilence(ctx, "x", "y"); err != nil {
		t.Fatal(err)
	}
}

// putRaw writes a value straight into a recipient's mailbox, bypassing
// encoding, to simulate on-disk damage.
func putRaw(t *testing.T, s *Store, to string, key, val []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketMail).CreateBucketIfNotExists([]byte(to))
		if err != nil {
			return err
		}
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		return b.Put(key, val)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Undecodable records are skipped and counted, never an error that would
// keep the rest of the mailbox from being delivered.
func TestCorruptMessage(t *testing.T) {
	s := newTestStore(t, Options{})
	good := encodeMessage(Message{From: "a", Command: "PRIVMSG", Text: "hello", Time: time.Unix(1e9, 123456789)})
	// Zero nanoseconds encode as a single final byte, which is replaced below.
	zeroNsec := encodeMessage(Message{Time: time.Unix(5, 0)})
	badNsec := binary.AppendUvarint(slices.Clone(zeroNsec[:len(zeroNsec)-1]), uint64(time.Second))
	cases := map[string][]byte{
		"empty":        {},
		"bad version":  {99, 0, 0, 0, 0, 0},
		"huge length":  {msgVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"overlong":     {msgVersion, 10, 'a'},
		"bad varint":   {msgVersion, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
		"truncated":    good[:len(good)-1],
		"trailing":     append(slices.Clone(good), 0),
		"bad nanosecs": badNsec,
	}
	for name, val := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeMessage(val); !errors.Is(err, errCorrupt) {
				t.Fatalf("decode err = %v, want errCorrupt", err)
			}
			to := "victim-" + name
			putRaw(t, s, to, idKey(1), val)
			putRaw(t, s, to, idKey(2), good)
			before := s.CorruptRecords()
			msgs, err := s.Pending(ctx, to)
			if err != nil || len(msgs) != 1 || msgs[0].ID != 2 || msgs[0].Text != "hello" {
				t.Fatalf("Pending = %+v, %v; want only the good record", msgs, err)
			}
			if s.CorruptRecords() != before+1 {
				t.Fatalf("CorruptRecords went %d -> %d, want +1", before, s.CorruptRecords())
			}
		})
	}

	// A 9-byte key sorts between IDs 1 and 3.
	putRaw(t, s, "badkey", idKey(1), good)
	putRaw(t, s, "badkey", append(idKey(1), 0), good)
	putRaw(t, s, "badkey", idKey(3), good)
	if msgs, err := s.Pending(ctx, "badkey"); err != nil || len(msgs) != 2 || msgs[0].ID != 1 || msgs[1].ID != 3 {
		t.Errorf("Pending with bad key = %+v, %v; want the records with good keys", msgs, err)
	}
	if err := s.Ack(ctx, "badkey", 3); err != nil {
		t.Errorf("Ack past a bad key: %v", err)
	}
	if n, err := s.PendingCount("badkey"); err != nil || n != 0 {
		t.Errorf("PendingCount after Ack past a bad key = %d, %v", n, err)
	}

	// A sanity check that the helper itself writes decodable data.
	putRaw(t, s, "fine", idKey(1), good)
	if msgs, err := s.Pending(ctx, "fine"); err != nil || len(msgs) != 1 || msgs[0].Text != "hello" {
		t.Fatalf("Pending of valid raw record = %+v, %v", msgs, err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(Message{From: "a", Command: "NOTICE", Text: "hi", Time: time.Unix(1, 2)}))
	f.Add([]byte{msgVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Only absence of panics is checked: varints accept non-minimal
		// encodings, so decode-then-encode need not round-trip bytes.
		m, err := decodeMessage(b)
		if err == nil {
			if _, err := decodeMessage(encodeMessage(m)); err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", m, err)
			}
		}
	})
}

func BenchmarkAppendParallel(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "bench.db"), Options{})
	// Appends are I/O bound, so run more goroutines than CPUs to give
	// group commit something to group.
	b.SetParallelism(32)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		to := fmt.Sprintf("user%d", next.Add(1)%16)
		m := Message{From: "bench", Command: "PRIVMSG", Text: "hello there", Time: time.Now()}
		for pb.Next() {
			if _, err := s.Append(ctx, to, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Silence lists are served from memory once read, and a change is seen
// at once: the cache holds what was committed.
func TestSilencesCachedAndCurrent(t *testing.T) {
	s := newTestStore(t, Options{})
	for i, m := range []string{"a!*@*", "b!*@*"} {
		if _, err := s.AddSilence(ctx, "bob", m); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Silences(ctx, "bob"); len(got) != i+1 {
			t.Fatalf("after adding %s: %q", m, got)
		}
	}
	got, _ := s.Silences(ctx, "bob")
	got[0] = "changed by the caller"
	if again, _ := s.Silences(ctx, "bob"); again[0] != "a!*@*" {
		t.Fatalf("the cache was changed through a returned list: %q", again)
	}
	if _, err := s.RemoveSilence(ctx, "bob", "a!*@*"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Silences(ctx, "bob"); strings.Join(got, " ") != "b!*@*" {
		t.Fatalf("after removing: %q", got)
	}
	s.RemoveSilence(ctx, "bob", "b!*@*")
	if got, _ := s.Silences(ctx, "bob"); len(got) != 0 {
		t.Fatalf("after removing all: %q", got)
	}
}
