package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// aliveHandler counts answers to the liveness PING sent after holding.
type aliveHandler struct {
	nopHandler
	alive *atomic.Int64
}

var aliveToken = []byte("alive-check")

func (h aliveHandler) pong(_ *conn, token []byte, _ int64) {
	if bytes.Equal(token, aliveToken) {
		h.alive.Add(1)
	}
}

// runConnect is connect, storm and hold: log in -n accounts, then stay
// idle, then check every connection still answers.
func runConnect(o *options, cl *client, r *result) error {
	idle := o.hold
	switch o.scenario {
	case "storm":
		defInt(&o.inflight, o.n)
	case "hold":
		idle = o.duration
	}
	defInt(&o.inflight, 100)
	r.int("n", int64(o.n))
	r.int("inflight", int64(o.inflight))

	var rss0 int64
	if len(o.pids) > 0 {
		var err error
		if rss0, err = o.pids.rss(); err != nil {
			return fmt.Errorf("reading server RSS: %w", err)
		}
	}
	var alive atomic.Int64
	h := aliveHandler{alive: &alive}
	m := startCPU(o.pids)
	conns, failed, firstErr := cl.loginAll(0, o.n, o.inflight, func(int) handler { return h })
	login := m.stop()
	defer cl.closeAll(conns)

	var welcome, joined hist
	var lastJoin int64
	ok := 0
	for i, c := range conns {
		if c == nil {
			continue
		}
		ok++
		welcome.record(i, c.welcomeAt-c.dialAt)
		joined.record(i, c.joinedAt-c.dialAt)
		lastJoin = max(lastJoin, c.joinedAt)
	}
	r.int("welcomed", int64(ok))
	r.int("failed", int64(failed))
	allJoined := float64(lastJoin-m.t0) / 1e9
	r.num("all_joined_s", allJoined)
	if allJoined > 0 {
		r.num("logins_per_s", float64(ok)/allJoined)
	}
	r.lat("welcome", &welcome)
	r.lat("join", &joined)
	r.cpu(login, float64(ok), "k_logins", 1e3, "login")

	// Idle: no traffic from us; the server may PING (the reader answers).
	var rssPeak int64
	end := time.Now().Add(idle)
	for time.Now().Before(end) {
		time.Sleep(min(250*time.Millisecond, time.Until(end)))
		if len(o.pids) > 0 {
			if v, err := o.pids.rss(); err == nil {
				rssPeak = max(rssPeak, v)
			}
		}
	}
	r.num("idle_s", idle.Seconds())
	if len(o.pids) > 0 {
		rss1, err := o.pids.rss()
		if err != nil {
			return fmt.Errorf("reading server RSS: %w", err)
		}
		r.int("rss_before_kb", rss0/1024)
		r.int("rss_after_kb", rss1/1024)
		r.int("rss_peak_kb", max(rssPeak, rss1)/1024)
		if ok > 0 {
			r.int("bytes_per_conn", (rss1-rss0)/int64(ok))
			// The highest reading in the hold, usually its first: what
			// the login burst left before the server gave memory back.
			r.int("peak_bytes_per_conn", (max(rssPeak, rss1)-rss0)/int64(ok))
		}
	}

	// Every connection must still be there: ask each for a PONG.
	ping := []byte("PING :" + string(aliveToken) + "\r\n")
	for _, c := range conns {
		if c != nil {
			c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.write(ping)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive.Load() < int64(ok) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r.int("alive", alive.Load())
	r.int("disconnects", cl.dropped.Load())
	good := failed == 0 && cl.dropped.Load() == 0 && alive.Load() == int64(o.n)
	r.int("ok", b2i(good))
	if !good {
		why := cl.firstErr
		if firstErr != nil {
			why = firstErr.Error()
		}
		if why == "" {
			why = strconv.FormatInt(int64(o.n)-alive.Load(), 10) + " connections did not answer PING"
		}
		r.str("why", why)
	}
	if ok == 0 {
		return errors.New("no login succeeded: " + r.kv[len(r.kv)-1])
	}
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
