package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lobbychat/ircd/state"
	bolt "go.etcd.io/bbolt"
)

func appendFrom(s *Store, to, sender string) (Message, error) {
	return s.Append(ctx, to, Message{From: sender + "!u@h", Command: "PRIVMSG", Text: "hi", Sender: sender})
}

func wantShareFull(t *testing.T, s *Store, to, sender string) {
	t.Helper()
	_, err := appendFrom(s, to, sender)
	if !errors.Is(err, state.ErrSenderShareFull) || errors.Is(err, state.ErrMailboxFull) {
		t.Fatalf("Append from %s to %s: err = %v, want state.ErrSenderShareFull only", sender, to, err)
	}
}

func mustAppendFrom(t *testing.T, s *Store, to, sender string) Message {
	t.Helper()
	m, err := appendFrom(s, to, sender)
	if err != nil {
		t.Fatalf("Append from %s to %s: %v", sender, to, err)
	}
	return m
}

// One sender gets a share of a mailbox; others, and messages without a
// Sender, still get in. Ack gives the share back; the limit is reloadable.
func TestSenderShare(t *testing.T) {
	s := newTestStore(t, Options{MailboxLimit: 8, MailboxPerSender: 2})
	first := mustAppendFrom(t, s, "bob", "alice")
	mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")
	mustAppendFrom(t, s, "carol", "alice") // another mailbox, another share
	mustAppendFrom(t, s, "bob", "carol")
	mustAppendFrom(t, s, "bob", "carol")
	wantShareFull(t, s, "bob", "carol")
	for range 3 {
		mustAppend(t, s, "bob", Message{From: "server", Text: "no sender"})
	}
	if n, _ := s.PendingCount("bob"); n != 7 {
		t.Fatalf("PendingCount = %d, want 7", n)
	}

	if err := s.Ack(ctx, "bob", first.ID); err != nil {
		t.Fatal(err)
	}
	mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")

	s.SetMailboxPerSender(3)
	mustAppendFrom(t, s, "bob", "alice") // mailbox now holds 8
	// The mailbox limit still applies to a sender within their share.
	if _, err := appendFrom(s, "bob", "dave"); !errors.Is(err, state.ErrMailboxFull) {
		t.Fatalf("Append to a full mailbox: err = %v, want state.ErrMailboxFull", err)
	}
	s.SetMailboxLimit(0)
	s.SetMailboxPerSender(0)
	for range 5 {
		mustAppendFrom(t, s, "bob", "alice")
	}
	s.SetMailboxPerSender(3)
	wantShareFull(t, s, "bob", "alice")
}

// Counts are stored with the messages: a restart keeps them, and Ack after
// the restart still gives shares back.
func TestSenderShareSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{NoSync: true, MailboxPerSender: 2})
	if err != nil {
		t.Fatal(err)
	}
	mustAppendFrom(t, s, "bob", "alice")
	last := mustAppendFrom(t, s, "bob", "alice")
	s.Close()

	s = openTest(t, path, Options{NoSync: true, MailboxPerSender: 2})
	wantShareFull(t, s, "bob", "alice")
	msgs := mustPending(t, s, "bob")
	if len(msgs) != 2 || msgs[0].Sender != "alice" {
		t.Fatalf("Pending = %+v", msgs)
	}
	if err := s.Ack(ctx, "bob", last.ID); err != nil {
		t.Fatal(err)
	}
	mustAppendFrom(t, s, "bob", "alice")
	mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")
}

// encodeMessageV1 is the record format before Sender existed.
func encodeMessageV1(m Message) []byte {
	buf := []byte{msgVersion1}
	for _, s := range []string{m.From, m.Command, m.Text} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendVarint(buf, m.Time.Unix())
	return binary.AppendUvarint(buf, uint64(m.Time.Nanosecond()))
}

// writeLegacyDB writes a database as the code before per-sender counts
// did: mail, silence and lastseen buckets, version 1 records, no counts.
func writeLegacyDB(t *testing.T, path string, mail map[string][]Message) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMail, bucketSilence, bucketLastSeen} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		for to, msgs := range mail {
			b, err := tx.Bucket(bucketMail).CreateBucket([]byte(to))
			if err != nil {
				return err
			}
			for _, m := range msgs {
				id, _ := b.NextSequence()
				if err := b.Put(idKey(id), encodeMessageV1(m)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A database written by the old code has no counts: they are rebuilt from
// each record's From (its nick, folded, is the account) on first use.
func TestSenderShareLegacyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	when := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	writeLegacyDB(t, path, map[string][]Message{
		"bob": {
			{From: "Alice!alice@10.0.0.1", Command: "PRIVMSG", Text: "one", Time: when},
			{From: "carol!carol@10.0.0.2", Command: "NOTICE", Text: "two", Time: when},
			{From: "ALICE!alice@10.0.0.1", Command: "PRIVMSG", Text: "three", Time: when},
			{From: "alice!alice@10.0.0.1", Command: "PRIVMSG", Text: "four", Time: when},
		},
	})
	s := openTest(t, path, Options{NoSync: true, MailboxPerSender: 3})
	msgs := mustPending(t, s, "bob")
	if len(msgs) != 4 || msgs[0].Text != "one" || msgs[0].Sender != "alice" || msgs[1].Sender != "carol" ||
		!msgs[3].Time.Equal(when) || msgs[3].ID != 4 {
		t.Fatalf("legacy Pending = %+v", msgs)
	}
	wantShareFull(t, s, "bob", "alice")
	mustAppendFrom(t, s, "bob", "carol")
	mustAppendFrom(t, s, "bob", "carol")
	wantShareFull(t, s, "bob", "carol")

	// Acking legacy records gives their senders' shares back.
	if err := s.Ack(ctx, "bob", msgs[2].ID); err != nil {
		t.Fatal(err)
	}
	mustAppendFrom(t, s, "bob", "alice")
	mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")
	mustAppendFrom(t, s, "bob", "carol")
	wantShareFull(t, s, "bob", "carol")
}

// Concurrent Appends from one sender, batched into shared transactions,
// store exactly the share.
func TestSenderShareConcurrent(t *testing.T) {
	const share = 25
	s := newTestStore(t, Options{MailboxPerSender: share})
	var wg sync.WaitGroup
	var ok, full atomic.Int64
	for range 100 {
		wg.Go(func() {
			_, err := appendFrom(s, "bob", "alice")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, state.ErrSenderShareFull):
				full.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Go(func() { mustAppendFrom(t, s, "bob", "carol") })
	wg.Wait()
	if ok.Load() != share || full.Load() != 100-share {
		t.Fatalf("ok=%d full=%d, want %d and %d", ok.Load(), full.Load(), share, 100-share)
	}
	if n, _ := s.PendingCount("bob"); n != share+1 {
		t.Fatalf("PendingCount = %d, want %d", n, share+1)
	}
}

// Acking a record whose sender cannot be read makes the counts
// untrustworthy; they are rebuilt from what is left, not left drifting.
func TestSenderCountsRebuiltAfterUndecodableAck(t *testing.T) {
	s := newTestStore(t, Options{MailboxPerSender: 2})
	mustAppendFrom(t, s, "bob", "alice")
	putRaw(t, s, "bob", idKey(2), []byte{msgVersion, 0xff})
	third := mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")
	if err := s.Ack(ctx, "bob", 2); err != nil {
		t.Fatal(err)
	}
	mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")
	if err := s.Ack(ctx, "bob", third.ID); err != nil {
		t.Fatal(err)
	}
	mustAppendFrom(t, s, "bob", "alice")
	wantShareFull(t, s, "bob", "alice")
}

// The per-sender count adds one bucket lookup and one Put to an Append.
func BenchmarkAppendParallelSender(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "bench.db"), Options{MailboxPerSender: 1 << 30})
	b.SetParallelism(32)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := next.Add(1)
		to, from := fmt.Sprintf("user%d", n%16), fmt.Sprintf("sender%d", n%7)
		m := Message{From: from + "!u@h", Command: "PRIVMSG", Text: "hello there", Time: time.Now(), Sender: from}
		for pb.Next() {
			if _, err := s.Append(ctx, to, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
