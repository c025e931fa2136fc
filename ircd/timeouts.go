package ircd

import (
	"fmt"
	"time"
)

// timeoutLoop enforces registration and ping timeouts for every
// connection, on the server's clock. One sweep replaces a read deadline
// per connection: polled clients have no blocked read to time out, and
// re-arming a deadline on every line cost more than this loop does.
func (s *Server) timeoutLoop() {
	defer s.bg.Done()
	var conns []*client
	for {
		cfg := s.conf()
		// A tick of a quarter of the shortest timeout keeps each one
		// within 25% late.
		tick := min(cfg.RegTimeout, cfg.PingInterval, cfg.PingTimeout) / 4
		tick = max(min(tick, time.Second), 5*time.Millisecond)
		t := time.NewTimer(tick)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.RLock()
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.RUnlock()
		now := s.now().UnixNano()
		for _, c := range conns {
			c.checkTimeouts(cfg, now)
		}
		clear(conns) // do not keep departed clients alive
		conns = conns[:0]
	}
}

// checkTimeouts is the sweep's look at one client: registration must
// finish within RegTimeout; a registered client silent for PingInterval
// gets a PING, and is dropped if still silent PingTimeout later.
func (c *client) checkTimeouts(cfg *Config, now int64) {
	if !c.regDone.Load() {
		// A TLS handshake has a deadline of its own.
		if now-c.connected >= int64(cfg.RegTimeout) && !c.handshaking.Load() {
			c.quit("Registration timed out", "Registration timed out")
		}
		return
	}
	if at := c.pingAt.Load(); at != 0 {
		if now-at >= int64(cfg.PingTimeout) {
			c.quit(fmt.Sprintf("Ping timeout: %d seconds", int((cfg.PingInterval+cfg.PingTimeout).Seconds())), "Ping timeout")
		}
		return
	}
	if now-c.lastRead.Load() >= int64(cfg.PingInterval) && c.pingAt.CompareAndSwap(0, now) {
		c.send("", "PING", cfg.ServerName)
	}
}
