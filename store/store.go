// Package store keeps a chat server's durable state in a single bbolt file:
// offline message mailboxes, per-account silence lists and last-seen times.
//
// Keys (recipients, accounts, masks) are opaque byte strings; callers are
// expected to case-fold them before calling in.
package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrMailboxFull is returned by Append when the recipient's mailbox already
// holds the configured maximum number of messages.
var ErrMailboxFull = errors.New("store: mailbox full")

// ErrSenderShareFull is returned by Append when the message's Sender already
// has MailboxPerSender messages waiting in the recipient's mailbox, so that
// one sender cannot fill a mailbox and shut everyone else out of it.
var ErrSenderShareFull = errors.New("store: sender's share of the mailbox is full")

// errCorrupt marks values that could not be decoded, so callers can tell
// damaged data apart from I/O failures with errors.Is.
var errCorrupt = errors.New("store: corrupt record")

var (
	bucketMail     = []byte("mail")
	bucketSilence  = []byte("silence")
	bucketLastSeen = []byte("lastseen")
	// bucketSenders holds, per recipient, a bucket of sender -> number of
	// that sender's messages in the mailbox. A recipient without one (a
	// database written before senders were counted) gets it rebuilt from
	// the mailbox on first use, so its absence is never wrong.
	bucketSenders = []byte("senders")
)

// batchDelay is how long an Append waits for others to share its commit.
// bbolt's 10ms default dominates on disks whose fsync takes well under a
// millisecond; under load, batches also form while a previous commit holds
// the write lock, so a short delay still groups well.
const batchDelay = 2 * time.Millisecond

// Message is one stored offline message.
type Message struct {
	ID      uint64 // assigned by Append; increasing per mailbox
	From    string // sender's display name
	Command string // e.g. "PRIVMSG" or "NOTICE"; opaque to the store
	Text    string
	Time    time.Time // original send time, stored as UTC
	// Sender is the sending account, case-folded, whose share of the
	// mailbox the message counts against; "" counts against no share.
	// Records stored before this field existed read back with the nick
	// of From, folded, which is what the server used as the account.
	Sender string
}

// Options configure Open.
type Options struct {
	MailboxLimit     int  // max pending messages per recipient; 0 = no limit
	MailboxPerSender int  // max pending messages from one Sender per recipient; 0 = no limit
	NoSync           bool // skip fsync; tests and benchmarks only
}

// Store is safe for concurrent use by multiple goroutines.
type Store struct {
	db           *bolt.DB
	mailboxLimit atomic.Int64
	perSender    atomic.Int64
}

// Open opens or creates the database at path, creating missing parent
// directories.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, wrap("open", err)
	}
	// Without a timeout bbolt blocks forever on the file lock held by
	// another process, which looks like a hung server at startup.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: opts.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: database is locked by another process", path)
	}
	if err != nil {
		return nil, wrap("open", err)
	}
	err = wrap("create buckets", db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMail, bucketSilence, bucketLastSeen, bucketSenders} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}))
	if err != nil {
		db.Close()
		return nil, err
	}
	db.MaxBatchDelay = batchDelay
	s := &Store{db: db}
	s.SetMailboxLimit(opts.MailboxLimit)
	s.SetMailboxPerSender(opts.MailboxPerSender)
	return s, nil
}

// view and update label errors with the operation so logs say which
// store call failed.
func (s *Store) view(op string, fn func(*bolt.Tx) error) error {
	return wrap(op, s.db.View(fn))
}

func (s *Store) update(op string, fn func(*bolt.Tx) error) error {
	return wrap(op, s.db.Update(fn))
}

func wrap(op string, err error) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

// Close releases the database file and its lock.
func (s *Store) Close() error {
	return s.db.Close()
}

// SetMailboxLimit changes the per-recipient limit (0 = none) for later
// Appends; mailboxes already above it keep their messages.
func (s *Store) SetMailboxLimit(n int) {
	s.mailboxLimit.Store(int64(max(n, 0)))
}

// SetMailboxPerSender changes how many messages one sender may have
// waiting in a recipient's mailbox (0 = no limit) for later Appends.
func (s *Store) SetMailboxPerSender(n int) {
	s.perSender.Store(int64(max(n, 0)))
}

// Append durably stores m in to's mailbox and returns it with its ID set.
// It refuses with ErrSenderShareFull when m.Sender already has its share of
// the mailbox waiting, and with ErrMailboxFull when the mailbox is full.
func (s *Store) Append(to string, m Message) (Message, error) {
	if to == "" {
		return Message{}, errors.New("store: empty recipient")
	}
	m.Time = m.Time.UTC()
	val := encodeMessage(m)
	limit := s.mailboxLimit.Load()
	share := s.perSender.Load()

	var id uint64
	var full, shareFull bool
	// Batch shares one fsync'd commit among concurrent Appends. It may run
	// this function more than once (if another call in the batch fails), so
	// all outputs are reset and the ID is taken inside the transaction.
	// A full mailbox is reported through a variable rather than an error:
	// an error would make bbolt roll back and re-run the whole batch.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		id, full, shareFull = 0, false, false
		b, err := tx.Bucket(bucketMail).CreateBucketIfNotExists([]byte(to))
		if err != nil {
			return err
		}
		// Counts are kept even with no per-sender limit, so that turning
		// one on by a reload finds them right.
		var counts *bolt.Bucket
		var have uint64
		if m.Sender != "" {
			if counts, err = senderCounts(tx, to, b); err != nil {
				return err
			}
			have = getCount(counts, m.Sender)
			if share > 0 && have >= uint64(share) {
				shareFull = true
				return nil
			}
		}
		if limit > 0 {
			n, err := mailboxCount(b)
			if err != nil {
				return err
			}
			if n >= uint64(limit) {
				full = true
				return nil
			}
		}
		if id, err = b.NextSequence(); err != nil {
			return err
		}
		if err := b.Put(idKey(id), val); err != nil {
			return err
		}
		if counts != nil {
			return putCount(counts, m.Sender, have+1)
		}
		return nil
	})
	if err != nil {
		return Message{}, wrap("append "+strconv.Quote(to), err)
	}
	if shareFull {
		return Message{}, ErrSenderShareFull
	}
	if full {
		return Message{}, ErrMailboxFull
	}
	m.ID = id
	return m, nil
}

// senderCounts returns to's per-sender counts, building them from the
// mailbox mb when they are missing: the mailbox was written before senders
// were counted, or an Ack found the counts could no longer be trusted.
// That scan happens once per mailbox; afterwards each Append and Ack
// updates one count.
func senderCounts(tx *bolt.Tx, to string, mb *bolt.Bucket) (*bolt.Bucket, error) {
	parent := tx.Bucket(bucketSenders)
	if b := parent.Bucket([]byte(to)); b != nil {
		return b, nil
	}
	counts := make(map[string]uint64)
	err := mb.ForEach(func(k, v []byte) error {
		// Undecodable records belong to no sender; Pending reports them.
		if m, err := decodeMessage(v); err == nil && v != nil && m.Sender != "" {
			counts[m.Sender]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b, err := parent.CreateBucket([]byte(to))
	if err != nil {
		return nil, err
	}
	for sender, n := range counts {
		if err := putCount(b, sender, n); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func getCount(b *bolt.Bucket, sender string) uint64 {
	v := b.Get([]byte(sender))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// putCount deletes zero counts so that the bucket holds only senders with
// messages waiting.
func putCount(b *bolt.Bucket, sender string, n uint64) error {
	if n == 0 {
		return b.Delete([]byte(sender))
	}
	return b.Put([]byte(sender), idKey(n))
}

// Pending returns to's stored messages, oldest first.
func (s *Store) Pending(to string) ([]Message, error) {
	var msgs []Message
	err := s.view("pending "+strconv.Quote(to), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMail).Bucket([]byte(to))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			id, err := parseID(k)
			if err != nil {
				return err
			}
			m, err := decodeMessage(v)
			if err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
			m.ID = id
			msgs = append(msgs, m)
			return nil
		})
	})
	return msgs, err
}

// Ack deletes to's messages with ID <= upTo. Messages appended after the
// caller's Pending snapshot have larger IDs and therefore survive.
//
// Empty mailboxes are kept rather than deleted: deleting one would reset
// its ID sequence, and a late or repeated Ack could then delete new
// messages that reused old IDs.
func (s *Store) Ack(to string, upTo uint64) error {
	return s.update("ack "+strconv.Quote(to), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMail).Bucket([]byte(to))
		if b == nil {
			return nil
		}
		// Counts are only adjusted if they exist; missing ones are built
		// from what is left when next needed.
		countsParent := tx.Bucket(bucketSenders)
		counts := countsParent.Bucket([]byte(to))
		stale := false
		c := b.Cursor()
		// Re-seek after each Delete: advancing a bbolt cursor with Next
		// after Delete can skip entries.
		for k, v := c.First(); k != nil; k, v = c.First() {
			id, err := parseID(k)
			if err != nil {
				return err
			}
			if id > upTo {
				break
			}
			if counts != nil && !stale {
				m, err := decodeMessage(v)
				switch {
				case err != nil:
					stale = true // whose share it was is unknown
				case m.Sender != "":
					n := getCount(counts, m.Sender)
					if n == 0 {
						stale = true
						break
					}
					if err := putCount(counts, m.Sender, n-1); err != nil {
						return err
					}
				}
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		if stale {
			return countsParent.DeleteBucket([]byte(to))
		}
		return nil
	})
}

// PendingCount returns how many messages to's mailbox holds.
func (s *Store) PendingCount(to string) (int, error) {
	var n uint64
	err := s.view("pending count "+strconv.Quote(to), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMail).Bucket([]byte(to))
		if b == nil {
			return nil
		}
		var err error
		n, err = mailboxCount(b)
		return err
	})
	return int(n), err
}

// mailboxCount relies on the mailbox always holding a contiguous ID range
// ending at the bucket sequence: IDs come from NextSequence in committed
// transactions and Ack only ever removes a prefix. That makes counting
// O(log n) with no separate counter that could drift.
func mailboxCount(b *bolt.Bucket) (uint64, error) {
	k, _ := b.Cursor().First()
	if k == nil {
		return 0, nil
	}
	first, err := parseID(k)
	if err != nil {
		return 0, err
	}
	last := b.Sequence()
	if first == 0 || first > last {
		return 0, fmt.Errorf("%w: message id %d outside sequence %d", errCorrupt, first, last)
	}
	return last - first + 1, nil
}

// AddSilence adds mask to account's silence list; added is false if it was
// already there.
func (s *Store) AddSilence(account, mask string) (added bool, err error) {
	err = s.update("add silence", func(tx *bolt.Tx) error {
		added = false
		b, err := tx.Bucket(bucketSilence).CreateBucketIfNotExists([]byte(account))
		if err != nil {
			return err
		}
		if b.Get([]byte(mask)) != nil {
			return nil
		}
		// The sequence value records insertion order, since bbolt keys
		// iterate in byte order.
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put([]byte(mask), idKey(seq)); err != nil {
			return err
		}
		added = true
		return nil
	})
	return added && err == nil, err
}

// RemoveSilence removes mask from account's silence list; removed is false
// if it was not there.
func (s *Store) RemoveSilence(account, mask string) (removed bool, err error) {
	err = s.update("remove silence", func(tx *bolt.Tx) error {
		removed = false
		parent := tx.Bucket(bucketSilence)
		b := parent.Bucket([]byte(account))
		if b == nil || b.Get([]byte(mask)) == nil {
			return nil
		}
		if err := b.Delete([]byte(mask)); err != nil {
			return err
		}
		removed = true
		// Unlike mailboxes, a reset sequence is harmless here, so drop
		// empty lists to keep AllSilences and the file small.
		if k, _ := b.Cursor().First(); k == nil {
			return parent.DeleteBucket([]byte(account))
		}
		return nil
	})
	return removed && err == nil, err
}

// Silences returns account's silence masks in insertion order.
func (s *Store) Silences(account string) ([]string, error) {
	var masks []string
	err := s.view("silences", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilence).Bucket([]byte(account))
		if b == nil {
			return nil
		}
		var err error
		masks, err = readSilences(b)
		return err
	})
	return masks, err
}

// AllSilences returns every non-empty silence list keyed by account.
func (s *Store) AllSilences() (map[string][]string, error) {
	all := make(map[string][]string)
	err := s.view("all silences", func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketSilence)
		return parent.ForEach(func(k, v []byte) error {
			if v != nil {
				return fmt.Errorf("%w: non-bucket key %q in silence bucket", errCorrupt, k)
			}
			masks, err := readSilences(parent.Bucket(k))
			if err != nil {
				return fmt.Errorf("account %q: %w", k, err)
			}
			if len(masks) > 0 {
				all[string(k)] = masks
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

func readSilences(b *bolt.Bucket) ([]string, error) {
	type entry struct {
		seq  uint64
		mask string
	}
	var entries []entry
	err := b.ForEach(func(k, v []byte) error {
		seq, err := parseID(v)
		if err != nil {
			return fmt.Errorf("mask %q: %w", k, err)
		}
		entries = append(entries, entry{seq, string(k)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	masks := make([]string, len(entries))
	for i, e := range entries {
		masks[i] = e.mask
	}
	return masks, nil
}

// SetLastSeen records the given times in a single transaction, so a
// periodic snapshot of every online account costs one fsync.
func (s *Store) SetLastSeen(seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	return s.update("set last seen", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLastSeen)
		for account, t := range seen {
			v := make([]byte, 8)
			binary.BigEndian.PutUint64(v, uint64(t.UnixNano()))
			if err := b.Put([]byte(account), v); err != nil {
				return fmt.Errorf("account %q: %w", account, err)
			}
		}
		return nil
	})
}

// LastSeen returns every recorded last-seen time, in UTC.
func (s *Store) LastSeen() (map[string]time.Time, error) {
	seen := make(map[string]time.Time)
	err := s.view("last seen", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLastSeen).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: last seen for %q has %d bytes", errCorrupt, k, len(v))
			}
			seen[string(k)] = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return seen, nil
}

// idKey encodes big-endian so byte order of keys equals numeric order.
func idKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

func parseID(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: id has %d bytes, want 8", errCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// A version byte leads every record so the format can change: version 1
// has no Sender, version 2 (written now) has one.
const (
	msgVersion1 = 1
	msgVersion  = 2
)

// encodeMessage layout: version byte; uvarint-length-prefixed From, Command,
// Text, Sender; varint Unix seconds; uvarint nanoseconds. Seconds plus
// nanoseconds (rather than UnixNano) cover every time.Time, including the
// zero value.
func encodeMessage(m Message) []byte {
	buf := make([]byte, 0, 1+6*binary.MaxVarintLen64+len(m.From)+len(m.Command)+len(m.Text)+len(m.Sender))
	buf = append(buf, msgVersion)
	for _, s := range []string{m.From, m.Command, m.Text, m.Sender} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendVarint(buf, m.Time.Unix())
	buf = binary.AppendUvarint(buf, uint64(m.Time.Nanosecond()))
	return buf
}

// decodeMessage validates every length against the remaining input, so
// damaged records yield errCorrupt instead of a panic or a huge allocation.
func decodeMessage(b []byte) (Message, error) {
	var m Message
	if len(b) == 0 || (b[0] != msgVersion && b[0] != msgVersion1) {
		return m, fmt.Errorf("%w: unknown message format", errCorrupt)
	}
	fields := []*string{&m.From, &m.Command, &m.Text, &m.Sender}
	if b[0] == msgVersion1 {
		fields = fields[:3]
	}
	b = b[1:]
	for _, dst := range fields {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return Message{}, fmt.Errorf("%w: bad string length", errCorrupt)
		}
		*dst = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	sec, w := binary.Varint(b)
	if w <= 0 {
		return Message{}, fmt.Errorf("%w: bad time", errCorrupt)
	}
	b = b[w:]
	nsec, w := binary.Uvarint(b)
	if w <= 0 || nsec >= uint64(time.Second) || w != len(b) {
		return Message{}, fmt.Errorf("%w: bad time", errCorrupt)
	}
	m.Time = time.Unix(sec, int64(nsec)).UTC()
	if len(fields) == 3 {
		m.Sender = legacySender(m.From)
	}
	return m, nil
}

// legacySender is the account of a version 1 record: the nick of its
// "nick!user@host" From, ASCII-folded as the server folds account names
// (nicks are account names there).
func legacySender(from string) string {
	nick, _, _ := strings.Cut(from, "!")
	b := []byte(nick)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
