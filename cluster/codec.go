package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/lobbychat/ircd/state"
)

// What crosses NATS is encoded by hand, compactly: a version byte, then
// uvarint-length-prefixed strings and varint numbers in a fixed order.
// Room events are the hot path (one per channel line per node), where
// JSON cost several times as much.

const codecVersion = 1

var errBadRecord = errors.New("cluster: malformed record")

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) int(n int64) { e.b = binary.AppendVarint(e.b, n) }

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.int(0)
		e.int(0)
		return
	}
	e.int(t.Unix())
	e.int(int64(t.Nanosecond()))
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) user(u state.UserInfo) {
	for _, s := range []string{u.Nick, u.User, u.Host, u.Realname, u.Account, u.Away, u.Node, u.Session} {
		e.str(s)
	}
	e.time(u.Signon)
	e.time(u.Idle)
	e.bool(u.Parted)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) str() string {
	if d.err != nil {
		return ""
	}
	n, w := binary.Uvarint(d.b)
	if w <= 0 || n > uint64(len(d.b)-w) {
		d.err = errBadRecord
		return ""
	}
	s := string(d.b[w : w+int(n)])
	d.b = d.b[w+int(n):]
	return s
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	n, w := binary.Varint(d.b)
	if w <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[w:]
	return n
}

func (d *decoder) time() time.Time {
	sec, nsec := d.int(), d.int()
	if d.err != nil || sec == 0 && nsec == 0 {
		return time.Time{}
	}
	if nsec < 0 || nsec >= int64(time.Second) {
		d.err = errBadRecord
		return time.Time{}
	}
	return time.Unix(sec, nsec).UTC()
}

func (d *decoder) bool() bool {
	if d.err != nil || len(d.b) == 0 {
		d.err = errBadRecord
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) user() state.UserInfo {
	var u state.UserInfo
	for _, s := range []*string{&u.Nick, &u.User, &u.Host, &u.Realname, &u.Account, &u.Away, &u.Node, &u.Session} {
		*s = d.str()
	}
	u.Signon = d.time()
	u.Idle = d.time()
	u.Parted = d.bool()
	return u
}

func newDecoder(b []byte) *decoder {
	if len(b) == 0 || b[0] != codecVersion {
		return &decoder{err: errBadRecord}
	}
	return &decoder{b: b[1:]}
}

// done reports the decode error, and an error for bytes left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		return errBadRecord
	}
	return d.err
}

func encodeUser(u state.UserInfo) []byte {
	e := encoder{b: append(make([]byte, 0, 128), codecVersion)}
	e.user(u)
	return e.b
}

func decodeUser(b []byte) (state.UserInfo, error) {
	d := newDecoder(b)
	u := d.user()
	return u, d.done()
}

func encodeRoomEvent(ev state.RoomEvent) []byte {
	e := encoder{b: append(make([]byte, 0, 192+len(ev.Text)+len(ev.Tags)), codecVersion)}
	e.int(int64(ev.Kind))
	e.user(ev.From)
	e.str(ev.Command)
	e.str(ev.Text)
	e.str(ev.Tags)
	e.time(ev.Time)
	e.str(ev.ID)
	return e.b
}

func decodeRoomEvent(b []byte) (state.RoomEvent, error) {
	d := newDecoder(b)
	var ev state.RoomEvent
	ev.Kind = state.RoomEventKind(d.int())
	ev.From = d.user()
	ev.Command = d.str()
	ev.Text = d.str()
	ev.Tags = d.str()
	ev.Time = d.time()
	ev.ID = d.str()
	return ev, d.done()
}

// private is a private message on its way to the node holding to.
type private struct {
	To state.UserInfo
	M  state.Private
}

func encodePrivate(p private) []byte {
	e := encoder{b: append(make([]byte, 0, 320+len(p.M.Text)+len(p.M.Tags)), codecVersion)}
	e.user(p.To)
	e.user(p.M.From)
	e.str(p.M.Command)
	e.str(p.M.Text)
	e.str(p.M.Tags)
	e.time(p.M.Time)
	e.str(p.M.ID)
	return e.b
}

func decodePrivate(b []byte) (private, error) {
	d := newDecoder(b)
	var p private
	p.To = d.user()
	p.M.From = d.user()
	p.M.Command = d.str()
	p.M.Text = d.str()
	p.M.Tags = d.str()
	p.M.Time = d.time()
	p.M.ID = d.str()
	return p, d.done()
}

func encodeSeen(s state.Seen) []byte {
	e := encoder{b: []byte{codecVersion}}
	for _, f := range []string{s.Nick, s.User, s.Host, s.Realname} {
		e.str(f)
	}
	e.time(s.At)
	return e.b
}

func decodeSeen(b []byte) (state.Seen, error) {
	d := newDecoder(b)
	var s state.Seen
	for _, f := range []*string{&s.Nick, &s.User, &s.Host, &s.Realname} {
		*f = d.str()
	}
	s.At = d.time()
	return s, d.done()
}

func encodeMessage(m state.Message) []byte {
	e := encoder{b: append(make([]byte, 0, 64+len(m.Text)), codecVersion)}
	for _, f := range []string{m.From, m.Sender, m.Command, m.Text, m.MsgID} {
		e.str(f)
	}
	e.time(m.Time)
	return e.b
}

func decodeMessage(b []byte) (state.Message, error) {
	d := newDecoder(b)
	var m state.Message
	for _, f := range []*string{&m.From, &m.Sender, &m.Command, &m.Text, &m.MsgID} {
		*f = d.str()
	}
	m.Time = d.time()
	return m, d.done()
}

// key encodes a folded name (or an address) as a KV key or subject
// token: KV keys allow only [-/_=.a-zA-Z0-9], and '.' separates subject
// tokens, so anything else (IRC's []\`^{|}, ':' of IPv6) becomes =XX.
func key(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '=', hex[c>>4], hex[c&15])
	}
	if b == nil {
		if s == "" {
			return "="
		}
		return s
	}
	return string(b)
}

// unkey reverses key.
func unkey(k string) string {
	if k == "=" {
		return ""
	}
	var b []byte
	for i := 0; i < len(k); i++ {
		if k[i] == '=' && i+2 < len(k) {
			if b == nil {
				b = append(make([]byte, 0, len(k)), k[:i]...)
			}
			b = append(b, unhex(k[i+1])<<4|unhex(k[i+2]))
			i += 2
			continue
		}
		if b != nil {
			b = append(b, k[i])
		}
	}
	if b == nil {
		return k
	}
	return string(b)
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}
