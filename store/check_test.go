package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const checkTimeout = 30 * time.Second

// pristine is one fixture database, written once and copied by each test
// that damages it.
var pristine struct {
	once sync.Once
	data []byte
	f    fixture
	err  error
}

// damagedCopy returns the path of a fresh copy of the fixture database,
// passed through damage first if it is not nil.
func damagedCopy(t *testing.T, damage func([]byte) []byte) (string, fixture) {
	t.Helper()
	pristine.once.Do(func() {
		dir, err := os.MkdirTemp("", "store-fixture")
		if err != nil {
			pristine.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "fixture.db")
		pristine.f = fillStore(t, path)
		pristine.data, pristine.err = os.ReadFile(path)
	})
	if pristine.err != nil {
		t.Fatal(pristine.err)
	}
	b := append([]byte(nil), pristine.data...)
	if damage != nil {
		b = damage(b)
	}
	path := filepath.Join(t.TempDir(), "ircd.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pristine.f
}

// wantCorrupt checks that err is Open's refusal of a damaged file: a
// *CorruptError whose text names the file and the way to recover.
func wantCorrupt(t *testing.T, err error, path string) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open err = %v, want a *CorruptError", err)
	}
	msg := err.Error()
	for _, want := range []string{path + " is damaged", "ircd store check -config", "ircd store salvage -config", "in its place"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q does not mention %q", msg, want)
		}
	}
	return ce
}

// A file truncated to 8 KB (its meta pages intact, everything else gone)
// is refused with a clear error, with or without the full check, and is
// left as it was.
func TestOpenRefusesTruncatedFile(t *testing.T) {
	for _, timeout := range []time.Duration{checkTimeout, 0} {
		path, _ := damagedCopy(t, func(b []byte) []byte { return b[:8192] })
		_, err := Open(path, Options{CheckTimeout: timeout})
		ce := wantCorrupt(t, err, path)
		if !strings.Contains(ce.Error(), "truncated") {
			t.Errorf("error %q does not say the file was truncated", ce)
		}
		if fi, _ := os.Stat(path); fi.Size() != 8192 {
			t.Fatalf("file changed to %d bytes", fi.Size())
		}
	}
}

// An existing 0-byte file is refused, not made a new empty database.
func TestOpenRefusesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ircd.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, timeout := range []time.Duration{checkTimeout, 0} {
		_, err := Open(path, Options{CheckTimeout: timeout})
		var ee *EmptyFileError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0 bytes") {
			t.Fatalf("Open of a 0-byte file: err = %v, want an *EmptyFileError naming it", err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
			t.Fatalf("the 0-byte file was changed: %v, %v", fi, err)
		}
	}
}

// A new database is created whole under another name and renamed into
// place: no 0-byte file can be left by a crash, and a leftover from one is
// cleared.
func TestOpenCreatesWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ircd.db")
	if err := os.WriteFile(path+".new", []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, Options{CheckTimeout: checkTimeout})
	if _, err := os.Stat(path + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("database file %v, %v", fi, err)
	}
	mustAppend(t, s, "bob", Message{Text: "works"})
}

// The fixture opens cleanly with the full check.
func TestOpenChecksSoundFile(t *testing.T) {
	path, f := damagedCopy(t, nil)
	s := openTest(t, path, Options{CheckTimeout: checkTimeout})
	if msgs := mustPending(t, s, "bob"); len(msgs) != len(f.bob) {
		t.Fatalf("Pending = %d messages, want %d", len(msgs), len(f.bob))
	}
}

// A check that cannot finish in time refuses to start and says which
// setting bounds it; the file is released afterwards.
func TestOpenCheckTimeout(t *testing.T) {
	path, _ := damagedCopy(t, nil)
	_, err := Open(path, Options{CheckTimeout: time.Nanosecond})
	if err == nil || !strings.Contains(err.Error(), "check_timeout") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open with a 1ns check: err = %v, want a timeout naming the file and check_timeout", err)
	}
	openTest(t, path, Options{CheckTimeout: checkTimeout})
}

// flipBits flips n random bits of b, seeded.
func flipBits(seed uint64, n int) func([]byte) []byte {
	return func(b []byte) []byte {
		r := rand.New(rand.NewPCG(seed, 0))
		for range n {
			i := r.IntN(len(b) * 8)
			b[i/8] ^= 1 << (i % 8)
		}
		return b
	}
}

// Random bit flips: Open either refuses with its message or every call
// afterwards returns data or an error. Neither may crash or hang.
func TestOpenBitFlips(t *testing.T) {
	refused := 0
	const seeds = 24
	for seed := range uint64(seeds) {
		path, _ := damagedCopy(t, flipBits(seed, 200))
		s, err := Open(path, Options{CheckTimeout: checkTimeout, NoSync: true})
		if err != nil {
			wantCorrupt(t, err, path)
			refused++
			continue
		}
		callEverything(t, s, fixtureKeys)
		if err := s.Close(); err != nil {
			t.Errorf("seed %d: Close: %v", seed, err)
		}
	}
	t.Logf("%d of %d damaged files refused", refused, seeds)
	if refused == 0 {
		t.Fatal("no damaged file was refused; the check does not look")
	}
}

// A few bit flips mostly land in records, which the check lets through:
// the store must then skip what it cannot read, never crash or hang.
func TestOpenFewBitFlips(t *testing.T) {
	opened, skipped := 0, uint64(0)
	const seeds = 64
	for seed := range uint64(seeds) {
		path, _ := damagedCopy(t, flipBits(1000+seed, 2))
		s, err := Open(path, Options{CheckTimeout: checkTimeout, NoSync: true})
		if err != nil {
			wantCorrupt(t, err, path)
			continue
		}
		opened++
		callEverything(t, s, fixtureKeys)
		skipped += s.CorruptRecords()
		s.Close()
	}
	t.Logf("%d of %d files opened; %d damaged records met", opened, seeds, skipped)
	if opened == 0 || skipped == 0 {
		t.Fatal("no damage reached the running store; the test does not test it")
	}
}

// Zeroed pages: each page of the file in turn. Open refuses or the store
// works (a zeroed page that was free is harmless).
func TestOpenZeroedPages(t *testing.T) {
	ps := os.Getpagesize()
	pristine := pristineData(t)
	n := usedPages(pristine, ps)
	refused := 0
	for pg := 0; pg < n; pg++ {
		path, _ := damagedCopy(t, func(b []byte) []byte {
			clear(b[pg*ps : (pg+1)*ps])
			return b
		})
		s, err := Open(path, Options{CheckTimeout: checkTimeout, NoSync: true})
		if err != nil {
			if pg >= 2 { // both metas zeroed is not a database; one is recoverable
				wantCorrupt(t, err, path)
			}
			refused++
			continue
		}
		callEverything(t, s, fixtureKeys)
		s.Close()
	}
	t.Logf("%d of %d single zeroed pages refused", refused, n)
	if refused < n/2 {
		t.Fatalf("only %d of %d zeroed pages refused", refused, n)
	}
}

func pristineData(t *testing.T) []byte {
	damagedCopy(t, nil)
	return pristine.data
}

// Check reports a sound file as sound, with its record counts, and lists
// the damage of a damaged one; it refuses a file a store has open.
func TestCheck(t *testing.T) {
	path, f := damagedCopy(t, nil)
	r, err := Check(path, checkTimeout)
	if err != nil || !r.OK() {
		t.Fatalf("Check of a sound file = %+v, %v", r, err)
	}
	if r.Mailboxes != 2 || r.Messages != len(f.bob)+len(f.carol) || r.SilenceLists != 2 || r.Silences != 3 || r.LastSeen != len(f.seen) {
		t.Fatalf("Check counts = %+v", r)
	}

	s := openTest(t, path, Options{})
	putRaw(t, s, "bob", idKey(uint64(len(f.bob)+1)), []byte{msgVersion, 9})
	if _, err := Check(path, checkTimeout); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Check of an open database: err = %v, want locked", err)
	}
	s.Close()
	r, err = Check(path, checkTimeout)
	if err != nil || r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], fmt.Sprintf(`mail/"bob": message %d`, len(f.bob)+1)) {
		t.Fatalf("Check of a file with a bad record = %+v, %v", r, err)
	}

	truncated, _ := damagedCopy(t, func(b []byte) []byte { return b[:8192] })
	if r, err := Check(truncated, checkTimeout); err != nil || r.OK() || !strings.Contains(r.Problems[0], "truncated") {
		t.Fatalf("Check of a truncated file = %+v, %v", r, err)
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	os.WriteFile(empty, nil, 0o600)
	if r, err := Check(empty, checkTimeout); err != nil || r.OK() {
		t.Fatalf("Check of an empty file = %+v, %v", r, err)
	}
}

// Salvage of a damaged file: the new file passes Check and holds every
// record that was readable, with the original IDs and sequences; the
// damaged file is not touched.
func TestSalvage(t *testing.T) {
	ps := os.Getpagesize()
	path, f := damagedCopy(t, nil)
	s := openTest(t, path, Options{NoSync: true})
	bad := uint64(len(f.bob) + 1)
	putRaw(t, s, "bob", idKey(bad), []byte{msgVersion, 9})
	last := mustAppend(t, s, "bob", Message{From: "carol!c@h", Command: "PRIVMSG", Text: "after the bad one", Sender: "carol"})
	rawPut(t, s, [][]byte{bucketSilence, []byte("carol")}, []byte("z!*@*"), []byte{1})
	s.Close()
	zeroPagesWith(t, path, ps, bobText(200))
	before, _ := os.ReadFile(path)
	if _, err := Open(path, Options{CheckTimeout: checkTimeout}); err == nil {
		t.Fatal("the damaged file opened with the check")
	}

	out := filepath.Join(t.TempDir(), "salvaged.db")
	r, err := Salvage(path, out)
	if err != nil {
		t.Fatalf("Salvage: %v", err)
	}
	t.Logf("%+v", r)
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("Salvage changed the damaged file")
	}
	if c, err := Check(out, checkTimeout); err != nil || !c.OK() {
		t.Fatalf("Check of the salvaged file = %+v, %v", c, err)
	}
	if _, err := Salvage(path, out); err == nil {
		t.Fatal("Salvage overwrote an existing file")
	}

	s = openTest(t, out, Options{CheckTimeout: checkTimeout, MailboxPerSender: 1000})
	msgs := mustPending(t, s, "bob")
	got := make(map[uint64]Message)
	for _, m := range msgs {
		got[m.ID] = m
	}
	lost := 0
	for i, m := range f.bob {
		g, ok := got[m.ID]
		if !ok {
			lost++
			continue
		}
		if !sameMessage(g, m) || g.Sender != "alice" {
			t.Fatalf("message %d = %+v, want %+v", i, g, m)
		}
	}
	if lost == 0 || lost > 100 || got[f.bob[200].ID].ID != 0 || !sameMessage(got[last.ID], last) || got[bad].ID != 0 {
		t.Fatalf("salvaged %d of bob's messages (lost %d); want all but the zeroed page's and the bad one", len(msgs), lost)
	}
	if r.Messages != len(msgs)+len(f.carol) || r.MessagesSkipped != 1 || r.Mailboxes != 2 || len(r.Problems) == 0 {
		t.Fatalf("report %+v", r)
	}
	if c := mustPending(t, s, "carol"); len(c) != len(f.carol) || c[0].ID != f.carol[0].ID {
		t.Fatalf("carol's mailbox = %+v", c)
	}
	sil, err := s.AllSilences()
	if err != nil || strings.Join(sil["bob"], " ") != "spam!*@* eve!*@*" || strings.Join(sil["carol"], " ") != "*!*@10.0.0.* z!*@*" {
		t.Fatalf("silences = %q, %v", sil, err)
	}
	seen, err := s.LastSeen()
	if err != nil || len(seen) != len(f.seen) || !seen["user7"].At.Equal(f.seen["user7"]) {
		t.Fatalf("last seen = %d entries, %v", len(seen), err)
	}
	// Sequences were kept: new IDs continue after the old ones.
	if m := mustAppend(t, s, "bob", Message{Text: "new"}); m.ID != last.ID+1 {
		t.Fatalf("new ID after salvage = %d, want %d", m.ID, last.ID+1)
	}
	// Acks keep working on the salvaged mailbox.
	if err := s.Ack(ctx, "bob", last.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.PendingCount("bob"); n != 1 {
		t.Fatalf("PendingCount after Ack = %d, want 1", n)
	}
}

// usedPages is how many pages of a file come before its all-zero tail
// (bbolt grows a file ahead of its data).
func usedPages(b []byte, ps int) int {
	n := len(b) / ps
	for n > 0 && !slices.ContainsFunc(b[(n-1)*ps:n*ps], func(c byte) bool { return c != 0 }) {
		n--
	}
	return n
}

// Salvage reads what it can even from a file bbolt cannot open.
func TestSalvageTruncated(t *testing.T) {
	ps := os.Getpagesize()
	path, _ := damagedCopy(t, func(b []byte) []byte { return b[:usedPages(b, ps)/2*ps] })
	out := filepath.Join(t.TempDir(), "salvaged.db")
	r, err := Salvage(path, out)
	if err != nil {
		t.Fatalf("Salvage: %v", err)
	}
	if len(r.Problems) == 0 {
		t.Fatalf("report %+v shows no damage", r)
	}
	if c, err := Check(out, checkTimeout); err != nil || !c.OK() {
		t.Fatalf("Check of the salvaged file = %+v, %v", c, err)
	}
	t.Logf("%+v", r)
}
