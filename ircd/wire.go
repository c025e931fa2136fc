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
	start int // first unread byte
	end   int // one past the last buffered byte
}

const initialReadBuf = 512

// readBufs recycles initial-size read buffers: a polled client gives its
// buffer back whenever no partial line is pending.
var readBufs = sync.Pool{New: func() any { return new([initialReadBuf]byte) }}

// readLine returns the next line without its line ending. The slice is
// only valid until the next call.
func (lr *lineReader) readLine() ([]byte, error) {
	scanned := 0
	for {
		if i := indexByte(lr.buf[lr.start+scanned:lr.end], '\n'); i >= 0 {
			line := lr.buf[lr.start : lr.start+scanned+i]
			lr.start += scanned + i + 1
			if lr.start == lr.end {
				lr.start, lr.end = 0, 0
			}
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		}
		scanned = lr.end - lr.start
		if scanned > maxLineLen {
			return nil, errLineFlood
		}
		if lr.buf == nil {
			lr.buf = readBufs.Get().(*[initialReadBuf]byte)[:]
		}
		if lr.end == len(lr.buf) {
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
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if err != nil && n == 0 {
			return nil, err
		}
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
