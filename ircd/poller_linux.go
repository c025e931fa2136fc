//go:build linux

package ircd

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// poller watches plaintext connections with one epoll set per event
// loop, one loop per CPU (GOMAXPROCS), so that an idle client costs no
// goroutine (a parked reader's stack was most of what an idle connection
// cost) and a busy one costs no hand-off between threads.
//
// A loop reads and handles a ready connection's lines on its own
// goroutine, as long as each line is one that cannot wait: a message to
// the channel or to a session on this node (client.handle). It then writes
// every queue the pass filled once (the loop's writeBatch), as a C event
// loop would. A connection that is not logged in yet (bcrypt), a line
// that may wait (storing an offline message, another node, flood
// control's delay, any other command), and the end of a connection go to
// a pump goroutine (client.pump), which reads and handles the connection
// until its socket is dry and then gives it back to the loop.
// Edge-triggered, so nothing needs re-arming.
//
// Each epoll descriptor is itself watched by Go's runtime poller (an
// epoll set is readable while it has events), so a loop with nothing to
// do parks like any reader instead of holding a thread in epoll_wait
// (which, measured, cost about 70 µs of latency per wake-up: the pump a
// blocked thread started waited on the P that thread still held).
type poller struct {
	loops []*evLoop
	next  atomic.Uint32 // round robin over loops for attach
	done  chan struct{} // closed when the poller is closed or failed

	// Pump goroutines wait here for the next connection when done (at
	// most maxParkedPumps of them), so a hand-off seldom starts a
	// goroutine, which would grow a new stack each time.
	handoff chan *client
	parked  atomic.Int32

	// onFail is called if a loop ends without close: with the error and
	// the clients that were attached to it, which nothing reads any more.
	onFail func(err error, stranded []*client)
	once   sync.Once
}

// evLoop is one event loop: an epoll set and the goroutine that waits on
// it.
type evLoop struct {
	p    *poller
	epfd int
	file *os.File // epfd, registered with the runtime poller

	mu     sync.Mutex
	byFD   []*client // indexed by descriptor
	gen    uint32    // last generation handed out
	closed bool
	done   chan struct{}

	batch *writeBatch  // the queues one pass filled, written when it ends
	naps  atomic.Int64 // passes that ended with a nap (for tests)
}

// epollET is EPOLLET as the event mask's type (syscall declares it negative).
const epollET = 1 << 31

// newPoller starts loops event loops (at least one).
func newPoller(loops int, onFail func(error, []*client)) (*poller, error) {
	p := &poller{done: make(chan struct{}), onFail: onFail, handoff: make(chan *client)}
	for range max(loops, 1) {
		l, err := p.newLoop()
		if err != nil {
			p.close()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	return p, nil
}

func (p *poller) newLoop() (*evLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	l := &evLoop{p: p, epfd: epfd, file: os.NewFile(uintptr(epfd), "epoll"), done: make(chan struct{}),
		batch: writeBatches.Get().(*writeBatch)} // kept for the loop's life
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.file.Close()
		return nil, err
	}
	go l.run(rc)
	return l, nil
}

// attach puts c's connection in a loop's set. It reports false (and
// changes nothing) if nc is not a plain socket or every loop has failed;
// the caller then gives the client a reader goroutine.
func (p *poller) attach(c *client, nc net.Conn) bool {
	start := p.next.Add(1)
	for i := range uint32(len(p.loops)) {
		if p.loops[(start+i)%uint32(len(p.loops))].attach(c, nc) {
			return true
		}
	}
	return false
}

func (l *evLoop) attach(c *client, nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Everything a kick uses is set before the descriptor can fire.
	c.poll, c.loop, c.rc = l.p, l, rc
	c.lr.r, c.lr.polled = rawReader{rc}, true
	c.out.onClose = c.kick
	var added bool
	err = rc.Control(func(fd uintptr) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			return
		}
		if l.gen++; l.gen == 0 {
			l.gen = 1
		}
		c.fd, c.gen = int32(fd), l.gen
		for int(fd) >= len(l.byFD) {
			l.byFD = append(l.byFD, make([]*client, len(l.byFD)+64)...)
		}
		l.byFD[fd] = c
		// The 64-bit user data carries the descriptor and a generation,
		// so an event still in flight for a closed connection cannot kick
		// the next one to get the same descriptor number. A socket that
		// is readable already is reported at once.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd), Pad: int32(c.gen)}
		if syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			l.byFD[fd] = nil
			return
		}
		added = true
	})
	if err != nil || !added {
		c.poll, c.loop, c.rc, c.lr.r, c.lr.polled, c.out.onClose = nil, nil, nil, nc, false, nil
		return false
	}
	return true
}

// maxParkedPumps bounds the pump goroutines kept waiting for a connection
// (each keeps the stack it grew).
const maxParkedPumps = 4

// run pumps c (whose pump state the caller set to running) on a waiting
// pump goroutine, or a new one if none waits.
func (p *poller) run(c *client) {
	select {
	case p.handoff <- c:
	default:
		go p.worker(c)
	}
}

// worker pumps c, then waits for the next connection to pump, unless
// enough workers wait already or the poller is gone.
func (p *poller) worker(c *client) {
	for {
		c.pump()
		c = nil
		if p.parked.Add(1) > maxParkedPumps {
			p.parked.Add(-1)
			return
		}
		select {
		case c = <-p.handoff:
			p.parked.Add(-1)
		case <-p.done:
			p.parked.Add(-1)
			return
		}
	}
}

// detach takes c out of its loop's set; its connection is about to close.
func (p *poller) detach(c *client) {
	l := c.loop
	// Control fails if the socket is closed already, which also took it
	// out of the epoll set; otherwise the descriptor is still c's.
	c.rc.Control(func(fd uintptr) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed {
			syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		}
	})
	l.mu.Lock()
	if int(c.fd) < len(l.byFD) && l.byFD[c.fd] == c {
		l.byFD[c.fd] = nil
	}
	l.mu.Unlock()
}

// close stops the loops. Clients still attached are no longer read.
func (p *poller) close() {
	p.once.Do(func() { close(p.done) })
	for _, l := range p.loops {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			continue
		}
		l.closed = true // no EpollCtl from now on: the descriptor is going
		l.mu.Unlock()
		l.file.Close() // wakes the loop's Read with an error
		<-l.done
	}
}

// passLines bounds the lines a pass handles before it writes what they
// queued, so that a pass over many busy senders does not hold their
// recipients' lines back for long.
const passLines = 1024

func (l *evLoop) run(rc syscall.RawConn) {
	defer close(l.done)
	events := make([]syscall.EpollEvent, 256)
	var n int
	var waitErr error
	// wait returns false (park until the set is readable) if no event is
	// ready, true with n events, or true on an error: closed, or not
	// expected with a valid set.
	wait := func(fd uintptr) bool {
		for {
			n, waitErr = epollPoll(fd, events)
			if waitErr != syscall.EINTR {
				return n > 0 || waitErr != nil
			}
		}
	}
	poll := func(fd uintptr) { wait(fd) }
	// again: connections that had more to read when their visit ended.
	var todo, again []*client
	for {
		var err error
		if len(again) > 0 {
			err = rc.Control(poll) // look for others, but do not park
		} else {
			err = rc.Read(wait)
		}
		if err == nil {
			err = waitErr
		}
		if err != nil {
			for _, c := range again {
				c.poll.run(c) // a pump reads them now (and cleans up after fail's quit)
			}
			l.fail(err)
			return
		}
		todo = append(todo[:0], again...)
		clear(again)
		again = again[:0]
		l.mu.Lock()
		for _, ev := range events[:n] {
			if int(ev.Fd) < len(l.byFD) {
				if c := l.byFD[ev.Fd]; c != nil && c.gen == uint32(ev.Pad) && c.claim() {
					todo = append(todo, c)
				}
			}
		}
		l.mu.Unlock()
		n = 0
		lines, passTotal := 0, 0
		for i, c := range todo {
			todo[i] = nil
			more, handled := c.loopPump(l.batch)
			if more {
				again = append(again, c)
			}
			passTotal += handled
			if lines += handled; lines >= passLines {
				l.batch.flush()
				lines = 0
			}
		}
		l.batch.flush()
		// A pass of one line does not nap: a lone message, or a client
		// that waits for each answer (a bot, a test), never waits for
		// one. Nor does a loop that is behind: some connection then still
		// has lines when the pass ends (again).
		if passTotal > 1 && len(again) == 0 {
			l.naps.Add(1)
			nap(loopNap)
		}
	}
}

// loopNap is how long a loop waits after a pass that handled lines, before
// it looks for more. Under load a client's lines arrive a few at a time
// (a client writes each line as it is typed or sent), and a loop that
// comes straight back reads them a few at a time: per two or three lines
// a read, a write to the recipient and the kernel's ACK, each a system
// call or a packet. Measured on privmsg-1000 (BENCHMARKS.md), a nap of
// 100–500 µs halves the reads and writes per message and cuts the CPU
// per message by a fifth to a quarter, at the same throughput. Lines
// that arrive during a nap wait for its end; nothing else does.
const loopNap = 500 * time.Microsecond

// nap lets other goroutines run and then, for what is left of d, sleeps
// on the loop's thread. Not time.Sleep: every line that arrives meanwhile
// makes the loop's epoll set readable, and that wakes the runtime's
// poller, which costs what the nap saves. The thread keeps its P for the
// nap (a raw call), so with one CPU nothing else runs in it: at most d.
func nap(d time.Duration) {
	start := time.Now()
	runtime.Gosched()
	if rest := d - time.Since(start); rest > 0 {
		ts := syscall.NsecToTimespec(int64(rest))
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
	}
}

// fail handles a loop ending other than through close (which no valid
// set should do): the set is given up, so attach passes it by, and the
// clients in it go to onFail, since nothing would read them again.
func (l *evLoop) fail(err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	var stranded []*client
	for fd, c := range l.byFD {
		if c != nil {
			stranded = append(stranded, c)
			l.byFD[fd] = nil
		}
	}
	l.mu.Unlock()
	l.file.Close()
	if l.p.onFail != nil {
		l.p.onFail(err, stranded)
	}
}

// fail fails every loop (for tests: what an epoll_wait error does).
func (p *poller) fail(err error) {
	for _, l := range p.loops {
		l.fail(err)
	}
}

// rawReader reads what the socket holds without ever waiting: no data is
// errWouldBlock, and the pump goes back to the poller.
type rawReader struct{ rc syscall.RawConn }

func (r rawReader) Read(b []byte) (int, error) {
	var n int
	var errno error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = rawRead(fd, b)
			if errno != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err // closed
	case errno == syscall.EAGAIN:
		return 0, errWouldBlock
	case errno != nil:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// The system calls an event loop makes never wait (the sockets and the
// epoll sets are non-blocking), so they are made without telling the
// scheduler (RawSyscall). Told, it counts the P as in a system call, and
// with every P busy its monitor thread takes the P away from a loop whose
// call spans two of its 20 µs ticks (a write to loopback runs the
// receiver's TCP too), and keeps waking every 20 µs to check: measured,
// 12% of the server's time under private messages went to that thread.

// rawRead is read(2) on a non-blocking socket.
func rawRead(fd uintptr, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// sysWrite is write(2) on a polled (non-blocking) socket, for a writeBatch.
func sysWrite(fd uintptr, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// epollPoll is epoll_wait(2) with a zero timeout (as epoll_pwait, which
// every Linux architecture has).
func epollPoll(fd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
