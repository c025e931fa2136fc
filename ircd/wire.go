package ircd

import (
	"errors"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// Numerics that gopkg.in/irc.v4 leaves out of its constant table (it only
// exports the RFC ones; these are the ircu/IRCv3 additions clients expect).
const (
	rplLocalUsers     = "265"
	rplGlobalUsers    = "266"
	rplCreationTime   = "329"
	rplWhoisAccount   = "330"
	rplTopicWhoTime   = "333"
	rplSileList       = "271"
	rplEndOfSileList  = "272"
	errInputTooLong   = "417"
	errCantChangeNick = "447"
	errSileListFull   = "511"
	errCantSendToUser = "531"
	errNotSilenced    = "952"
	errUnknownSubcmd  = "410"
)

// Line bounds from IRCv3 message-tags: 512 bytes for the message itself
// (CRLF included) plus up to 8191 bytes of tags and the space after them.
// A client may send at most 4094 bytes of tags (the rest of the 8191 is
// the server's, for the tags it adds when relaying); the reader still
// takes whole lines up to the full bound, so a client over its share gets
// 417 instead of being cut off.
const (
	awayLen          = 200 // ISUPPORT AWAYLEN
	maxMessageLen    = 512
	maxTagsLen       = 8191
	maxClientTagsLen = 4094
	maxLineLen       = maxMessageLen + maxTagsLen + 1
)

// errLineFlood means the peer sent more than maxLineLen bytes without a
// newline; there is no sane way to resynchronise, so the connection ends.
var errLineFlood = errors.New("line exceeds bound without newline")

// errWouldBlock is a polled socket's "nothing more to read now".
var errWouldBlock = errors.New("no data ready")

// lineReader reads newline-terminated lines with a hard bound. Unlike
// irc.Reader (bufio.Reader underneath), its buffer starts small and only
// grows for long lines, so idle connections stay cheap.
type lineReader struct {
	r     io.Reader
	buf   []byte
	start int32 // first unread byte
	end   int32 // one past the last buffered byte
	// polled: r is a non-blocking socket whose reader is woken by the
	// poller for any data that arrives later. A read that did not fill
	// the buffer then emptied the socket: the next readLine that needs
	// more reports errWouldBlock without asking again (short).
	polled, short bool
}

const initialReadBuf = 4096

// readBufs recycles initial-size read buffers: a polled client gives its
// buffer back whenever no partial line is pending.
var readBufs = sync.Pool{New: func() any { return new([initialReadBuf]byte) }}

// readLine returns the next line without its line ending. The slice is
// only valid until the next call.
func (lr *lineReader) readLine() ([]byte, error) {
	scanned := 0
	for {
		if i := indexByte(lr.buf[int(lr.start)+scanned:lr.end], '\n'); i >= 0 {
			line := lr.buf[int(lr.start) : int(lr.start)+scanned+i]
			lr.start += int32(scanned + i + 1)
			if lr.start == lr.end {
				lr.start, lr.end = 0, 0
			}
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		}
		scanned = int(lr.end - lr.start)
		if scanned > maxLineLen {
			return nil, errLineFlood
		}
		if lr.short {
			// The last read emptied the socket: anything newer wakes
			// the poller, which runs the pump again.
			lr.short = false
			return nil, errWouldBlock
		}
		if lr.buf == nil {
			lr.buf = readBufs.Get().(*[initialReadBuf]byte)[:]
		}
		if int(lr.end) == len(lr.buf) {
			if lr.start > 0 {
				copy(lr.buf, lr.buf[lr.start:lr.end])
				lr.end -= lr.start
				lr.start = 0
			} else {
				grown := make([]byte, min(2*len(lr.buf), maxLineLen+2))
				copy(grown, lr.buf[:lr.end])
				lr.buf = grown
			}
		}
		space := len(lr.buf) - int(lr.end)
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += int32(n)
		if err != nil && n == 0 {
			return nil, err
		}
		lr.short = lr.polled && n < space
	}
}

// shrink drops a buffer that grew for a long line once nothing is pending,
// so one long line does not cost the connection memory forever.
func (lr *lineReader) shrink() {
	if lr.start == lr.end && len(lr.buf) > initialReadBuf {
		lr.buf, lr.start, lr.end = nil, 0, 0
	}
}

// release gives the buffer back to the pool if nothing is pending.
func (lr *lineReader) release() {
	if lr.start != lr.end || lr.buf == nil {
		return
	}
	if len(lr.buf) == initialReadBuf {
		readBufs.Put((*[initialReadBuf]byte)(lr.buf))
	}
	lr.buf, lr.start, lr.end = nil, 0, 0
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// parseFastMessage recognises the commonest line a client sends, a
// message to one target with nothing else on it:
//
//	PRIVMSG target :text
//
// (or NOTICE) with no tags, no prefix, single spaces, a target without ','
// or a leading ':', non-empty text that does not end in CR or LF, and the
// whole line valid UTF-8. For such a line it returns the command and the
// offsets of target and text in line, which irc.ParseMessage would give as
// Command and Params (FuzzFastMessage checks that); for any other line ok
// is false and the line takes the general path.
func parseFastMessage(line []byte) (command string, t0, t1, x0 int, ok bool) {
	var n int
	switch {
	case len(line) > 8 && string(line[:8]) == "PRIVMSG ":
		command, n = "PRIVMSG", 8
	case len(line) > 7 && string(line[:7]) == "NOTICE ":
		command, n = "NOTICE", 7
	default:
		return "", 0, 0, 0, false
	}
	t0 = n
	if line[t0] == ':' {
		return "", 0, 0, 0, false
	}
	t1 = t0
	for t1 < len(line) && line[t1] != ' ' {
		if line[t1] == ',' {
			return "", 0, 0, 0, false
		}
		t1++
	}
	x0 = t1 + 2
	if t1 == t0 || x0 >= len(line) || line[t1+1] != ':' {
		return "", 0, 0, 0, false
	}
	if last := line[len(line)-1]; last == '\r' || last == '\n' {
		return "", 0, 0, 0, false
	}
	if !utf8.Valid(line) {
		return "", 0, 0, 0, false
	}
	return command, t0, t1, x0, true
}

// tooLong reports whether a client's line breaks the per-part bounds:
// tags (without '@' and the space) at most maxClientTagsLen, the rest at
// most maxMessageLen including the CRLF we removed.
func tooLong(line []byte) bool {
	rest := line
	if len(line) > 0 && line[0] == '@' {
		sp := indexByte(line, ' ')
		if sp < 0 {
			return len(line)-1 > maxClientTagsLen
		}
		if sp-1 > maxClientTagsLen {
			return true
		}
		rest = line[sp+1:]
	}
	return len(rest)+2 > maxMessageLen
}

// sanitize makes untrusted text safe to relay: no NUL or CR (a bare CR
// could smuggle a second line into clients that split on it) and valid
// UTF-8, so one client's bytes cannot break another client's parser.
func sanitize(s string) string {
	if strings.IndexByte(s, 0) >= 0 || strings.IndexByte(s, '\r') >= 0 {
		s = strings.NewReplacer("\x00", "", "\r", "").Replace(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// appendMessage encodes one IRC line (with CRLF). tags is the already
// encoded tag string without '@' (may be empty). The last parameter is
// sent as a trailing one (":text"), as most servers do and some clients
// expect, except the sole target of commands that name one.
func appendMessage(dst []byte, tags, prefix, command string, params ...string) []byte {
	if dst == nil {
		// One allocation of the right size, not a few growing ones.
		n := len(tags) + len(prefix) + len(command) + 6
		for _, p := range params {
			n += len(p) + 2
		}
		dst = make([]byte, 0, n)
	}
	if tags != "" {
		dst = append(dst, '@')
		dst = append(dst, tags...)
		dst = append(dst, ' ')
	}
	if prefix != "" {
		dst = append(dst, ':')
		dst = append(dst, prefix...)
		dst = append(dst, ' ')
	}
	dst = append(dst, command...)
	for i, p := range params {
		dst = append(dst, ' ')
		if i == len(params)-1 && (p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0 || !bareLast(command, i)) {
			dst = append(dst, ':')
		}
		dst = append(dst, p...)
	}
	return append(dst, '\r', '\n')
}

// bareLast reports whether the last parameter (index i) of command is a
// token rather than text, which clients show literally with its colon
// (HexChat prints "004 ... i :nt"): a lone target such as JOIN #lobby or
// SILENCE +mask, and the numerics that end in modes, masks or times.
func bareLast(command string, i int) bool {
	switch command {
	case "JOIN", "PART", "SILENCE", "NICK", "TAGMSG", "AUTHENTICATE":
		return i == 0
	case "004", rplTopicWhoTime, rplCreationTime, "324", "221", rplSileList, "BATCH":
		return true
	}
	return false
}
