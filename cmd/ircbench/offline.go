package main

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// storer sends private messages to offline accounts. Each sender has at
// most window messages awaiting their reply (301 stored, or 531/401);
// replies come back in order, so a FIFO of send times gives the latency.
type storer struct {
	fifo []chan int64
	sent []atomic.Int64
	acks counter
	errs counter
	lat  hist

	errMu    sync.Mutex
	firstErr string
}

func newStorer(senders, window int) *storer {
	s := &storer{fifo: make([]chan int64, senders), sent: make([]atomic.Int64, senders)}
	for i := range s.fifo {
		s.fifo[i] = make(chan int64, window)
	}
	return s
}

type storeHandler struct {
	nopHandler
	s   *storer
	sid int
}

func (h storeHandler) reply(c *conn, numeric string, at int64) {
	select {
	case ts := <-h.s.fifo[h.sid]:
		h.s.lat.record(h.sid, at-ts)
	default:
	}
	if numeric == "301" {
		h.s.acks.add(h.sid, 1)
		return
	}
	h.s.errs.add(h.sid, 1)
	h.s.errMu.Lock()
	if h.s.firstErr == "" {
		h.s.firstErr = c.nick + " got " + numeric
	}
	h.s.errMu.Unlock()
}

// send runs sender sid until stop or until limit messages (0: no limit);
// target gives the recipient of message seq.
func (s *storer) send(c *conn, sid int, limit int64, target func(seq int64) string, stop <-chan struct{}) {
	buf := make([]byte, 0, 128)
	for seq := int64(1); limit == 0 || seq <= limit; seq++ {
		ts := now()
		select {
		case s.fifo[sid] <- ts:
		case <-stop:
			return
		}
		buf = append(buf[:0], "PRIVMSG "...)
		buf = append(buf, target(seq)...)
		buf = append(buf, " :"...)
		buf = appendPayload(buf, sid, seq, ts)
		buf = append(buf, '\r', '\n')
		if c.write(buf) != nil {
			return
		}
		s.sent[sid].Store(seq)
	}
}

func (s *storer) totalSent() int64 { return sum(s.sent) }

// run starts the senders, stops them after d (0: when each has sent its
// limit), and waits up to drain for the replies.
func (s *storer) run(conns []*conn, limit func(sid int) int64, target func(sid int, seq int64) string, d, drain time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for sid := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.send(conns[sid], sid, limit(sid), func(seq int64) string { return target(sid, seq) }, stop)
		}()
	}
	if d > 0 {
		time.Sleep(d)
		close(stop)
		unblockWriters(conns)
	} else {
		// Bounded anyway: a server that stops reading cannot hold us.
		for _, c := range conns {
			c.nc.SetWriteDeadline(time.Now().Add(drain))
		}
	}
	wg.Wait()
	want := s.totalSent()
	deadline := time.Now().Add(drain)
	for s.acks.load()+s.errs.load() < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// runOfflineStore: -senders accounts each send to -recipients offline
// accounts in turn, with -window messages awaiting the 301.
func runOfflineStore(o *options, cl *client, r *result) error {
	defInt(&o.senders, 100)
	defInt(&o.window, 1)
	defInt(&o.inflight, 100)
	defInt(&o.recipients, 10)
	S, R := o.senders, o.recipients
	r.int("senders", int64(S))
	r.int("window", int64(o.window))
	r.int("recipients", int64(S*R))
	s := newStorer(S, o.window)
	conns, failed, err := cl.loginAll(0, S, o.inflight, func(i int) handler { return storeHandler{s: s, sid: i} })
	defer cl.closeAll(conns)
	if failed > 0 {
		return fmt.Errorf("%d logins failed: %v", failed, err)
	}
	waitQuiet(o.pids, 30*time.Second)
	// Offline accounts follow the senders: sender i uses S+i*R .. S+i*R+R-1.
	names := make([][]string, S)
	for i := range names {
		for j := range R {
			names[i] = append(names[i], cl.nick(S+i*R+j))
		}
	}
	m := startCPU(o.pids)
	s.run(conns, func(int) int64 { return 0 },
		func(sid int, seq int64) string { return names[sid][seq%int64(R)] }, o.duration, o.drain)
	cs := m.stop()
	sent, acks, errs := s.totalSent(), s.acks.load(), s.errs.load()
	r.int("msgs", sent)
	r.int("stored", acks)
	r.int("refused", errs)
	r.int("unanswered", max(sent-acks-errs, 0))
	if cs.wall > 0 {
		r.num("stored_per_s", float64(acks)/cs.wall)
	}
	r.lat("ack", &s.lat)
	r.int("disconnects", cl.dropped.Load())
	r.cpu(cs, float64(acks), "k_msgs", 1e3, "msg")
	good := acks > 0 && acks == sent && cl.dropped.Load() == 0
	r.int("ok", b2i(good))
	if !good {
		why := s.firstErr
		if why == "" {
			why = cl.firstErr
		}
		r.str("why", why)
	}
	return nil
}

// offlineReceiver counts the replayed messages and checks each sender's
// come in order.
type offlineReceiver struct {
	nopHandler
	last      []int64
	received  atomic.Int64
	reordered atomic.Int64
	lastAt    atomic.Int64
}

func (h *offlineReceiver) message(_ *conn, text []byte, at int64) {
	sid, seq, _, ok := parsePayload(text)
	if !ok || sid < 0 || sid >= len(h.last) {
		return
	}
	if seq <= h.last[sid] {
		h.reordered.Add(1)
	} else {
		h.last[sid] = seq
	}
	h.lastAt.Store(at)
	h.received.Add(1)
}

// runOffline: -senders accounts (1..S) store -msgs messages for account 0,
// which then logs in; the replay is timed from its welcome.
func runOffline(o *options, cl *client, r *result) error {
	defInt(&o.senders, 10)
	defInt(&o.window, 16)
	defInt(&o.inflight, 100)
	S, M := min(o.senders, max(o.msgs, 1)), int64(o.msgs)
	r.int("msgs", M)
	r.int("senders", int64(S))
	s := newStorer(S, o.window)
	senders, failed, err := cl.loginAll(1, S, o.inflight, func(i int) handler { return storeHandler{s: s, sid: i} })
	if failed > 0 {
		cl.closeAll(senders)
		return fmt.Errorf("%d logins failed: %v", failed, err)
	}
	target := cl.nick(0)
	t0 := now()
	s.run(senders, func(sid int) int64 {
		n := M / int64(S)
		if int64(sid) < M%int64(S) {
			n++
		}
		return n
	}, func(int, int64) string { return target }, 0, o.timeout)
	storeS := float64(now()-t0) / 1e9
	acks, errs := s.acks.load(), s.errs.load()
	r.int("stored", acks)
	r.num("store_s", storeS)
	if storeS > 0 {
		r.num("stored_per_s", float64(acks)/storeS)
	}
	cl.closeAll(senders)
	if acks == 0 {
		why := s.firstErr
		if why == "" {
			why = "no 301 replies"
		}
		return errors.New("nothing stored: " + why)
	}
	waitQuiet(o.pids, 10*time.Second)

	h := &offlineReceiver{last: make([]int64, S)}
	m := startCPU(o.pids)
	c, err := cl.login(0, h)
	if err != nil {
		return fmt.Errorf("recipient login: %w", err)
	}
	defer cl.closeAll([]*conn{c})
	deadline := time.Now().Add(o.timeout)
	for h.received.Load() < acks && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cs := m.stop()
	got := h.received.Load()
	last := h.lastAt.Load()
	r.int("received", got)
	r.int("lost", max(acks-got, 0))
	r.int("reordered", h.reordered.Load())
	r.ms("welcome_ms", time.Duration(c.welcomeAt-c.dialAt))
	if got > 0 {
		r.ms("replay_ms", time.Duration(last-c.welcomeAt))
		r.ms("total_ms", time.Duration(last-c.dialAt))
	}
	r.cpu(cs, float64(got), "k_msgs", 1e3, "msg")
	good := errs == 0 && got == acks && acks == M && h.reordered.Load() == 0
	r.int("ok", b2i(good))
	if !good {
		r.str("why", s.firstErr+" received "+strconv.FormatInt(got, 10)+" of "+strconv.FormatInt(acks, 10))
	}
	return nil
}
