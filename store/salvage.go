package store

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SalvageReport says what Salvage copied and what it could not.
type SalvageReport struct {
	Source, Output string
	// Mailboxes copied (with their sequences, so IDs are never reused and
	// acknowledgements stay right), the messages in them, and messages
	// found but unreadable: a damaged key or value.
	Mailboxes, Messages, MessagesSkipped int
	// Silence lists and masks copied; a mask whose order value was
	// damaged is kept, at the end of its list, and counted in Reordered.
	SilenceLists, Silences, Reordered int
	LastSeen, LastSeenSkipped         int
	// Problems is the damage met in the source's structure: records on
	// the pages named there could not be reached at all.
	Problems []string
	More     int
}

// Salvage copies every readable mailbox message, silence entry and
// last-seen time of the database at src into a new database at dst, which
// must not exist yet. src is only read, under a shared lock, so Salvage
// fails while a server has it open. The source is read by the same
// bounds-checked walk as Check, never through bbolt, so even a file bbolt
// cannot open (truncated, damaged pages) gives up what is still in it.
// Per-sender counts are not copied: the store rebuilds them on first use.
// dst is written under a temporary name, renamed when complete, and then
// checked.
func Salvage(src, dst string) (*SalvageReport, error) {
	if _, err := os.Lstat(dst); err == nil {
		return nil, fmt.Errorf("store: salvage: %s already exists", dst)
	}
	f, size, err := openForCheck(src, os.O_RDONLY, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	tmp := dst + ".partial"
	os.Remove(tmp) // left by an earlier, interrupted salvage
	out, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: salvage: %w", err)
	}
	r := &SalvageReport{Source: src, Output: dst}
	w := &salvager{out: out, r: r, seen: make(map[string][]byte)}
	err = out.Update(createBuckets)
	if err == nil {
		s := &scan{f: f, size: size, lenient: true, enter: w.enter, value: w.value, leave: w.leave}
		err = s.walk(true)
		r.Problems, r.More = s.problems, s.more
	}
	if err == nil {
		err = w.err
	}
	if err == nil {
		r.LastSeen = len(w.seen)
		err = out.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLastSeen)
			for k, v := range w.seen {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err == nil {
		err = syncDir(filepath.Dir(dst))
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("store: salvage %s: %w", src, err)
	}
	check, err := Check(dst, 0)
	if err != nil {
		return r, fmt.Errorf("store: salvage: checking %s: %w", dst, err)
	}
	if !check.OK() {
		return r, fmt.Errorf("store: salvage: %s fails its check: %s", dst, summarize(check.Problems))
	}
	return r, nil
}

// salvager copies the scan's records as they come, one bucket at a time.
type salvager struct {
	out  *bolt.DB
	r    *SalvageReport
	err  error
	seen map[string][]byte // last-seen times, written at the end

	// The mailbox or silence list being read.
	top, name string
	seq       uint64
	keys      [][]byte
	vals      [][]byte
	damaged   int // silence masks with a damaged order
}

func (w *salvager) enter(path []string, seq uint64) {
	if len(path) == 2 && (path[0] == string(bucketMail) || path[0] == string(bucketSilence)) {
		w.top, w.name, w.seq, w.keys, w.vals, w.damaged = path[0], path[1], seq, nil, nil, 0
	}
}

func (w *salvager) value(path []string, k, v []byte) {
	switch {
	case len(path) == 2 && path[0] == string(bucketMail) && w.top == path[0] && w.name == path[1]:
		id, err := parseID(k)
		if err == nil {
			_, err = decodeMessage(v)
		}
		// An ID above the sequence is a damaged key: keeping it would
		// move the sequence, and every later ID, past it.
		if err != nil || id == 0 || id > w.seq {
			w.r.MessagesSkipped++
			return
		}
		w.keys, w.vals = append(w.keys, slices.Clone(k)), append(w.vals, slices.Clone(v))
	case len(path) == 2 && path[0] == string(bucketSilence) && w.top == path[0] && w.name == path[1]:
		if len(v) != 8 {
			v, w.damaged = nil, w.damaged+1 // placed at the end by leave
		}
		w.keys, w.vals = append(w.keys, slices.Clone(k)), append(w.vals, slices.Clone(v))
	case len(path) == 1 && path[0] == string(bucketLastSeen):
		if _, err := decodeSeen(v); err != nil {
			w.r.LastSeenSkipped++
			return
		}
		w.seen[string(k)] = slices.Clone(v)
	}
}

func (w *salvager) leave(path []string) {
	if len(path) != 2 || w.top != path[0] || w.name != path[1] || w.err != nil {
		return
	}
	w.top = ""
	w.err = w.out.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket([]byte(path[0])).CreateBucketIfNotExists([]byte(path[1]))
		if err != nil {
			return err
		}
		seq := max(w.seq, b.Sequence())
		if path[0] == string(bucketSilence) {
			// Damaged orders go after every intact one.
			for _, v := range w.vals {
				if v != nil {
					seq = max(seq, orderOf(v))
				}
			}
			for i, v := range w.vals {
				if v == nil {
					if seq == math.MaxUint64 {
						return errors.New("silence order exhausted")
					}
					seq++
					w.vals[i] = idKey(seq)
				}
			}
		}
		for i, k := range w.keys {
			if err := b.Put(k, w.vals[i]); err != nil {
				return err
			}
		}
		return b.SetSequence(seq)
	})
	if w.err != nil {
		return
	}
	if path[0] == string(bucketMail) {
		w.r.Mailboxes++
		w.r.Messages += len(w.keys)
	} else {
		w.r.SilenceLists++
		w.r.Silences += len(w.keys)
		w.r.Reordered += w.damaged
	}
}

func orderOf(v []byte) uint64 {
	id, _ := parseID(v)
	return id
}
