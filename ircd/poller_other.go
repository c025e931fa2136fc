//go:build !linux

package ircd

import (
	"errors"
	"net"
)

// poller is Linux-only (epoll); elsewhere every client has a reader
// goroutine.
type poller struct{}

type evLoop struct{}

func newPoller(int, func(error, []*client)) (*poller, error) {
	return nil, errors.New("no epoll on this system")
}

func (p *poller) attach(c *client, nc net.Conn) bool { return false }
func (p *poller) detach(c *client)                   {}
func (p *poller) close()                             {}

// run is never called without the poller (no client is attached).
func (p *poller) run(c *client) {}

// sysWrite is never called without the poller (no client has a raw
// connection).
func sysWrite(fd uintptr, b []byte) (int, error) { return 0, errors.ErrUnsupported }
