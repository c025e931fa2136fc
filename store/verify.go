package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// This file reads a bbolt file the way bbolt lays it out
// (go.etcd.io/bbolt/internal/common, format version 2) but with ReadAt
// into buffers, bounds-checking every offset, instead of through bbolt's
// mmap. bbolt trusts its pages: a truncated file or a damaged page id
// sends it outside the mapping, a page that points back at an ancestor
// sends it round forever, and its own consistency check (Tx.Check) runs in
// a goroutine of bbolt's where a fault or assertion kills the process.
// So the file is walked here first, and bbolt only gets a file whose
// structure it can walk safely.

const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elemSize         = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	metaSize         = 64 // magic, version, page size, flags (u32 each), root bucket, freelist, pgid, txid, checksum (u64)

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	leafIsBucket = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	maxProblems  = 50 // listed; more are only counted
	maxTreeDepth = 64 // B+tree levels; a 2-key-per-page tree of 2^64 keys
	maxNesting   = 16 // buckets within buckets
)

// bbolt writes its structs in the machine's byte order.
var ne = binary.NativeEndian

// meta is the part of a meta page the walk needs.
type meta struct {
	pageSize            uint64
	root, rootSeq       uint64
	freelist, hwm, txid uint64
}

// parseMeta reads the meta in a page image p, checking what bbolt checks.
func parseMeta(p []byte) (meta, error) {
	if len(p) < pageHeaderSize+metaSize {
		return meta{}, errors.New("short meta page")
	}
	b := p[pageHeaderSize:]
	if ne.Uint32(b[0:]) != boltMagic {
		return meta{}, errors.New("not a bbolt meta page")
	}
	if v := ne.Uint32(b[4:]); v != boltVersion {
		return meta{}, fmt.Errorf("bbolt format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != ne.Uint64(b[56:]) {
		return meta{}, errors.New("meta page checksum mismatch")
	}
	return meta{
		pageSize: uint64(ne.Uint32(b[8:])),
		root:     ne.Uint64(b[16:]),
		rootSeq:  ne.Uint64(b[24:]),
		freelist: ne.Uint64(b[32:]),
		hwm:      ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}, nil
}

// errCheckTimeout ends a walk that ran past its deadline.
var errCheckTimeout = errors.New("check did not finish in time")

// scan is one walk over a database file.
type scan struct {
	f        io.ReaderAt
	size     int64
	meta     meta
	deadline time.Time // zero: none
	problems []string
	more     int      // problems not listed
	notes    []string // things worth knowing that are not damage
	free     pageSet  // pages the freelist holds
	reached  pageSet  // pages the tree uses, with the meta and freelist pages
	visited  int
	// lenient walks on past damage that a check stops at (a damaged
	// header, keys out of order), to reach every readable record.
	lenient bool

	// Visitors, each optional. path names the bucket, outermost first.
	enter func(path []string, seq uint64)
	value func(path []string, k, v []byte)
	leave func(path []string)
}

// pageSet is a set of page ids below a bound, a bit each: a map would cost
// a hundred times more on a large file.
type pageSet []uint64

func newPageSet(n uint64) pageSet { return make(pageSet, (n+63)/64) }

func (p pageSet) has(id uint64) bool {
	i := id / 64
	return i < uint64(len(p)) && p[i]&(1<<(id%64)) != 0
}

func (p pageSet) add(id uint64) {
	if i := id / 64; i < uint64(len(p)) {
		p[i] |= 1 << (id % 64)
	}
}

func (s *scan) problem(format string, args ...any) {
	if len(s.problems) < maxProblems {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	} else {
		s.more++
	}
}

func (s *scan) damaged() bool { return len(s.problems) > 0 }

// readMetas picks the meta page bbolt would use (the valid one with the
// higher transaction id) and checks the file against it. It fails only if
// no meta page is valid: then nothing in the file can be located.
func (s *scan) readMetas() error {
	// The page size is in the metas, which sit at the start of pages 0
	// and 1; like bbolt, try page 0, then page 1 at each possible size.
	m0, err0 := s.metaAt(0)
	pageSize := m0.pageSize
	if err0 != nil {
		for shift := 10; shift <= 24; shift++ {
			if m, err := s.metaAt(1 << shift); err == nil && m.pageSize == 1<<shift {
				pageSize = m.pageSize
				break
			}
		}
	}
	if pageSize < 512 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		if err0 == nil {
			return fmt.Errorf("meta page 0 gives a page size of %d", pageSize)
		}
		return fmt.Errorf("no valid meta page (%v): not a bbolt database, or both meta pages are damaged", err0)
	}
	m1, err1 := s.metaAt(int64(pageSize))
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("no valid meta page (page 0: %v; page 1: %v)", err0, err1)
	case err0 != nil:
		s.meta = m1
		s.badMeta(0, 0, err0)
	case err1 != nil:
		s.meta = m0
		s.badMeta(1, int64(pageSize), err1)
	case m1.txid > m0.txid:
		s.meta = m1
	default:
		s.meta = m0
	}
	s.meta.pageSize = pageSize
	return nil
}

// badMeta reports meta page id, at off, which failed validation. bbolt
// then uses the other one, as after a crash during a commit: a note. But
// if the page does not even say it is that meta page, bbolt's Tx.Check
// fails an assertion on it (in its own goroutine, so fatally): damage.
func (s *scan) badMeta(id uint64, off int64, err error) {
	var h [pageHeaderSize]byte
	s.f.ReadAt(h[:], off)
	if ne.Uint64(h[0:]) != id || ne.Uint16(h[8:]) != flagMeta {
		s.problem("meta page %d is damaged (it says page %d, flags %#x)", id, ne.Uint64(h[0:]), ne.Uint16(h[8:]))
		return
	}
	s.notes = append(s.notes, fmt.Sprintf("meta page %d is invalid (%v); bbolt uses the other one, as after a crash during a commit, so the last transaction may be missing", id, err))
}

func (s *scan) metaAt(off int64) (meta, error) {
	p := make([]byte, pageHeaderSize+metaSize)
	if _, err := s.f.ReadAt(p, off); err != nil {
		return meta{}, fmt.Errorf("cannot read it: %w", err)
	}
	return parseMeta(p)
}

// checkHeader checks what every later page read relies on. Problems here
// mean the file cannot be walked at all.
func (s *scan) checkHeader() {
	m, ps := s.meta, s.meta.pageSize
	switch {
	case m.hwm > uint64(s.size)/ps:
		s.problem("the file is %d bytes, but its meta page says it has %d pages of %d bytes: it was truncated", s.size, m.hwm, ps)
		return
	case m.hwm < 3:
		s.problem("the meta page says the file has %d pages, too few for a database", m.hwm)
		return
	}
	if m.root < 2 || m.root >= m.hwm {
		s.problem("the root page %d is outside pages 2..%d", m.root, m.hwm-1)
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm) {
		s.problem("the freelist page %d is outside pages 2..%d", m.freelist, m.hwm-1)
	}
}

// readPage reads page id and its overflow pages after checking its header.
func (s *scan) readPage(id uint64, where string) ([]byte, uint16, bool) {
	ps := s.meta.pageSize
	if id < 2 || id >= s.meta.hwm {
		s.problem("%s: page %d is outside pages 2..%d", where, id, s.meta.hwm-1)
		return nil, 0, false
	}
	var h [pageHeaderSize]byte
	if _, err := s.f.ReadAt(h[:], int64(id*ps)); err != nil {
		s.problem("%s: page %d cannot be read: %v", where, id, err)
		return nil, 0, false
	}
	got, flags, overflow := ne.Uint64(h[0:]), ne.Uint16(h[8:]), uint64(ne.Uint32(h[12:]))
	if got != id {
		s.problem("%s: page %d says it is page %d (flags %#x): zeroed or overwritten", where, id, got, flags)
		return nil, 0, false
	}
	if end := id + 1 + overflow; end > s.meta.hwm || end*ps > uint64(s.size) {
		s.problem("%s: page %d with %d overflow pages runs past the end of the file", where, id, overflow)
		return nil, 0, false
	}
	for i := id; i <= id+overflow; i++ {
		if s.reached.has(i) {
			s.problem("%s: page %d is used twice", where, i)
			return nil, 0, false
		}
	}
	for i := id; i <= id+overflow; i++ {
		s.reached.add(i)
		if s.free.has(i) {
			s.problem("%s: page %d is in use and also on the freelist", where, i)
		}
	}
	p := make([]byte, (1+overflow)*ps)
	if _, err := s.f.ReadAt(p, int64(id*ps)); err != nil {
		s.problem("%s: page %d cannot be read: %v", where, id, err)
		return nil, 0, false
	}
	return p, flags, true
}

// readFreelist loads the free page ids, which bbolt reads at Open.
func (s *scan) readFreelist() {
	s.reached.add(0)
	s.reached.add(1)
	if s.meta.freelist == noFreelist {
		return
	}
	p, flags, ok := s.readPage(s.meta.freelist, "freelist")
	if !ok {
		return
	}
	if flags != flagFreelist {
		s.problem("freelist: page %d has flags %#x, not a freelist's", s.meta.freelist, flags)
		return
	}
	start, n := uint64(pageHeaderSize), uint64(ne.Uint16(p[10:]))
	if n == 0xFFFF { // the count did not fit; it is the first id
		n = ne.Uint64(p[pageHeaderSize:])
		start += 8
	}
	if n > (uint64(len(p))-start)/8 {
		s.problem("freelist: page %d claims %d free pages, more than it can hold", s.meta.freelist, n)
		return
	}
	for i := range n {
		id := ne.Uint64(p[start+8*i:])
		switch {
		case id < 2 || id >= s.meta.hwm:
			s.problem("freelist: free page %d is outside pages 2..%d", id, s.meta.hwm-1)
		case s.free.has(id):
			s.problem("freelist: page %d is freed twice", id)
		case s.reached.has(id):
			s.problem("freelist: page %d is the freelist itself", id)
		}
		s.free.add(id)
	}
}

// walkBucket walks the bucket whose header and (if inline) page are in v.
func (s *scan) walkBucket(path []string, v []byte) error {
	where := pathString(path)
	if len(path) > maxNesting {
		s.problem("%s: buckets nested more than %d deep", where, maxNesting)
		return nil
	}
	if len(v) < bucketHeaderSize {
		s.problem("%s: bucket header has %d bytes", where, len(v))
		return nil
	}
	root, seq := ne.Uint64(v[0:]), ne.Uint64(v[8:])
	if s.enter != nil {
		s.enter(path, seq)
	}
	var err error
	if root == 0 {
		// An inline bucket: its one leaf page follows the header.
		p := v[bucketHeaderSize:]
		if len(p) < pageHeaderSize || ne.Uint16(p[8:]) != flagLeaf {
			s.problem("%s: inline bucket has no valid leaf page", where)
		} else {
			err = s.walkLeaf(path, p, nil, nil, where+" (inline)")
		}
	} else {
		err = s.walkPage(path, root, nil, nil, 0)
	}
	if s.leave != nil {
		s.leave(path)
	}
	return err
}

// walkPage walks the subtree at page id, whose keys must be >= lo and,
// if hi is set, < hi.
func (s *scan) walkPage(path []string, id uint64, lo, hi []byte, depth int) error {
	if s.visited++; s.visited%64 == 0 && !s.deadline.IsZero() && time.Now().After(s.deadline) {
		return errCheckTimeout
	}
	where := pathString(path)
	if depth > maxTreeDepth {
		s.problem("%s: tree deeper than %d levels at page %d", where, maxTreeDepth, id)
		return nil
	}
	p, flags, ok := s.readPage(id, where)
	if !ok {
		return nil
	}
	where = fmt.Sprintf("%s: page %d", where, id)
	switch flags {
	case flagLeaf:
		return s.walkLeaf(path, p, lo, hi, where)
	case flagBranch:
	default:
		s.problem("%s: flags %#x where a branch or leaf page should be", where, flags)
		return nil
	}
	n := int(ne.Uint16(p[10:]))
	if n == 0 || pageHeaderSize+n*elemSize > len(p) {
		s.problem("%s: branch page with %d elements", where, n)
		return nil
	}
	keys := make([][]byte, n)
	kids := make([]uint64, n)
	for i := range n {
		e := pageHeaderSize + i*elemSize
		pos, ksize := uint64(ne.Uint32(p[e:])), uint64(ne.Uint32(p[e+4:]))
		if uint64(e)+pos+ksize > uint64(len(p)) {
			s.problem("%s: element %d runs past the page", where, i)
			return nil
		}
		keys[i] = p[uint64(e)+pos : uint64(e)+pos+ksize]
		kids[i] = ne.Uint64(p[e+8:])
	}
	if !s.keysInOrder(keys, lo, hi, where) {
		return nil
	}
	for i, kid := range kids {
		next := hi
		if i+1 < n {
			next = keys[i+1]
		}
		if err := s.walkPage(path, kid, keys[i], next, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// walkLeaf checks a leaf page image p and visits its keys.
func (s *scan) walkLeaf(path []string, p []byte, lo, hi []byte, where string) error {
	n := int(ne.Uint16(p[10:]))
	if pageHeaderSize+n*elemSize > len(p) {
		s.problem("%s: leaf page with %d elements does not fit", where, n)
		return nil
	}
	type elem struct {
		bucket bool
		k, v   []byte
	}
	elems := make([]elem, n)
	keys := make([][]byte, n)
	for i := range n {
		e := uint64(pageHeaderSize + i*elemSize)
		flags := ne.Uint32(p[e:])
		pos, ksize, vsize := uint64(ne.Uint32(p[e+4:])), uint64(ne.Uint32(p[e+8:])), uint64(ne.Uint32(p[e+12:]))
		if e+pos+ksize+vsize > uint64(len(p)) {
			s.problem("%s: element %d runs past the page", where, i)
			return nil
		}
		k := p[e+pos : e+pos+ksize]
		elems[i] = elem{flags&leafIsBucket != 0, k, p[e+pos+ksize : e+pos+ksize+vsize]}
		keys[i] = k
	}
	if !s.keysInOrder(keys, lo, hi, where) {
		return nil
	}
	for _, e := range elems {
		if !e.bucket {
			if s.value != nil {
				s.value(path, e.k, e.v)
			}
			continue
		}
		if err := s.walkBucket(append(path[:len(path):len(path)], string(e.k)), e.v); err != nil {
			return err
		}
	}
	return nil
}

// keysInOrder checks the ordering bbolt's search relies on.
func (s *scan) keysInOrder(keys [][]byte, lo, hi []byte, where string) bool {
	for i, k := range keys {
		switch {
		case len(k) == 0:
			s.problem("%s: key %d is empty", where, i)
		case i == 0 && lo != nil && bytes.Compare(k, lo) < 0:
			s.problem("%s: first key %x sorts before its parent's %x", where, k, lo)
		case i > 0 && bytes.Compare(keys[i-1], k) >= 0:
			s.problem("%s: key %d (%x) is out of order", where, i, k)
		case hi != nil && bytes.Compare(k, hi) >= 0:
			s.problem("%s: key %d (%x) sorts after the next parent key %x", where, i, k, hi)
		default:
			continue
		}
		return s.lenient
	}
	return true
}

// walk checks the file: the meta and freelist pages and, if full, every
// page reachable from the root and that every page is either used or
// free, as Tx.Check does. It returns an error only when no meta page can
// be read, or the deadline passed.
func (s *scan) walk(full bool) error {
	if err := s.readMetas(); err != nil {
		return err
	}
	s.checkHeader()
	n := min(s.meta.hwm, uint64(s.size)/s.meta.pageSize)
	s.free, s.reached = newPageSet(n), newPageSet(n)
	if s.damaged() && !s.lenient {
		return nil
	}
	s.readFreelist()
	if !full {
		return nil
	}
	if !s.deadline.IsZero() && time.Now().After(s.deadline) {
		return errCheckTimeout
	}
	root := make([]byte, bucketHeaderSize)
	ne.PutUint64(root, s.meta.root)
	ne.PutUint64(root[8:], s.meta.rootSeq)
	if err := s.walkBucket(nil, root); err != nil {
		return err
	}
	if s.damaged() || s.lenient {
		return nil // pages under damaged ones were not reached
	}
	var lost []string
	for id := uint64(2); id < s.meta.hwm; id++ {
		if !s.reached.has(id) && !s.free.has(id) {
			lost = append(lost, strconv.FormatUint(id, 10))
		}
	}
	if len(lost) > 0 {
		s.problem("pages neither in use nor free: %s", strings.Join(lost[:min(len(lost), 20)], ", "))
	}
	return nil
}

// pathString names a bucket for messages: mail/"bob".
func pathString(path []string) string {
	if len(path) == 0 {
		return "root"
	}
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = p
		if i > 0 || strconv.Quote(p) != `"`+p+`"` {
			parts[i] = strconv.Quote(p)
		}
	}
	return strings.Join(parts, "/")
}

// CorruptError is Open's error for a database file that fails its check.
type CorruptError struct {
	Path     string
	Problems []string // what the check found, the first few dozen
}

// Error names the file, the first problems and the commands that
// recover it, with FILE for the config file; Recovery fills those in.
func (e *CorruptError) Error() string { return e.Recovery("ircd", "FILE") }

// Recovery is the text of Error with prog and config in the commands.
func (e *CorruptError) Recovery(prog, config string) string {
	return fmt.Sprintf("store: %s is damaged: %s.\n"+
		"To recover, run\n"+
		"  %s store check -config %s     to see all of the damage, then\n"+
		"  %s store salvage -config %s   to copy every readable record into a new file next to it,\n"+
		"and put the new file in its place (salvage prints the commands that move %s aside).",
		e.Path, summarize(e.Problems), prog, config, prog, config, e.Path)
}

func summarize(problems []string) string {
	const shown = 3
	if len(problems) <= shown {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more problems", strings.Join(problems[:shown], "; "), len(problems)-shown)
}

// ErrLocked is returned by Open, Check and Salvage when another process
// (a running server) holds the database.
var ErrLocked = errors.New("database is locked by another process")

// openForCheck opens path and locks it against writers. It refuses a
// 0-byte file: one is never a database, and bbolt would write a fresh,
// empty one over it.
func openForCheck(path string, flag int, exclusive bool) (*os.File, int64, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, err
	}
	// Without a timeout the lock waits forever for another process,
	// which looks like a hung server at startup.
	if err := lockFile(f, exclusive, time.Second); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, 0, fmt.Errorf("store: open %s: %w", path, ErrLocked)
		}
		return nil, 0, fmt.Errorf("store: lock %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.Size() == 0 {
		f.Close()
		return nil, 0, &EmptyFileError{path}
	}
	return f, fi.Size(), nil
}

// EmptyFileError is Open's error for an existing database file of 0
// bytes, which it leaves as it is.
type EmptyFileError struct{ Path string }

func (e *EmptyFileError) Error() string {
	return fmt.Sprintf("store: %s is empty (0 bytes) where a database should be; not starting over it with a new, empty one. "+
		"If this is a new installation, delete the file and start again; otherwise restore it from a backup (there is nothing in it to salvage)", e.Path)
}

// checkFile walks the open database file f before bbolt maps it: only the
// meta and freelist pages if timeout is 0, every page otherwise.
func checkFile(path string, f io.ReaderAt, size int64, timeout time.Duration) error {
	s := &scan{f: f, size: size}
	if timeout > 0 {
		s.deadline = time.Now().Add(timeout)
	}
	err := s.walk(timeout > 0)
	switch {
	case errors.Is(err, errCheckTimeout):
		return timeoutError(path, timeout)
	case err != nil:
		return &CorruptError{path, []string{err.Error()}}
	case s.damaged():
		return &CorruptError{path, s.problems}
	}
	return nil
}

func timeoutError(path string, timeout time.Duration) error {
	return fmt.Errorf("store: the consistency check of %s did not finish within %v; raise the limit ([store] check_timeout), or set it to \"0s\" to start without the check: %w",
		path, timeout, errCheckTimeout)
}

// txCheck runs bbolt's own consistency check (Tx.Check) until deadline
// (zero: none). The check runs in a goroutine of bbolt's, where a fault or
// failed assertion would kill the process, so it is only for a file the
// walk found sound. On timeout it is left to finish, holding its read
// transaction (and so db.Close) until it does.
func txCheck(db *bolt.DB, deadline time.Time) ([]string, error) {
	var tx *bolt.Tx
	if err := protect(func() (err error) { tx, err = db.Begin(false); return err }); err != nil {
		return nil, err
	}
	ch := tx.Check()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	var problems []string
	for {
		select {
		case err, ok := <-ch:
			if !ok {
				tx.Rollback()
				return problems, nil
			}
			if len(problems) < maxProblems {
				problems = append(problems, "bbolt check: "+err.Error())
			}
		case <-timeout:
			go func() {
				for range ch {
				}
				tx.Rollback()
			}()
			return problems, errCheckTimeout
		}
	}
}

// Report is what Check found in a database file.
type Report struct {
	Path string
	// Problems lists the damage: to the file's structure, and records
	// that cannot be decoded. None means the file is sound.
	Problems []string
	More     int      // problems found beyond those listed
	Notes    []string // worth knowing, not damage
	// Readable records.
	Mailboxes, Messages, SilenceLists, Silences, LastSeen int
}

// OK reports whether the file is sound.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Check examines the database at path without changing it: its structure
// (the walk Open does, then bbolt's Tx.Check) and every record. It takes
// a shared lock, so it fails while a server has the file open. timeout
// bounds it (0: no bound). Damage is reported in the Report; the error is
// for a file that cannot be checked at all.
func Check(path string, timeout time.Duration) (*Report, error) {
	r := &Report{Path: path}
	f, size, err := openForCheck(path, os.O_RDONLY, false)
	if ee := (*EmptyFileError)(nil); errors.As(err, &ee) {
		r.Problems = []string{"the file is empty (0 bytes)"}
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var bad []string
	badRecord := func(format string, args ...any) {
		if len(bad) < maxProblems {
			bad = append(bad, fmt.Sprintf(format, args...))
		} else {
			r.More++
		}
	}
	var seq uint64
	s := &scan{f: f, size: size}
	if timeout > 0 {
		s.deadline = time.Now().Add(timeout)
	}
	s.enter = func(path []string, sq uint64) {
		seq = sq
		if len(path) == 2 && path[0] == string(bucketMail) {
			r.Mailboxes++
		}
		if len(path) == 2 && path[0] == string(bucketSilence) {
			r.SilenceLists++
		}
	}
	s.value = func(path []string, k, v []byte) {
		where := pathString(path)
		top := ""
		if len(path) > 0 {
			top = path[0]
		}
		switch {
		case len(path) == 2 && top == string(bucketMail):
			id, err := parseID(k)
			if err != nil {
				badRecord("%s: key %x is not a message id", where, k)
				break
			}
			if _, err := decodeMessage(v); err != nil {
				badRecord("%s: message %d cannot be decoded: %v", where, id, err)
				break
			}
			if id > seq {
				badRecord("%s: message %d is above the mailbox's sequence %d", where, id, seq)
			}
			r.Messages++
		case len(path) == 2 && top == string(bucketSilence):
			if len(v) != 8 {
				badRecord("%s: mask %q has a damaged order value", where, k)
				break
			}
			r.Silences++
		case len(path) == 1 && top == string(bucketLastSeen):
			if _, err := decodeSeen(v); err != nil {
				badRecord("%s: %q has a damaged last-seen record (%d bytes)", where, k, len(v))
				break
			}
			r.LastSeen++
		case len(path) == 2 && top == string(bucketSenders):
			if len(v) != 8 {
				badRecord("%s: sender %q has a damaged count", where, k)
			}
		case len(path) <= 1:
			badRecord("%s: key %q where a bucket should be", where, k)
		}
	}
	err = s.walk(true)
	switch {
	case errors.Is(err, errCheckTimeout):
		return nil, timeoutError(path, timeout)
	case err != nil:
		r.Problems = []string{err.Error()}
		return r, nil
	}
	r.Notes = s.notes
	r.Problems = s.problems
	r.More += s.more
	if !s.damaged() {
		// Tx.Check runs only on a sound structure; see txCheck.
		problems, err := boltCheckReadOnly(path, s.deadline)
		if errors.Is(err, errCheckTimeout) {
			return nil, timeoutError(path, timeout)
		}
		if err != nil {
			return nil, err
		}
		r.Problems = append(r.Problems, problems...)
	}
	r.Problems = append(r.Problems, bad...)
	return r, nil
}

// boltCheckReadOnly opens path (which Check holds locked shared) read-only
// in bbolt and runs txCheck on it.
func boltCheckReadOnly(path string, deadline time.Time) ([]string, error) {
	dup, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var db *bolt.DB
	err = protect(func() (err error) {
		db, err = bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: time.Second,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return dup, nil }})
		return err
	})
	if err != nil {
		dup.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	problems, err := txCheck(db, deadline)
	if errors.Is(err, errCheckTimeout) {
		go db.Close()
	} else {
		db.Close()
	}
	return problems, err
}
