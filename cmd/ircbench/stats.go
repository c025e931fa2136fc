package main

import (
	"bytes"
	"errors"
	"math/bits"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// epoch is the tool's zero time. Timestamps embedded in messages are
// nanoseconds since epoch on the monotonic clock, so a wall-clock step
// during a run cannot produce negative or huge latencies.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// shards spreads hot counters and histograms over cache lines, so reader
// goroutines on different cores do not fight over one line.
const shards = 16

// counter is an atomic counter split into padded shards.
type counter struct {
	s [shards]struct {
		v atomic.Int64
		_ [56]byte
	}
}

func (c *counter) add(shard int, d int64) { c.s[shard%shards].v.Add(d) }

func (c *counter) load() int64 {
	var t int64
	for i := range c.s {
		t += c.s[i].v.Load()
	}
	return t
}

// Histogram of nanosecond values: exact below 64 ns, then 32 buckets per
// power of two (about 3% resolution), up to about 18 minutes.
const (
	histSub     = 32
	histBuckets = 64 + 35*histSub
)

func histIndex(v int64) int {
	if v < 64 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 6
	idx := 64 + (shift-1)*histSub + int(uint64(v)>>uint(shift)) - histSub
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	shift := (i-64)/histSub + 1
	m := int64((i-64)%histSub + histSub)
	return m<<shift + (int64(1)<<shift)/2
}

type histShard struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
	_      [56]byte
}

// hist is a sharded latency histogram safe for concurrent recording.
type hist struct{ s [shards]histShard }

func (h *hist) record(shard int, v int64) {
	hs := &h.s[shard%shards]
	hs.counts[histIndex(v)].Add(1)
	for {
		m := hs.max.Load()
		if v <= m || hs.max.CompareAndSwap(m, v) {
			return
		}
	}
}

type histSummary struct {
	n             uint64
	p50, p99, max time.Duration
}

func (h *hist) summary() histSummary {
	var merged [histBuckets]uint64
	var s histSummary
	var mx int64
	for i := range h.s {
		for j := range merged {
			c := h.s[i].counts[j].Load()
			merged[j] += c
			s.n += c
		}
		mx = max(mx, h.s[i].max.Load())
	}
	if s.n == 0 {
		return s
	}
	q := func(p float64) time.Duration {
		rank := uint64(p*float64(s.n-1)) + 1
		var cum uint64
		for j, c := range merged {
			cum += c
			if cum >= rank {
				return time.Duration(min(histValue(j), mx))
			}
		}
		return time.Duration(mx)
	}
	s.p50, s.p99, s.max = q(0.50), q(0.99), time.Duration(mx)
	return s
}

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU seconds a process has used, from
// /proc/PID/stat (utime and stime, fields 14 and 15).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	return float64(ut+st) / clockTicks, nil
}

// procRSS returns VmRSS of a process in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// procThreadCPU sums the on-CPU nanoseconds of every live thread of a
// process (/proc/PID/task/*/schedstat, first field): nanosecond
// resolution, where utime+stime count 10 ms ticks. Threads that exited
// are missing from it; cpuMeter falls back to utime+stime then.
func procThreadCPU(pid int) (float64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var ns uint64
	for _, e := range ents {
		b, err := os.ReadFile(dir + e.Name() + "/schedstat")
		if err != nil {
			continue // the thread just exited
		}
		f := bytes.Fields(b)
		if len(f) < 1 {
			return 0, errors.New("unexpected schedstat format")
		}
		v, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, err
		}
		ns += v
	}
	return float64(ns) / 1e9, nil
}

// procIO returns how many read-like and write-like system calls a
// process has made (syscr and syscw in /proc/PID/io: read, recv, readv...
// and write, send, writev...).
func procIO(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, 0, err
	}
	var gotR, gotW bool
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "syscr":
			reads, gotR = n, true
		case "syscw":
			writes, gotW = n, true
		}
	}
	if !gotR || !gotW {
		return 0, 0, errors.New("no syscr/syscw in /proc io")
	}
	return reads, writes, nil
}

// procs are the server's processes: one, or every process of a cluster
// (its daemons and NATS), whose CPU, system calls and memory are summed.
type procs []int

func (p procs) sum(f func(pid int) (float64, error)) (float64, error) {
	var t float64
	for _, pid := range p {
		v, err := f(pid)
		if err != nil {
			return 0, err
		}
		t += v
	}
	return t, nil
}

func (p procs) cpu() (float64, error)       { return p.sum(procCPU) }
func (p procs) threadCPU() (float64, error) { return p.sum(procThreadCPU) }

func (p procs) rss() (int64, error) {
	v, err := p.sum(func(pid int) (float64, error) { r, err := procRSS(pid); return float64(r), err })
	return int64(v), err
}

func (p procs) io() (reads, writes int64, err error) {
	for _, pid := range p {
		r, w, err := procIO(pid)
		if err != nil {
			return 0, 0, err
		}
		reads, writes = reads+r, writes+w
	}
	return reads, writes, nil
}

// cpuMeter measures the server's and the tool's CPU over an interval.
type cpuMeter struct {
	pids           procs
	stat0, thread0 float64
	self0          float64
	t0             int64
	statOK, thrOK  bool
	r0, w0         int64 // the server's read and write calls
	ioOK           bool
}

func startCPU(pids procs) *cpuMeter {
	m := &cpuMeter{pids: pids}
	if len(pids) > 0 {
		if v, err := pids.cpu(); err == nil {
			m.stat0, m.statOK = v, true
		}
		if v, err := pids.threadCPU(); err == nil {
			m.thread0, m.thrOK = v, true
		}
		if r, w, err := pids.io(); err == nil {
			m.r0, m.w0, m.ioOK = r, w, true
		}
	}
	m.self0, m.t0 = selfCPU(), now()
	return m
}

// cpuSample is the result of a cpuMeter: seconds of CPU and of wall time.
type cpuSample struct {
	srv, self, wall float64
	srvOK           bool
	reads, writes   int64 // the server's read and write system calls
	ioOK            bool
}

func (m *cpuMeter) stop() cpuSample {
	s := cpuSample{self: selfCPU() - m.self0, wall: float64(now()-m.t0) / 1e9}
	if !m.statOK {
		return s
	}
	stat, err := m.pids.cpu()
	if err != nil {
		return s
	}
	s.srv, s.srvOK = stat-m.stat0, true
	if m.ioOK {
		if r, w, err := m.pids.io(); err == nil {
			s.reads, s.writes, s.ioOK = r-m.r0, w-m.w0, true
		}
	}
	// Prefer the per-thread sum (ns resolution) unless utime+stime grew
	// clearly more, which means threads exited during the interval.
	if m.thrOK {
		if thr, err := m.pids.threadCPU(); err == nil && s.srv <= thr-m.thread0+0.05 {
			s.srv = thr - m.thread0
		}
	}
	return s
}

// waitQuiet waits until the server has used less than 3 ms of CPU in a
// 100 ms window (it has finished, e.g., flushing JOIN announcements), or
// until limit passes. Without a pid it just sleeps briefly.
func waitQuiet(pids procs, limit time.Duration) {
	if len(pids) == 0 {
		time.Sleep(300 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(limit)
	prev, err := pids.threadCPU()
	if err != nil {
		return
	}
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cur, err := pids.threadCPU()
		if err != nil {
			return
		}
		if cur-prev < 0.003 {
			return
		}
		prev = cur
	}
}
