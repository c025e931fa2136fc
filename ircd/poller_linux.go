//go:build linux

package ircd

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// poller watches idle plaintext connections with one epoll set, so that an
// idle client costs no goroutine (a parked reader's stack was most of what
// an idle connection cost). A connection becoming readable is "kicked": a
// short-lived goroutine (client.pump) reads and handles everything that
// arrived and exits. Edge-triggered, so nothing needs re-arming.
//
// Go's runtime poller also has these sockets in its own epoll set; that
// is harmless, as no goroutine waits on them there.
type poller struct {
	epfd int
	wake [2]int // a pipe: a byte in wake[1] ends loop

	mu     sync.Mutex
	byFD   []*client // indexed by descriptor
	gen    uint32    // last generation handed out; 0 marks the wake pipe
	closed bool
	done   chan struct{}
}

// epollET is EPOLLET as the event mask's type (syscall declares it negative).
const epollET = 1 << 31

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: epfd, done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, err
	}
	go p.loop()
	return p, nil
}

func (p *poller) closeFDs() {
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
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
	c.lr.r = rawReader{rc}
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
		c.poll, c.rc, c.lr.r, c.out.onClose = nil, nil, nc, nil
		return false
	}
	return true
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
	p.closed = true
	p.mu.Unlock()
	syscall.Write(p.wake[1], []byte{0})
	<-p.done
}

func (p *poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			// Not expected with a valid set; there is no way to go on.
			p.mu.Lock()
			p.closed = true
			p.mu.Unlock()
			p.closeFDs()
			return
		}
		for _, ev := range events[:n] {
			if ev.Pad == 0 {
				p.mu.Lock() // no Control callback is inside EpollCtl now
				p.closeFDs()
				p.mu.Unlock()
				return
			}
			p.mu.Lock()
			var c *client
			if int(ev.Fd) < len(p.byFD) {
				c = p.byFD[ev.Fd]
			}
			p.mu.Unlock()
			if c != nil && c.gen == uint32(ev.Pad) {
				c.kick()
			}
		}
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
