package main

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// traffic drives senders and checks what receivers get. Each message
// carries its sender, a per-sender sequence number starting at 1 and the
// send time. A message is complete once need receivers have it; in closed
// loop a sender has at most window incomplete messages.
type traffic struct {
	senders    int
	window     int
	batch      int   // closed loop: most lines per write (1: one line per write)
	need       int32 // receivers per message
	closedLoop bool
	rate       float64 // total messages/s when open loop

	sent      []atomic.Int64
	slots     [][]atomic.Int32 // per sender, receptions of message seq at seq%window
	tokens    []chan struct{}
	received  counter
	reordered atomic.Int64
	foreign   atomic.Int64 // benchmark lines from unexpected senders
	lat       hist
}

func newTraffic(senders, window, batch int, need int32, rate float64) *traffic {
	t := &traffic{senders: senders, window: window, batch: max(batch, 1), need: need, closedLoop: rate <= 0, rate: rate,
		sent: make([]atomic.Int64, senders), tokens: make([]chan struct{}, senders)}
	if t.closedLoop {
		t.slots = make([][]atomic.Int32, senders)
		for i := range t.tokens {
			t.tokens[i] = make(chan struct{}, window)
			for range window {
				t.tokens[i] <- struct{}{}
			}
			if need > 1 {
				t.slots[i] = make([]atomic.Int32, window)
			}
		}
	}
	return t
}

// receiver is one connection's view: the last sequence number seen from
// each sender it hears from (senders base .. base+len(last)-1).
type receiver struct {
	t     *traffic
	shard int
	base  int
	last  []int64
}

func (rc *receiver) message(_ *conn, text []byte, at int64) {
	sid, seq, ts, ok := parsePayload(text)
	t := rc.t
	if !ok {
		return
	}
	i := sid - rc.base
	if i < 0 || i >= len(rc.last) {
		t.foreign.Add(1)
		return
	}
	t.lat.record(rc.shard, at-ts)
	t.received.add(rc.shard, 1)
	if seq <= rc.last[i] {
		t.reordered.Add(1)
	} else {
		rc.last[i] = seq
	}
	if !t.closedLoop {
		return
	}
	if t.need == 1 || t.slots[sid][seq%int64(t.window)].Add(1) == t.need {
		// Completion is in sequence order (every receiver gets a sender's
		// messages in order), so this frees the oldest slot.
		select {
		case t.tokens[sid] <- struct{}{}:
		default:
		}
	}
}

func (rc *receiver) reply(*conn, string, int64) {}
func (rc *receiver) pong(*conn, []byte, int64)  {}

// maxBatch bounds -batch: how many messages a closed-loop sender may
// write at once when several window slots are free. By default (-batch 1)
// it writes each line on its own, as an IRC client does: a client writes
// a line when its user sends it, so a server sees a wake-up and a read()
// per line. Writing up to 32 lines at once, as the tool did before, let
// the server parse a whole batch per read and made its CPU per message
// look lower (BENCHMARKS.md, "Why figures differ").
const maxBatch = 32

// send runs sender sid on c until stop: each message is
// "PRIVMSG <target> :~b <sid> <seq> <sent-ns>".
func (t *traffic) send(c *conn, sid int, target string, stop <-chan struct{}, start time.Time) {
	hdr := []byte("PRIVMSG " + target + " :")
	buf := make([]byte, 0, maxBatch*(len(hdr)+48))
	var seq int64
	if !t.closedLoop {
		// Senders are spread evenly over the interval.
		interval := time.Duration(float64(t.senders) / t.rate * 1e9)
		next := start.Add(interval * time.Duration(sid) / time.Duration(t.senders))
		for sleepUntil(next, stop) {
			seq++
			buf = append(buf[:0], hdr...)
			buf = appendPayload(buf, sid, seq, now())
			buf = append(buf, '\r', '\n')
			if c.write(buf) != nil {
				return
			}
			t.sent[sid].Store(seq)
			next = next.Add(interval)
		}
		return
	}
	for {
		select {
		case <-t.tokens[sid]:
		case <-stop:
			return
		}
		nb := 1
	more:
		for nb < t.batch {
			select {
			case <-t.tokens[sid]:
				nb++
			default:
				break more
			}
		}
		buf = buf[:0]
		ts := now()
		for range nb {
			seq++
			if t.slots != nil && t.slots[sid] != nil {
				t.slots[sid][seq%int64(t.window)].Store(0)
			}
			buf = append(buf, hdr...)
			buf = appendPayload(buf, sid, seq, ts)
			buf = append(buf, '\r', '\n')
		}
		if c.write(buf) != nil {
			return
		}
		t.sent[sid].Store(seq)
	}
}

func (t *traffic) totalSent() int64 { return sum(t.sent) }

// sum adds up per-sender counters.
func sum(counters []atomic.Int64) int64 {
	var n int64
	for i := range counters {
		n += counters[i].Load()
	}
	return n
}

// run starts one goroutine per sender for d, waits for them, then up to
// drain for the messages still in flight. It returns the measured CPU
// interval (sending plus draining).
func (t *traffic) run(pids procs, conns []*conn, targets []string, d, drain time.Duration) cpuSample {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	m := startCPU(pids)
	start := time.Now()
	for sid := range t.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.send(conns[sid], sid, targets[sid], stop, start)
		}()
	}
	time.Sleep(d)
	close(stop)
	unblockWriters(conns[:t.senders])
	wg.Wait()
	want := t.totalSent() * int64(t.need)
	deadline := time.Now().Add(drain)
	for t.received.load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return m.stop()
}

// report adds the common traffic results.
func (t *traffic) report(r *result, s cpuSample, cl *client) bool {
	msgs := t.totalSent()
	want := msgs * int64(t.need)
	got := t.received.load()
	lost := max(want-got, 0)
	r.int("msgs", msgs)
	r.int("deliveries", got)
	if s.wall > 0 {
		r.num("msgs_per_s", float64(msgs)/s.wall)
		r.num("deliveries_per_s", float64(got)/s.wall)
	}
	r.lat("lat", &t.lat)
	r.int("lost", lost)
	r.int("reordered", t.reordered.Load())
	if f := t.foreign.Load(); f > 0 {
		r.int("misrouted", f)
	}
	r.int("disconnects", cl.dropped.Load())
	r.cpu(s, float64(got), "M_deliveries", 1e6, "delivery")
	good := lost == 0 && t.reordered.Load() == 0 && t.foreign.Load() == 0 && cl.dropped.Load() == 0 && msgs > 0
	r.int("ok", b2i(good))
	if cl.firstErr != "" {
		r.str("why", cl.firstErr)
	}
	return good
}

// runFanout: n members, the first -senders of them sending to the channel.
func runFanout(o *options, cl *client, r *result) error {
	if o.n < 2 {
		return errors.New("fanout needs -n of at least 2")
	}
	defInt(&o.senders, 10)
	defInt(&o.window, 10)
	defInt(&o.inflight, 100)
	k := min(o.senders, o.n)
	t := newTraffic(k, o.window, o.batch, int32(o.n-1), o.rate)
	r.int("n", int64(o.n))
	r.int("senders", int64(k))
	if t.closedLoop {
		r.int("window", int64(o.window))
		r.int("batch", int64(t.batch))
	} else {
		r.num("rate", o.rate)
	}
	conns, failed, err := cl.loginAll(0, o.n, o.inflight, func(i int) handler {
		return &receiver{t: t, shard: i, base: 0, last: make([]int64, k)}
	})
	defer cl.closeAll(conns)
	if failed > 0 {
		return fmt.Errorf("%d logins failed: %v", failed, err)
	}
	waitQuiet(o.pids, 30*time.Second) // let JOIN announcements flush
	targets := make([]string, k)
	for i := range targets {
		targets[i] = o.channel
	}
	s := t.run(o.pids, conns, targets, o.duration, o.drain)
	t.report(r, s, cl)
	return nil
}

// runPrivmsg: n/2 pairs; member i sends to member i+n/2.
func runPrivmsg(o *options, cl *client, r *result) error {
	pairs := o.n / 2
	if pairs < 1 {
		return errors.New("privmsg needs -n of at least 2")
	}
	defInt(&o.window, 100)
	defInt(&o.inflight, 100)
	t := newTraffic(pairs, o.window, o.batch, 1, 0)
	r.int("n", int64(2*pairs))
	r.int("pairs", int64(pairs))
	r.int("window", int64(o.window))
	r.int("batch", int64(t.batch))
	conns, failed, err := cl.loginAll(0, 2*pairs, o.inflight, func(i int) handler {
		if i < pairs {
			return &receiver{t: t, shard: i, base: -1} // senders hear nothing
		}
		return &receiver{t: t, shard: i, base: i - pairs, last: make([]int64, 1)}
	})
	defer cl.closeAll(conns)
	if failed > 0 {
		return fmt.Errorf("%d logins failed: %v", failed, err)
	}
	waitQuiet(o.pids, 30*time.Second)
	targets := make([]string, pairs)
	for i := range targets {
		targets[i] = conns[pairs+i].nick
	}
	s := t.run(o.pids, conns, targets, o.duration, o.drain)
	t.report(r, s, cl)
	return nil
}
