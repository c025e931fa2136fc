// Package accounts loads user accounts from a users.txt file, checks
// passwords and rate-limits failed logins with a per-name lockout and a
// per-address throttle.
package accounts

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

const (
	maxNameLen = 30
	// Length of a bcrypt hash string; bcrypt.Cost only checks a minimum,
	// so a truncated or padded hash would otherwise load and never match.
	bcryptHashLen = 60
	// maxCost is the highest bcrypt cost a users file may use. Each step
	// doubles the work: cost 14 is about a second per check, and a stray
	// cost 31 (days per check) would hang startup, 'ircd check' and a
	// SIGHUP reload, which all parse (and hash) on the main goroutine.
	maxCost = 14
	// Compared against for unknown names when the DB has no bcrypt entries.
	dummyPlaintext = "accounts-dummy-password"
)

// Fold returns the ASCII-lowercase form used as the key for an account name.
// Only A-Z are folded so that keys match IRC nick rules, not Unicode rules.
func Fold(name string) string {
	i := strings.IndexFunc(name, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return name
	}
	b := []byte(name)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

func isLetter(c byte) bool  { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isSpecial(c byte) bool { return strings.IndexByte("[]\\`_^{|}", c) >= 0 }

// ValidName reports whether s is a valid account/nick name.
func ValidName(s string) bool {
	if len(s) < 1 || len(s) > maxNameLen {
		return false
	}
	if c := s[0]; !isLetter(c) && !isSpecial(c) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && !isSpecial(c) && c != '-' {
			return false
		}
	}
	return true
}

func isBcrypt(pw string) bool {
	return strings.HasPrefix(pw, "$2a$") || strings.HasPrefix(pw, "$2b$") || strings.HasPrefix(pw, "$2y$")
}

func validBcryptChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '.' && c != '/' && c != '$' {
			return false
		}
	}
	return true
}

type entry struct {
	name     string // as spelled in the file
	password []byte // plaintext or bcrypt hash
	hashed   bool
	line     int
}

// DB is a parsed users file. It is immutable after Parse, so it may be shared
// between goroutines without locking. A nil *DB behaves as an empty DB.
type DB struct {
	entries map[string]*entry // keyed by Fold(name)
	names   []string          // canonical names sorted by folded form
	// dummyHash is non-nil iff the file has bcrypt entries; unknown names
	// and plaintext accounts are checked against it so that their timing
	// matches a real bcrypt compare.
	dummyHash []byte
	// onCompare, set only by tests before the DB is shared, sees each
	// bcrypt compare: work is counted instead of timed.
	onCompare func(hash []byte)
}

// Parse reads a users file. filename is used only in error messages.
func Parse(r io.Reader, filename string) (*DB, error) {
	db := &DB{entries: make(map[string]*entry)}
	costs := make(map[int]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // editors on Windows add a BOM
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", filename, lineNo, fmt.Sprintf(format, args...))
		}
		name, pw := line, ""
		if i := strings.IndexFunc(line, unicode.IsSpace); i >= 0 {
			name, pw = line[:i], strings.TrimSpace(line[i:])
		}
		if !ValidName(name) {
			return nil, fail("invalid account name %q", name)
		}
		if pw == "" {
			return nil, fail("missing password for account %q", name)
		}
		if strings.IndexFunc(pw, unicode.IsSpace) >= 0 {
			return nil, fail("password for account %q contains whitespace", name)
		}
		key := Fold(name)
		if prev, ok := db.entries[key]; ok {
			return nil, fail("duplicate account %q (first on line %d)", name, prev.line)
		}
		e := &entry{name: name, password: []byte(pw), hashed: isBcrypt(pw), line: lineNo}
		if e.hashed {
			cost, err := bcrypt.Cost(e.password)
			if err == nil && (len(pw) != bcryptHashLen || !validBcryptChars(pw)) {
				err = errors.New("bad length or characters")
			}
			if err != nil {
				return nil, fail("malformed bcrypt hash for account %q: %v", name, err)
			}
			if cost > maxCost {
				return nil, fail("bcrypt cost %d for account %q is above the maximum %d", cost, name, maxCost)
			}
			costs[cost]++
		}
		db.entries[key] = e
		db.names = append(db.names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", filename, lineNo+1, err)
	}
	sort.Slice(db.names, func(i, j int) bool { return Fold(db.names[i]) < Fold(db.names[j]) })

	if len(costs) > 0 {
		cost, n := 0, 0
		for c, k := range costs {
			// Ties go to the higher cost: erring slow is safer than erring fast.
			if k > n || k == n && c > cost {
				cost, n = c, k
			}
		}
		h, err := bcrypt.GenerateFromPassword([]byte(dummyPlaintext), cost)
		if err != nil {
			return nil, fmt.Errorf("%s: generating dummy hash: %w", filename, err)
		}
		db.dummyHash = h
	}
	return db, nil
}

// Load opens path and parses it as a users file.
func Load(path string) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

func (db *DB) lookup(name string) *entry {
	if db == nil {
		return nil
	}
	return db.entries[Fold(name)]
}

// Lookup finds name case-insensitively and returns it as spelled in the file.
func (db *DB) Lookup(name string) (canonical string, ok bool) {
	if e := db.lookup(name); e != nil {
		return e.name, true
	}
	return "", false
}

// Names returns the canonical names sorted by folded form.
func (db *DB) Names() []string {
	if db == nil {
		return nil
	}
	return append([]string(nil), db.names...)
}

// Len returns the number of accounts.
func (db *DB) Len() int {
	if db == nil {
		return 0
	}
	return len(db.names)
}

// Plaintext returns the canonical names whose password is stored unhashed,
// in the same order as Names.
func (db *DB) Plaintext() []string {
	var out []string
	for _, n := range db.Names() {
		if !db.lookup(n).hashed {
			out = append(out, n)
		}
	}
	return out
}

// Check reports whether password is right for name. When the file has any
// bcrypt entry, every check costs one bcrypt compare: against the entry's
// hash, or against the dummy hash (at the file's commonest cost) for
// unknown names and plaintext accounts, so timing reveals neither which
// names exist nor which passwords are stored in plaintext.
func (db *DB) Check(name, password string) bool {
	e := db.lookup(name)
	if e != nil && e.hashed {
		return db.compareHash(e.password, password)
	}
	if db != nil && db.dummyHash != nil {
		db.compareHash(db.dummyHash, password)
	}
	if e == nil {
		subtle.ConstantTimeCompare([]byte(dummyPlaintext), []byte(password))
		return false
	}
	return subtle.ConstantTimeCompare(e.password, []byte(password)) == 1
}

func (db *DB) compareHash(hash []byte, password string) bool {
	if db.onCompare != nil {
		db.onCompare(hash)
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// HashPassword returns a bcrypt hash suitable as the password field of a
// users.txt line.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("accounts: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// Result of an authentication attempt.
type Result int

const (
	OK Result = iota
	BadCredentials
	// LockedOut: the name is locked, or checks of it already running use
	// up its remaining failures.
	LockedOut
	// AddressThrottled: too many failed logins from the client's address.
	AddressThrottled
	// Unavailable: the limiter's shared store (a cluster's) cannot be
	// reached, so no password is checked.
	Unavailable
)

func (r Result) String() string {
	switch r {
	case OK:
		return "OK"
	case BadCredentials:
		return "BadCredentials"
	case LockedOut:
		return "LockedOut"
	case AddressThrottled:
		return "AddressThrottled"
	case Unavailable:
		return "Unavailable"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Accounts combines a reloadable DB with a LoginLimiter; it is what the
// server authenticates through.
type Accounts struct {
	db      atomic.Pointer[DB]
	limiter Limiter
	// checks bounds the password checks running at once to one fewer
	// than the CPUs Go code runs on (at least one): a bcrypt compare is
	// tens of milliseconds of CPU, and a burst of logins (every client
	// reconnecting after a restart) must not take every CPU from chat.
	checks chan struct{}
}

// New returns Accounts serving db. A nil limiter means no limits.
func New(db *DB, limiter Limiter) *Accounts {
	if limiter == nil {
		limiter = NewLoginLimiter(LimiterPolicy{}, nil)
	}
	a := &Accounts{limiter: limiter, checks: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
	a.db.Store(db)
	return a
}

// check is db.Check in one of the checks' slots.
func (a *Accounts) check(db *DB, name, password string) bool {
	a.checks <- struct{}{}
	defer func() { <-a.checks }()
	return db.Check(name, password)
}

// AuthResult is the outcome of AuthenticateFrom.
type AuthResult struct {
	Canonical string // the account as spelled in users.txt, if Result is OK
	Result    Result
	RetryIn   time.Duration // for LockedOut and AddressThrottled
	// LockStarted: this failure started the name's lockout. It is true
	// for exactly one attempt per lockout, so it is what to count and log.
	LockStarted bool
}

// AuthenticateFrom checks name's password for a client at addr, honouring
// and updating the limiter: a refused attempt (throttled address, locked
// name, recent wrong password, budget used up by checks in flight) is
// answered without the password being checked, so a right guess during a
// lock gives the attacker no signal.
func (a *Accounts) AuthenticateFrom(name, password, addr string) AuthResult {
	at, v := a.limiter.Begin(name, password, addr)
	if v.Result != OK {
		return AuthResult{Result: v.Result, RetryIn: v.RetryIn}
	}
	checked := false
	defer func() {
		if !checked {
			at.Done(false) // a panicking check must not hold the name's budget forever
		}
	}()
	db := a.DB() // one snapshot for both Check and Lookup
	ok := a.check(db, name, password)
	checked = true
	if !ok {
		return AuthResult{Result: BadCredentials, LockStarted: at.Done(false)}
	}
	at.Done(true)
	canonical, _ := db.Lookup(name)
	return AuthResult{Canonical: canonical, Result: OK}
}

// DB returns the current DB.
func (a *Accounts) DB() *DB { return a.db.Load() }

// Swap atomically replaces the DB; limiter state is kept across reloads.
func (a *Accounts) Swap(db *DB) { a.db.Store(db) }

// Limiter returns the limiter shared by all authentications.
func (a *Accounts) Limiter() Limiter { return a.limiter }
