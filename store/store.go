// Package store keeps a chat server's durable state in a single bbolt file:
// offline message mailboxes, per-account silence lists and last-seen times.
//
// Keys (recipients, accounts, masks) are opaque byte strings; callers are
// expected to case-fold them before calling in.
package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lobbychat/ircd/state"
)

// Append fails with state.state.ErrMailboxFull when the recipient's mailbox
// holds MailboxLimit messages, and with state.state.ErrSenderShareFull when the
// message's Sender already has MailboxPerSender messages waiting there, so
// that one sender cannot fill a mailbox and shut everyone else out of it.

// errCorrupt marks damaged data: values that could not be decoded, and
// bbolt panics or memory faults met reading a damaged page. Callers can
// tell it apart from I/O failures with errors.Is.
var errCorrupt = errors.New("store: corrupt data")

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

// Message is one stored offline message (state.Message). Its Sender is
// the sending account, case-folded, whose share of the mailbox it counts
// against ("" counts against none); records stored before that field
// existed read back with the nick of From, folded, which is what the
// server used as the account.
type Message = state.Message

// Options configure Open.
type Options struct {
	MailboxLimit     int // max pending messages per recipient; 0 = no limit
	MailboxPerSender int // max pending messages from one Sender per recipient; 0 = no limit
	// CheckTimeout bounds the check of every page Open runs on an
	// existing file; 0 skips it (the meta and freelist pages, which bbolt
	// reads at open, are still checked).
	CheckTimeout time.Duration
	// Logger gets one line for each damaged record or page met at run
	// time, naming the mailbox or account and the record id, never the
	// message text; nil discards them. CorruptRecords counts them.
	Logger *slog.Logger
	NoSync bool // skip fsync; tests and benchmarks only
}

// Store is safe for concurrent use by multiple goroutines.
type Store struct {
	db           *bolt.DB
	log          *slog.Logger
	mailboxLimit atomic.Int64
	perSender    atomic.Int64
	corrupt      atomic.Uint64

	// Silence lists are read for every message stored for someone
	// offline; they are kept in memory once read. Changes (rare: a user's
	// own SILENCE) are serialised by silenceMu and store the list they
	// committed, so a reader's older copy never replaces it.
	silenceMu    sync.Mutex
	silenceCache sync.Map // account -> []string, never modified
}

// Open opens or creates the database at path, creating missing parent
// directories.
//
// An existing file is checked first, with the file locked and before bbolt
// maps it: always its meta and freelist pages, and with a CheckTimeout
// every page, then bbolt's own check. A damaged file gets a
// *CorruptError naming it and the way to recover; a 0-byte file, which
// bbolt would silently make a new empty database, an *EmptyFileError.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, wrap("open", err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := create(path, opts.NoSync); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", path, err)
		}
	}
	f, size, err := openForCheck(path, os.O_RDWR, true)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := checkFile(path, f, size, opts.CheckTimeout); err != nil {
		f.Close()
		return nil, err
	}
	var db *bolt.DB
	err = protect(func() (err error) {
		// bbolt takes the lock again on the same descriptor, which holds.
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: opts.NoSync,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return f, nil }})
		return err
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if opts.CheckTimeout > 0 {
		problems, err := txCheck(db, start.Add(opts.CheckTimeout))
		switch {
		case errors.Is(err, errCheckTimeout):
			go db.Close() // once bbolt's check lets it
			return nil, timeoutError(path, opts.CheckTimeout)
		case err != nil:
			db.Close()
			return nil, fmt.Errorf("store: check %s: %w", path, err)
		case len(problems) > 0:
			db.Close()
			return nil, &CorruptError{path, problems}
		}
	}
	if err := safeUpdate(db, createBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: create buckets: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	s := &Store{db: db, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.SetMailboxLimit(opts.MailboxLimit)
	s.SetMailboxPerSender(opts.MailboxPerSender)
	return s, nil
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMail, bucketSilence, bucketLastSeen, bucketSenders} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// create makes a new database under a temporary name and renames it into
// place, so that a crash leaves no file or a whole one, never the 0-byte
// file Open refuses.
func create(path string, noSync bool) error {
	tmp := path + ".new"
	os.Remove(tmp) // left by a crash
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		return err
	}
	err = db.Update(createBuckets)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && !noSync {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// panicError is a panic recovered from bbolt, or a memory fault reading
// its mmap that SetPanicOnFault turned into one.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("%v: %v", errCorrupt, e.v) }
func (e *panicError) Unwrap() error { return errCorrupt }

// protect runs fn so that a damaged page fails only this call. bbolt
// reads pages straight from its mmap and trusts them: a damaged one can
// send it past the end of the mapping (a fault, which would kill the
// process) or into one of its assertions (a panic). SetPanicOnFault
// applies to the calling goroutine only, which is why every bbolt call
// runs inside protect in the goroutine that makes it.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return fn()
}

// view and update run fn in a protected transaction and label errors with
// the operation so logs say which store call failed.
func (s *Store) view(op string, fn func(*bolt.Tx) error) error {
	return s.protect(op, func() error { return s.db.View(fn) })
}

func (s *Store) update(op string, fn func(*bolt.Tx) error) error {
	return s.protect(op, func() error { return safeUpdate(s.db, fn) })
}

// safeUpdate is db.Update without its one hazard for a damaged file: after
// a panic, db.Update's deferred rollback re-reads the freelist page, and if
// that faults too the panic leaves the rollback with bbolt's writer lock
// held, so every later write and Close would hang. Tx.Rollback keeps to
// memory.
func safeUpdate(db *bolt.DB, fn func(*bolt.Tx) error) error {
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	if err := protect(func() error { return fn(tx) }); err != nil {
		tx.Rollback()
		return err
	}
	if err := protect(tx.Commit); err != nil {
		tx.Rollback() // ErrTxClosed, ignored, if Commit rolled back itself
		return err
	}
	return nil
}

func (s *Store) protect(op string, fn func() error) error {
	err := protect(fn)
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		s.damaged("a store call failed on a damaged page", "op", op, "err", err)
	}
	return wrap(op, err)
}

// damaged counts and logs damage met at run time. The attributes name the
// mailbox or account and the record id; never message text.
func (s *Store) damaged(msg string, attrs ...any) {
	s.corrupt.Add(1)
	s.log.Error("store: "+msg+damageHint, attrs...)
}

const damageHint = "; 'ircd store check' lists all damage, 'ircd store salvage' copies what is readable"

// CorruptRecords returns how many damaged records or pages the store has
// met since Open: skipped undecodable records, records it could not reach
// and operations that failed on a damaged page. The same record counts
// each time it is met.
func (s *Store) CorruptRecords() uint64 {
	return s.corrupt.Load()
}

func wrap(op string, err error) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

// Close releases the database file and its lock.
func (s *Store) Close() error {
	return s.protect("close", s.db.Close)
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
// It refuses with state.ErrSenderShareFull when m.Sender already has its share of
// the mailbox waiting, and with state.ErrMailboxFull when the mailbox is full.
func (s *Store) Append(ctx context.Context, to string, m Message) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
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
	put := func(tx *bolt.Tx) error {
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
		if err := s.healSequence(to, b); err != nil {
			return err
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
	}
	err := s.protect("append "+strconv.Quote(to), func() error {
		return s.db.Batch(func(tx *bolt.Tx) error {
			// Batch runs this in a goroutine of its own, so it protects
			// itself: a damaged page fails it with an error, which bbolt
			// answers by running it again alone in our goroutine, where it
			// fails the same way. A panic escaping it would reach
			// db.Update's rollback instead (see safeUpdate).
			return protect(func() error { return put(tx) })
		})
	})
	if err != nil {
		return Message{}, err
	}
	if shareFull {
		return Message{}, state.ErrSenderShareFull
	}
	if full {
		return Message{}, state.ErrMailboxFull
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
		if m, err := decodeMessage(v); err == nil && m.Sender != "" {
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

// Pending returns to's stored messages, oldest first. Damaged records are
// skipped (and counted and logged), never returned or made an error: one
// bad record must not keep the others from being delivered.
func (s *Store) Pending(ctx context.Context, to string) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var msgs []Message
	err := s.view("pending "+strconv.Quote(to), func(tx *bolt.Tx) error {
		msgs = nil
		b := tx.Bucket(bucketMail).Bucket([]byte(to))
		if b == nil {
			return nil
		}
		// next is the lowest ID not yet read; known says some ID was.
		next, known := uint64(0), false
		err := protect(func() error {
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				id, err := parseID(k)
				if err != nil {
					s.damaged("skipped a message with a malformed key", "mailbox", to, "key", fmt.Sprintf("%x", k))
					continue
				}
				if m, ok := s.decode(to, id, v); ok {
					msgs = append(msgs, m)
				}
				next, known = id+1, true
			}
			return nil
		})
		if err != nil {
			// The tree broke under the cursor. Look up each later ID on its
			// own instead, so that a damaged page costs only its records.
			msgs = append(msgs, s.seekEach(to, b, next, known, err)...)
		}
		return nil
	})
	return msgs, err
}

// decode decodes the record id of to's mailbox, reporting it if damaged.
func (s *Store) decode(to string, id uint64, v []byte) (Message, bool) {
	m, err := decodeMessage(v)
	if err != nil {
		s.damaged("skipped an undecodable message", "mailbox", to, "id", id, "err", err)
		return Message{}, false
	}
	m.ID = id
	return m, true
}

// seekLimit bounds how many IDs Pending looks up one by one after the
// mailbox's tree broke. A mailbox holds a contiguous range of IDs ending
// at its sequence, so this covers every mailbox of up to that many.
const seekLimit = 1 << 16

// seekEach reads to's messages from ID next up to the bucket sequence by
// looking each up from the root, for when iterating broke with cause. If
// no ID was read before the break (known is false), it tries the last
// seekLimit IDs.
func (s *Store) seekEach(to string, b *bolt.Bucket, next uint64, known bool, cause error) []Message {
	seq := b.Sequence()
	lo := next
	if !known {
		lo = 1
		if seq > seekLimit {
			lo = seq - seekLimit + 1
		}
	}
	n := uint64(0)
	if lo != 0 && lo <= seq {
		n = min(seq-lo+1, seekLimit)
	}
	var msgs []Message
	var lost []uint64
	for i := range n {
		id := lo + i
		err := protect(func() error {
			v := b.Get(idKey(id))
			if v == nil {
				return nil
			}
			if m, ok := s.decode(to, id, v); ok {
				msgs = append(msgs, m)
			}
			return nil
		})
		if err != nil {
			lost = append(lost, id)
		}
	}
	// The damaged page counts once; after a record was read, the IDs that
	// could not be are records too (the range is contiguous), and count.
	s.damaged("skipped what it could not read of a mailbox whose tree is damaged",
		"mailbox", to, "unreadable_ids", len(lost), "read", len(msgs), "err", cause)
	if known {
		s.corrupt.Add(uint64(len(lost)))
	}
	return msgs
}

// Ack deletes to's messages with ID <= upTo. Messages appended after the
// caller's Pending snapshot have larger IDs and therefore survive.
//
// Empty mailboxes are kept rather than deleted: deleting one would reset
// its ID sequence, and a late or repeated Ack could then delete new
// messages that reused old IDs.
func (s *Store) Ack(ctx context.Context, to string, upTo uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
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
		end := idKey(upTo)
		c := b.Cursor()
		// Keys are compared as bytes, not parsed, so a record with a
		// damaged key is deleted like any other once acked past.
		// Re-seek after each Delete: advancing a bbolt cursor with Next
		// after Delete can skip entries.
		for k, v := c.First(); k != nil; k, v = c.First() {
			if v == nil {
				return fmt.Errorf("%w: mailbox holds a bucket %x", errCorrupt, k)
			}
			m, err := decodeMessage(v)
			// An undecodable record just past the acked range goes too:
			// Pending skips it, so nothing can ever ack it, and left
			// first in the mailbox it would be met at every login.
			if bytes.Compare(k, end) > 0 && err == nil {
				break
			}
			if counts != nil && !stale {
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

// mailboxCount relies on the mailbox always holding a contiguous ID range:
// IDs come from NextSequence in committed transactions and Ack only ever
// removes a prefix. That makes counting O(log n) with no separate counter
// that could drift. Damaged keys fall back to counting them one by one.
func mailboxCount(b *bolt.Bucket) (uint64, error) {
	c := b.Cursor()
	k, _ := c.First()
	if k == nil {
		return 0, nil
	}
	first, err1 := parseID(k)
	k, _ = c.Last()
	last, err2 := parseID(k)
	if err1 == nil && err2 == nil && first <= last {
		return last - first + 1, nil
	}
	n := uint64(0)
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n, nil
}

// healSequence raises a mailbox sequence that a damaged bucket header
// left below the last stored ID, so that a new message cannot take, and
// overwrite, the ID of a stored one.
func (s *Store) healSequence(to string, b *bolt.Bucket) error {
	k, _ := b.Cursor().Last()
	if k == nil {
		return nil
	}
	last, err := parseID(k)
	if err != nil || last <= b.Sequence() {
		return nil
	}
	s.damaged("raised a mailbox sequence found below its messages", "mailbox", to, "sequence", b.Sequence(), "last_id", last)
	return b.SetSequence(last)
}

// AddSilence adds mask to account's silence list; added is false if it was
// already there.
func (s *Store) AddSilence(ctx context.Context, account, mask string) (added bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.silenceMu.Lock()
	defer s.silenceMu.Unlock()
	var list []string
	err = s.update("add silence", func(tx *bolt.Tx) error {
		added = false
		defer func() { list = s.readSilences(account, tx.Bucket(bucketSilence).Bucket([]byte(account))) }()
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
	if err == nil {
		s.silenceCache.Store(account, list)
	}
	return added && err == nil, err
}

// RemoveSilence removes mask from account's silence list; removed is false
// if it was not there.
func (s *Store) RemoveSilence(ctx context.Context, account, mask string) (removed bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.silenceMu.Lock()
	defer s.silenceMu.Unlock()
	var list []string
	err = s.update("remove silence", func(tx *bolt.Tx) error {
		removed = false
		parent := tx.Bucket(bucketSilence)
		defer func() {
			if b := parent.Bucket([]byte(account)); b != nil {
				list = s.readSilences(account, b)
			}
		}()
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
	if err == nil {
		s.silenceCache.Store(account, list)
	}
	return removed && err == nil, err
}

// Silences returns account's silence masks in insertion order.
func (s *Store) Silences(ctx context.Context, account string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l, ok := s.silenceCache.Load(account); ok {
		return slices.Clone(l.([]string)), nil
	}
	var masks []string
	err := s.view("silences", func(tx *bolt.Tx) error {
		masks = nil
		b := tx.Bucket(bucketSilence).Bucket([]byte(account))
		if b == nil {
			return nil
		}
		masks = s.readSilences(account, b)
		return nil
	})
	if err == nil {
		s.silenceCache.LoadOrStore(account, slices.Clone(masks))
	}
	return masks, err
}

// AllSilences returns every non-empty silence list keyed by account. An
// account whose list cannot be read is skipped (and reported) so that the
// others still load.
func (s *Store) AllSilences() (map[string][]string, error) {
	var all map[string][]string
	err := s.view("all silences", func(tx *bolt.Tx) error {
		all = make(map[string][]string)
		parent := tx.Bucket(bucketSilence)
		return parent.ForEach(func(k, v []byte) error {
			account := string(k)
			if v != nil {
				s.damaged("skipped a non-list entry in the silence bucket", "account", account)
				return nil
			}
			var masks []string
			err := protect(func() error {
				masks = s.readSilences(account, parent.Bucket(k))
				return nil
			})
			if err != nil {
				s.damaged("skipped an unreadable silence list", "account", account, "err", err)
				return nil
			}
			if len(masks) > 0 {
				all[account] = masks
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// readSilences orders masks by their insertion sequence. A mask whose
// sequence is damaged is kept, last: the block matters more than its place.
func (s *Store) readSilences(account string, b *bolt.Bucket) []string {
	type entry struct {
		seq  uint64
		mask string
	}
	var entries []entry
	b.ForEach(func(k, v []byte) error {
		seq, err := parseID(v)
		if err != nil {
			s.damaged("kept a silence entry with a damaged order last", "account", account, "err", err)
			seq = math.MaxUint64
		}
		entries = append(entries, entry{seq, string(k)})
		return nil
	})
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	masks := make([]string, len(entries))
	for i, e := range entries {
		masks[i] = e.mask
	}
	return masks
}

// SetLastSeen records the given last-seen records in a single
// transaction, so a periodic snapshot of every online account costs one
// fsync.
func (s *Store) SetLastSeen(seen map[string]state.Seen) error {
	if len(seen) == 0 {
		return nil
	}
	return s.update("set last seen", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLastSeen)
		for account, sn := range seen {
			if err := b.Put([]byte(account), encodeSeen(sn)); err != nil {
				return fmt.Errorf("account %q: %w", account, err)
			}
		}
		return nil
	})
}

// LastSeen returns every last-seen record, times in UTC.
func (s *Store) LastSeen() (map[string]state.Seen, error) {
	var seen map[string]state.Seen
	err := s.view("last seen", func(tx *bolt.Tx) error {
		seen = make(map[string]state.Seen)
		return tx.Bucket(bucketLastSeen).ForEach(func(k, v []byte) error {
			sn, err := decodeSeen(v)
			if err != nil {
				s.damaged("skipped a damaged last-seen record", "account", string(k), "bytes", len(v))
				return nil
			}
			seen[string(k)] = sn
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return seen, nil
}

// encodeSeen: the time (big-endian UnixNano, all that records written
// before the details were kept hold), then uvarint-length-prefixed nick,
// user, host and realname.
func encodeSeen(sn state.Seen) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+4+len(sn.Nick)+len(sn.User)+len(sn.Host)+len(sn.Realname)), uint64(sn.At.UnixNano()))
	for _, f := range []string{sn.Nick, sn.User, sn.Host, sn.Realname} {
		v = binary.AppendUvarint(v, uint64(len(f)))
		v = append(v, f...)
	}
	return v
}

func decodeSeen(v []byte) (state.Seen, error) {
	if len(v) < 8 {
		return state.Seen{}, fmt.Errorf("%w: last-seen record of %d bytes", errCorrupt, len(v))
	}
	sn := state.Seen{At: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()}
	rest := v[8:]
	if len(rest) == 0 {
		return sn, nil
	}
	for _, dst := range []*string{&sn.Nick, &sn.User, &sn.Host, &sn.Realname} {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return state.Seen{}, fmt.Errorf("%w: damaged last-seen record", errCorrupt)
		}
		*dst = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if len(rest) != 0 {
		return state.Seen{}, fmt.Errorf("%w: damaged last-seen record", errCorrupt)
	}
	return sn, nil
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
// has no Sender, version 2 no MsgID, version 3 (written now) both.
const (
	msgVersion1 = 1
	msgVersion2 = 2
	msgVersion  = 3
)

// encodeMessage layout: version byte; uvarint-length-prefixed From, Command,
// Text, Sender, MsgID; varint Unix seconds; uvarint nanoseconds. Seconds plus
// nanoseconds (rather than UnixNano) cover every time.Time, including the
// zero value.
func encodeMessage(m Message) []byte {
	buf := make([]byte, 0, 1+7*binary.MaxVarintLen64+len(m.From)+len(m.Command)+len(m.Text)+len(m.Sender)+len(m.MsgID))
	buf = append(buf, msgVersion)
	for _, s := range []string{m.From, m.Command, m.Text, m.Sender, m.MsgID} {
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
	fields := []*string{&m.From, &m.Command, &m.Text, &m.Sender, &m.MsgID}
	switch {
	case len(b) == 0:
		return m, fmt.Errorf("%w: empty record", errCorrupt)
	case b[0] == msgVersion1:
		fields = fields[:3]
	case b[0] == msgVersion2:
		fields = fields[:4]
	case b[0] != msgVersion:
		return m, fmt.Errorf("%w: unknown message format", errCorrupt)
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
