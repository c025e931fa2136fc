package ircd

import (
	"runtime"
	"runtime/debug"
	"time"
)

// trimLoop hands memory back to the OS once a burst of logins has
// settled (see burstTrim), checking once a second.
func (s *Server) trimLoop() {
	defer s.bg.Done()
	trim := burstTrim{free: func() {
		t0 := time.Now()
		// Two collections: sync.Pool keeps what it held (the flushers'
		// 32 KB buffers, thousands of them in a storm) for one more.
		runtime.GC()
		debug.FreeOSMemory()
		s.log.Info("returned memory to the OS after a burst of logins", "took", time.Since(t0).Round(time.Millisecond))
	}}
	t := time.NewTicker(trimTick)
	defer t.Stop()
	var conns []*client
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		drained := func() bool {
			s.mu.RLock()
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.RUnlock()
			total, busy := 0, 0
			for _, c := range conns {
				n, b := c.out.backlog()
				total += n
				if b {
					busy++
				}
			}
			clear(conns)
			conns = conns[:0]
			return total+busy*flushBufSize < trimBacklog
		}
		trim.check(s.stats.logins.Load(), time.Now(), drained)
	}
}

// burstTrim hands memory back to the OS once a burst of logins has
// settled: no login for a second and the replies it caused written out
// (a storm's NAMES replies can take seconds to reach slow readers). The
// burst leaves the heap at twice its peak, and an idle server allocates
// nothing, so the runtime would not collect and return that memory until
// its two-minute forced GC.
type burstTrim struct {
	seen       uint64 // logins counted at the last check
	quietSince time.Time
	trimmedAt  uint64    // logins counted at the last trim
	lastTrim   time.Time // when it was
	free       func()    // collects and returns memory
}

const (
	trimTick    = 250 * time.Millisecond
	trimBacklog = 1 << 20          // bytes queued or being written, a busy flusher's buffer included, that count as drained
	trimBurst   = 1000             // logins since the last trim that make a burst
	trimQuiet   = time.Second      // ...followed by this long without one
	trimAgain   = 10 * time.Second // logins this soon after a trim continue its burst
)

func (b *burstTrim) check(logins uint64, now time.Time, drained func() bool) {
	if logins != b.seen {
		b.seen, b.quietSince = logins, now
		return
	}
	if now.Sub(b.quietSince) < trimQuiet || logins == b.trimmedAt {
		return
	}
	// A pause inside a storm can trigger a trim with the storm not over;
	// the logins after it then belong to that burst, however few.
	burst := logins-b.trimmedAt >= trimBurst || b.quietSince.Sub(b.lastTrim) < trimAgain
	if burst && drained() {
		b.trimmedAt, b.lastTrim = logins, now
		b.free()
	}
}
