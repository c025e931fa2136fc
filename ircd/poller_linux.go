//go:build linux

package ircd

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// poller watches idle plaintext connections with one epoll set, so that an
// idle client costs no goroutine (a parked reader's stack was most of what
// an idle connection cost). A connection becoming readable is "kicked": a
// short-lived goroutine (client.pump) reads and handles everything that
// arrived and exits. Edge-triggered, so nothing needs re-arming.
//
// The epoll descriptor is itself watched by Go's runtime poller (an epoll
// set is readable while it has events), so the loop goroutine parks like
// any reader instead of holding a thread in epoll_wait, and is woken by
// the scheduler with no extra hop. Blocking in epoll_wait on a thread of
// our own cost about 70 µs of latency per wake-up: the pump it started
// waited on a P that the blocked thread still held.
type poller struct {
	epfd int
	file *os.File // epfd, registered with the runtime poller

	mu     sync.Mutex
	byFD   []*client // indexed by descriptor
	gen    uint32    // last generation handed out
	closed bool
	done   chan struct{}

	// Pumps run on worker goroutines that wait here for the next
	// connection when done (at most maxParkedPumps of them), so a wake-up
	// seldom starts a goroutine, which would grow a new stack each time.
	handoff chan *client
	parked  atomic.Int32

	// onFail is called (from the loop) if the loop ends without close:
	// with the error and the clients that were attached, which nothing
	// reads any more.
	onFail func(err error, stranded []*client)
}

// epollET is EPOLLET as the event mask's type (syscall declares it negative).
const epollET = 1 << 31

func newPoller(onFail func(error, []*client)) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	p := &poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "epoll"), done: make(chan struct{}), onFail: onFail,
		handoff: make(chan *client)}
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return nil, err
	}
	go p.loop(rc)
	return p, nil
}

// attach puts c's connection in the set. It reports false (and changes
// nothing) if nc is not a plain socket; the caller then gives the client
// a reader goroutine.
func (p *poller) attach(c *client, nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Everything a kick uses is set before the descriptor can fire.
	c.poll, c.rc = p, rc
	c.lr.r, c.lr.polled = rawReader{rc}, true
	c.out.onClose = c.kick
	var added bool
	err = rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return
		}
		if p.gen++; p.gen == 0 {
			p.gen = 1
		}
		c.fd, c.gen = int32(fd), p.gen
		for int(fd) >= len(p.byFD) {
			p.byFD = append(p.byFD, make([]*client, len(p.byFD)+64)...)
		}
		p.byFD[fd] = c
		// The 64-bit user data carries the descriptor and a generation,
		// so an event still in flight for a closed connection cannot kick
		// the next one to get the same descriptor number. A socket that
		// is readable already is reported at once.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd), Pad: int32(c.gen)}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			p.byFD[fd] = nil
			return
		}
		added = true
	})
	if err != nil || !added {
		c.poll, c.rc, c.lr.r, c.lr.polled, c.out.onClose = nil, nil, nc, false, nil
		return false
	}
	return true
}

// maxParkedPumps bounds the worker goroutines kept waiting for a
// connection to pump (each keeps the stack it grew).
const maxParkedPumps = 4

// run pumps c (whose pump state the caller set to running) on a waiting
// worker goroutine, or a new one if none waits.
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

// detach takes c out of the set; its connection is about to close.
func (p *poller) detach(c *client) {
	// Control fails if the socket is closed already, which also took it
	// out of the epoll set; otherwise the descriptor is still c's.
	c.rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.closed {
			syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		}
	})
	p.mu.Lock()
	if int(c.fd) < len(p.byFD) && p.byFD[c.fd] == c {
		p.byFD[c.fd] = nil
	}
	p.mu.Unlock()
}

// close stops the loop. Clients still attached are no longer kicked.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true // no EpollCtl from now on: the descriptor is going
	p.mu.Unlock()
	p.file.Close() // wakes the loop's Read with an error
	<-p.done
}

func (p *poller) loop(rc syscall.RawConn) {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	var waitErr error
	// The callback returns false to park until the set is readable again,
	// true to end (an error: closed, or not expected with a valid set).
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.EpollWait(int(fd), events, 0)
			switch {
			case err == syscall.EINTR:
				continue
			case err != nil:
				waitErr = err
				return true
			case n == 0:
				return false
			}
			// kick only sets an atomic and may start a goroutine, so it
			// runs under the lock: one lock per batch, not per event.
			p.mu.Lock()
			for _, ev := range events[:n] {
				if int(ev.Fd) < len(p.byFD) {
					if c := p.byFD[ev.Fd]; c != nil && c.gen == uint32(ev.Pad) {
						c.kick()
					}
				}
			}
			p.mu.Unlock()
		}
	})
	if waitErr != nil {
		err = waitErr
	}
	p.fail(err)
}

// fail handles the loop ending other than through close (which no valid
// set should do): the set is given up, so attach refuses and new clients
// get a reader goroutine, and the clients in it go to onFail, since
// nothing would read them again.
func (p *poller) fail(err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var stranded []*client
	for fd, c := range p.byFD {
		if c != nil {
			stranded = append(stranded, c)
			p.byFD[fd] = nil
		}
	}
	p.mu.Unlock()
	p.file.Close()
	if p.onFail != nil {
		p.onFail(err, stranded)
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
			n, errno = syscall.Read(int(fd), b)
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

// sysWrite is write(2) on a polled socket, for a writeBatch. (A raw
// system call, which keeps the scheduler out of it, made the fan-out
// write more often, measured: 0.052 writes per delivery against 0.041.)
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
