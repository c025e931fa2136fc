package ircd

import (
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// sendQueue holds encoded lines waiting for one connection's socket. No
// goroutine is parked on it: the first enqueue after the queue ran dry
// starts a short-lived flusher that writes everything queued with one
// writev per round and exits when the queue is empty. Lines are shared,
// immutable byte slices (a broadcast is encoded once per form).
type sendQueue struct {
	conn    net.Conn
	limit   int
	timeout time.Duration // per-write deadline, so a dead peer cannot pin a flusher

	mu       sync.Mutex
	lines    [][]byte
	bytes    int
	deadline time.Time // the socket's write deadline
	writing  int       // bytes of the batch being written now
	flushing bool
	closing  bool // no more lines accepted; close the socket after the last flush
	closed   bool
	onFull   func() // called (once, without locks held) when the limit is passed
	onClose  func() // if set, called after the socket is closed (a polled client must notice)
	done     chan struct{}

	// own holds the lines copied in (pushCopy): a pooled buffer filled
	// from the start (its length is what is used); ownFull, the ones
	// filled before it. All go back to the pool when the queue runs dry.
	own     []byte
	ownFull [][]byte

	deferred *deferredFlush // where pushDeferred lists the queue (nil: flush at once)
	listed   bool           // waiting in deferred's list
}

func newSendQueue(conn net.Conn, limit int, timeout time.Duration, onFull func()) *sendQueue {
	return &sendQueue{conn: conn, limit: limit, timeout: timeout, onFull: onFull, done: make(chan struct{})}
}

// push queues one line. It never blocks on the network. It reports false
// if the connection is closing and the line was not taken.
func (q *sendQueue) push(line []byte) bool { return q.enqueue(line, false, nil, nil, false) }

// pushBatched is push to c (whose queue q is) from a reader goroutine
// handling a run of lines: if q needs a flush and c's socket is polled
// (c.rc), q is listed in b, which writes it when the run ends, instead of
// starting a flusher goroutine per queue and line. b may be nil (push).
func (c *client) pushBatched(line []byte, b *writeBatch) bool {
	return c.out.enqueue(line, false, b, c.rc, false)
}

// pushCopy is pushBatched for a line the caller reuses (an encoding
// scratch buffer): the queue copies it into a buffer of its own.
func (c *client) pushCopy(line []byte, b *writeBatch) bool {
	return c.out.enqueue(line, false, b, c.rc, true)
}

// pushDeferred queues a line nobody is waiting for (a JOIN or QUIT
// announcement): it goes out with the next line pushed, or when the
// deferred timer fires, so a burst of them costs each member one write
// per timer period instead of one per line.
func (q *sendQueue) pushDeferred(line []byte) bool {
	return q.enqueue(line, q.deferred != nil, nil, nil, false)
}

// enqueue queues line. With copyIn the line is copied into the queue's
// own buffer (the caller may reuse it); otherwise the queue keeps it.
func (q *sendQueue) enqueue(line []byte, deferred bool, b *writeBatch, raw syscall.RawConn, copyIn bool) bool {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	if q.limit > 0 && q.bytes+len(line) > q.limit {
		// Drop what is queued: the peer is not reading, and the ERROR
		// line that follows must not wait behind megabytes of backlog.
		// A write already blocked on this peer gets a short deadline too.
		q.lines, q.bytes = nil, 0
		q.timeout = time.Second
		q.deadline = time.Now().Add(q.timeout)
		q.conn.SetWriteDeadline(q.deadline)
		onFull := q.onFull
		q.onFull = nil
		q.mu.Unlock()
		if onFull != nil {
			onFull()
		}
		return false
	}
	if q.lines == nil {
		q.lines = getLines()
	}
	if copyIn {
		line = q.copyIn(line)
	}
	q.lines = append(q.lines, line)
	q.bytes += len(line)
	// A running flusher takes the line either way. Otherwise an ordinary
	// line starts one, and a deferred line lists the queue for the timer.
	var start, list, batched bool
	if !q.flushing {
		switch {
		case deferred:
			list, q.listed = !q.listed, true
		case b != nil && raw != nil:
			batched, q.flushing = true, true
		default:
			start, q.flushing = true, true
		}
	}
	q.mu.Unlock()
	if start {
		go q.flush()
	}
	if batched {
		b.queues = append(b.queues, batchedQueue{q, raw})
	}
	if list {
		q.deferred.add(q)
	}
	return true
}

// flushDeferred starts a flusher for lines pushDeferred left queued.
func (q *sendQueue) flushDeferred() {
	q.mu.Lock()
	q.listed = false
	start := !q.flushing && len(q.lines) > 0
	q.flushing = q.flushing || start
	q.mu.Unlock()
	if start {
		go q.flushQueued() // nothing to wait for: the timer queues nothing more
	}
}

// deferredFlush is one server's timer for deferred lines: the first queue
// listed arms it, and when it fires every listed queue is flushed. No
// goroutine waits while nothing is listed.
//
// Each firing costs a write per listed queue. In a login storm into a
// room of thousands those writes were most of the server's work (a 20 ms
// period meant 500,000 writes a second at 10,000 members), so the period
// grows with the size of the last firing, keeping the writes near
// deferredWritesPerSec: 20 ms up to 1,000 listed queues, 200 ms at
// 10,000. A JOIN seen 200 ms late in a room that size goes unnoticed.
type deferredFlush struct {
	delay  time.Duration // the shortest period
	mu     sync.Mutex
	queues []*sendQueue
	armed  bool
	period time.Duration // the next one, from the last firing's size
}

const (
	deferredWritesPerSec = 50_000
	maxDeferredPeriod    = 250 * time.Millisecond
)

func (d *deferredFlush) add(q *sendQueue) {
	d.mu.Lock()
	d.queues = append(d.queues, q)
	arm := !d.armed
	d.armed = true
	period := max(d.period, d.delay)
	d.mu.Unlock()
	if arm {
		time.AfterFunc(period, d.fire)
	}
}

func (d *deferredFlush) fire() {
	d.mu.Lock()
	queues := d.queues
	d.queues, d.armed = nil, false
	d.period = min(time.Duration(len(queues))*time.Second/deferredWritesPerSec, maxDeferredPeriod)
	d.mu.Unlock()
	for _, q := range queues {
		q.flushDeferred()
	}
}

// closeAfter queues a final line (may be nil) and closes the socket once
// everything before it is written.
func (q *sendQueue) closeAfter(last []byte) {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return
	}
	if last != nil {
		q.lines = append(q.lines, last)
		q.bytes += len(last)
	}
	q.closing = true
	start := !q.flushing
	q.flushing = true
	q.mu.Unlock()
	if start {
		go q.flush()
	}
}

// lineSlices recycles the slices lines are queued in: a queue that runs
// dry gives its slice back, so an idle connection holds none, and a busy
// one does not grow a new one from nothing on every burst. Slices that
// grew for a burst go back too (up to maxPooledLines): a busy queue's
// next burst is usually as large. Boxing the slice header for the pool
// costs a 24-byte allocation per put, far less than regrowing.
var lineSlices sync.Pool

const maxPooledLines = 1024

// ownBufSize is the size of a queue's own buffers (sendQueue.own): about
// a hundred private lines, more than one recipient usually gets in an
// event loop's pass.
const ownBufSize = 8192

var ownBufs = sync.Pool{New: func() any { return new([ownBufSize]byte) }}

// copyIn copies line into q's own buffer and returns the copy; q.mu is
// held. Private lines are encoded once per recipient, so this saves an
// allocation per line (and the collector's work for it) over queueing a
// line of its own.
func (q *sendQueue) copyIn(line []byte) []byte {
	if len(line) > ownBufSize/4 {
		return append([]byte(nil), line...)
	}
	if cap(q.own)-len(q.own) < len(line) {
		if q.own != nil {
			q.ownFull = append(q.ownFull, q.own)
		}
		q.own = ownBufs.Get().(*[ownBufSize]byte)[:0]
	}
	start := len(q.own)
	q.own = append(q.own, line...)
	return q.own[start:len(q.own):len(q.own)]
}

// dropOwn gives q's own buffers back to the pool; q.mu is held, and no
// queued line or write in progress refers to them any more (the queue is
// dry and its flusher done with what it wrote).
func (q *sendQueue) dropOwn() {
	if q.own == nil {
		return
	}
	putOwn(q.own)
	for _, b := range q.ownFull {
		putOwn(b)
	}
	clear(q.ownFull)
	q.own, q.ownFull = nil, q.ownFull[:0]
}

func putOwn(b []byte) { ownBufs.Put((*[ownBufSize]byte)(b[:ownBufSize])) }

func getLines() [][]byte {
	if p, ok := lineSlices.Get().(*[][]byte); ok {
		return *p
	}
	return make([][]byte, 0, 64)
}

func putLines(l [][]byte) {
	if cap(l) == 0 || cap(l) > maxPooledLines {
		return
	}
	l = l[:0]
	lineSlices.Put(&l)
}

// flushBufs are the buffers flushers copy queued lines into. Writing one
// contiguous buffer costs one copy but no per-connection state: writev
// would make each socket keep an iovec array as large as its biggest
// batch, for as long as the connection lives.
var flushBufs = sync.Pool{New: func() any { b := make([]byte, 0, flushBufSize); return &b }}

const flushBufSize = 32 << 10

func (q *sendQueue) flush() {
	// Let the goroutine that woke us (a broadcast, a login burst) run on
	// first: lines it queues meanwhile go out in this same write. Under
	// load this turns one write per line into one per many lines; idle,
	// it costs a scheduler round, microseconds.
	runtime.Gosched()
	q.flushQueued()
}

// flushQueued writes until the queue is empty; the caller set flushing.
func (q *sendQueue) flushQueued() {
	var spare [][]byte
	for {
		q.mu.Lock()
		q.writing = 0
		if len(q.lines) == 0 {
			// Both slices go back: an idle connection holds none.
			putLines(spare)
			putLines(q.lines)
			q.lines = nil
			q.dropOwn()
			q.flushing = false
			finish := q.closing && !q.closed
			if finish {
				q.closed = true
			}
			q.mu.Unlock()
			if finish {
				q.conn.Close()
				close(q.done)
				q.closedHook()
			}
			return
		}
		batch := q.lines
		q.writing = q.bytes
		q.lines, q.bytes = spare[:0], 0
		// A deadline with at least half the timeout left is kept: moving
		// it costs a timer update per write, and a dead peer is still
		// found within one timeout.
		var deadline time.Time
		if q.timeout > 0 && time.Until(q.deadline) < q.timeout/2 {
			q.deadline = time.Now().Add(q.timeout)
			deadline = q.deadline
		}
		q.mu.Unlock()

		if !deadline.IsZero() {
			q.conn.SetWriteDeadline(deadline)
		}
		if err := q.write(batch); err != nil {
			q.mu.Lock()
			q.lines, q.bytes, q.closing = nil, 0, true
			q.mu.Unlock()
			// Closing the socket wakes the reader, which cleans up.
			q.conn.Close()
			q.closedHook()
		}
		clear(batch)
		spare = batch
	}
}

// write sends lines with as few write calls as fit in pooled buffers.
func (q *sendQueue) write(lines [][]byte) error {
	bp := flushBufs.Get().(*[]byte)
	defer flushBufs.Put(bp)
	buf := (*bp)[:0]
	for _, l := range lines {
		if len(buf)+len(l) > flushBufSize && len(buf) > 0 {
			if _, err := q.conn.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if len(l) > flushBufSize {
			if _, err := q.conn.Write(l); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, l...)
	}
	if len(buf) > 0 {
		_, err := q.conn.Write(buf)
		return err
	}
	return nil
}

// backlog is how many bytes are queued or being written, and whether a
// flusher is at work (holding a 32 KB buffer while it writes).
func (q *sendQueue) backlog() (bytes int, busy bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes + q.writing, q.flushing
}

func (q *sendQueue) closedHook() {
	if q.onClose != nil {
		q.onClose()
	}
}

// writeBatch is the send queues a reader goroutine (a poller's pump) made
// due for a flush while handling a run of lines: when the run ends they
// are written from that goroutine, one write per socket per run, as an
// event loop would, with no flusher goroutine to start and wake. A socket
// that takes less than all of it gets a flusher goroutine for the rest,
// which waits for it as usual. A queue in the batch is "flushing", so no
// one else writes it meanwhile and the order of its lines holds.
type writeBatch struct {
	queues []batchedQueue

	// enc is scratch space for encoding a line that is copied into its
	// queue (pushCopy).
	enc []byte

	// One write's arguments and results, for writeFD (bound once as
	// writeFn, so a write allocates no closure).
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

type batchedQueue struct {
	q   *sendQueue
	raw syscall.RawConn // its polled socket
}

// maxBatchLines bounds how many lines a pump handles before it writes
// what they queued, so a busy sender does not hold its recipients' lines
// back for long.
const maxBatchLines = 64

var writeBatches = sync.Pool{New: func() any {
	b := new(writeBatch)
	b.writeFn = b.writeFD
	return b
}}

// flush writes every listed queue and empties the list.
func (b *writeBatch) flush() {
	if len(b.queues) == 0 {
		return
	}
	bp := flushBufs.Get().(*[]byte)
	for i, e := range b.queues {
		e.q.flushDirect(b, e.raw, bp)
		b.queues[i] = batchedQueue{}
	}
	flushBufs.Put(bp)
	b.queues = b.queues[:0]
}

// flushDirect writes q's lines without blocking, from the goroutine that
// listed q in a batch (q.flushing is set for it). What the socket does
// not take goes back to the front of the queue for a flusher goroutine.
func (q *sendQueue) flushDirect(b *writeBatch, raw syscall.RawConn, bp *[]byte) {
	for {
		q.mu.Lock()
		q.writing = 0
		if q.closing {
			// The end of the connection, which flushQueued handles (it
			// closes the socket): it takes over the flushing set here.
			q.mu.Unlock()
			go q.flushQueued()
			return
		}
		if len(q.lines) == 0 {
			putLines(q.lines)
			q.lines = nil
			q.dropOwn()
			q.flushing = false
			q.mu.Unlock()
			return
		}
		lines := q.lines
		q.writing = q.bytes
		q.lines, q.bytes = nil, 0
		q.mu.Unlock()

		buf := (*bp)[:0]
		used := 0
		for _, l := range lines {
			if len(buf)+len(l) > flushBufSize && len(buf) > 0 {
				break
			}
			if len(l) > flushBufSize {
				break
			}
			buf = append(buf, l...)
			used++
		}
		n := 0
		if len(buf) > 0 {
			n = b.write(raw, buf)
		}
		if n == len(buf) && used == len(lines) && used > 0 {
			clear(lines)
			putLines(lines)
			continue // more may have been queued meanwhile
		}
		// The socket is full (or failed, or a line is too big for the
		// buffer): the rest goes back in front of what was queued since,
		// and a flusher goroutine waits for the socket.
		rest := make([][]byte, 0, 1+len(lines)-used)
		if n < len(buf) {
			rest = append(rest, append([]byte(nil), buf[n:]...))
		}
		rest = append(rest, lines[used:]...)
		clear(lines)
		putLines(lines)
		q.mu.Lock()
		size := 0
		for _, l := range rest {
			size += len(l)
		}
		q.lines = append(rest, q.lines...)
		q.bytes += size
		q.mu.Unlock()
		go q.flushQueued()
		return
	}
}

// write writes buf to a non-blocking socket once and returns how much it
// took: 0 if it is full, closed or failed (a flusher goroutine then finds
// out which).
func (b *writeBatch) write(rc syscall.RawConn, buf []byte) int {
	b.wbuf, b.wn, b.werr = buf, 0, nil
	err := rc.Write(b.writeFn)
	n, errno := b.wn, b.werr
	b.wbuf, b.werr = nil, nil
	if err != nil || errno != nil || n < 0 {
		return 0
	}
	return n
}

func (b *writeBatch) writeFD(fd uintptr) bool {
	for {
		b.wn, b.werr = sysWrite(fd, b.wbuf)
		if b.werr != syscall.EINTR {
			return true
		}
	}
}
