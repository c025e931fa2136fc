// Command ircbench is a load generator for the chat server. It opens
// client connections on loopback, runs one scenario and prints one result
// line of key=value pairs:
//
//	ircbench [flags] SCENARIO
//
// Scenarios:
//
//	connect        log in -n accounts with -inflight logins under way; report
//	               registrations/s, time to welcome, then hold idle for -hold
//	               and report bytes per idle connection from the server's RSS
//	               at its end (and the highest reading during the hold)
//	storm          connect with every login at once (-inflight defaults to -n)
//	hold           connect, stay idle for -duration, report disconnects and
//	               check every connection still answers a PING
//	fanout         -n members of the channel, -senders of them sending; closed
//	               loop (-window messages per sender not yet received by every
//	               member) or fixed total -rate messages/s; deliveries/s,
//	               latency, loss and reordering
//	privmsg        -n/2 pairs, each sender with -window messages in flight
//	offline        store -msgs messages for an offline account (from -senders
//	               accounts), then log it in and time the replay
//	offline-store  -senders accounts send private messages to offline accounts
//	               with -window awaiting the 301; stored messages/s
//
// Accounts are PREFIXi / PASSPREFIXi (user0/pw0, user1/pw1, ...); with
// -auth none only NICK and USER are sent, for servers without accounts.
// Our server joins every user to the channel; -join client sends the JOIN
// at the end of the MOTD instead, as a client's autojoin does, and -join
// detect sends it only when the server has not joined the user itself
// (-join none: no channel at all, to measure what membership costs).
// Senders write one line per write(), as a client does; -batch N lets a
// closed-loop sender put up to N lines in one write (the tool's behaviour
// before, kept to measure what it changes). With
// -pid, the server's CPU seconds (utime+stime from /proc/PID/stat) are
// reported per unit of work, and its RSS for connect/hold. The tool's own
// CPU is reported next to it, so a saturated tool is visible.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

type options struct {
	scenario   string
	addr       string
	pids       procs
	n          int
	senders    int
	window     int
	rate       float64
	duration   time.Duration
	msgs       int
	inflight   int
	hold       time.Duration
	userPfx    string
	passPfx    string
	first      int
	channel    string
	recipients int
	timeout    time.Duration
	drain      time.Duration
	label      string
	readBuf    int
	cpuprofile string
	auth       string
	join       string
	batch      int
}

var scenarios = map[string]func(*options, *client, *result) error{
	"connect":       runConnect,
	"storm":         runConnect,
	"hold":          runConnect,
	"fanout":        runFanout,
	"privmsg":       runPrivmsg,
	"offline":       runOffline,
	"offline-store": runOfflineStore,
}

func main() { os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr)) }

func realMain(args []string, stdout, stderr io.Writer) int {
	o := &options{}
	fs := flag.NewFlagSet("ircbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ircbench [flags] connect|storm|hold|fanout|privmsg|offline|offline-store")
		fmt.Fprintln(stderr, "Prints one line of key=value results; see the package comment for each scenario.")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.scenario, "scenario", "", "connect, storm, hold, fanout, privmsg, offline or offline-store (or give it as the argument)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:6667", "server address; several, comma-separated, take connections in turn (a cluster's nodes)")
	fs.Func("pid", "server process id, for its CPU time and RSS; several, comma-separated, are summed (a cluster's daemons and NATS)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			if pid > 0 {
				o.pids = append(o.pids, pid)
			}
		}
		return nil
	})
	fs.IntVar(&o.n, "n", 100, "connections (members, pairs*2, ...)")
	fs.IntVar(&o.senders, "senders", 0, "sending connections (default: fanout 10, offline 10, offline-store 100)")
	fs.IntVar(&o.window, "window", 0, "messages in flight per sender (default: fanout 10, privmsg 100, offline 16, offline-store 1)")
	fs.Float64Var(&o.rate, "rate", 0, "fanout: total messages/s into the channel; 0 = closed loop")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long to send (hold: how long to stay idle)")
	fs.IntVar(&o.msgs, "msgs", 1000, "offline: messages stored for the offline account")
	fs.IntVar(&o.inflight, "inflight", 0, "logins under way at once (default 100; storm: -n)")
	fs.DurationVar(&o.hold, "hold", 3*time.Second, "connect/storm: idle time before reading the server's RSS")
	fs.StringVar(&o.userPfx, "users-prefix", "user", "account names are this plus a number")
	fs.StringVar(&o.passPfx, "pass-prefix", "pw", "passwords are this plus the account's number")
	fs.IntVar(&o.first, "first", 0, "number of the first account used")
	fs.StringVar(&o.channel, "channel", "#lobby", "the channel every user is joined to")
	fs.IntVar(&o.recipients, "recipients", 10, "offline-store: offline accounts per sender, used in turn")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "per-login timeout (and offline: replay timeout)")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "after sending stops, how long to wait for messages still in flight")
	fs.StringVar(&o.label, "label", "", "free text added to the result line as label=...")
	fs.IntVar(&o.readBuf, "readbuf", 4096, "read buffer per connection in the tool (bytes)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write the tool's own CPU profile to this file")
	fs.StringVar(&o.auth, "auth", authPass, "login: pass (PASS, NICK, USER) or none (NICK and USER only: a server without accounts)")
	fs.StringVar(&o.join, "join", joinServer, "server (it joins the user at login), client (send JOIN after the MOTD), detect (JOIN only if the server did not) or none (logged in at the end of the MOTD, no channel; not for fanout/privmsg)")
	fs.IntVar(&o.batch, "batch", 1, "fanout/privmsg closed loop: most lines one write() may carry (1: one line per write, as clients do)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The scenario may come before, between or after the flags.
	if fs.NArg() > 0 {
		if o.scenario != "" && o.scenario != fs.Arg(0) {
			fmt.Fprintf(stderr, "ircbench: two scenarios: %q and %q\n", o.scenario, fs.Arg(0))
			return 2
		}
		o.scenario = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "ircbench: unexpected arguments %q\n", fs.Args())
			return 2
		}
	}
	run, ok := scenarios[o.scenario]
	if !ok {
		fmt.Fprintf(stderr, "ircbench: unknown or missing scenario %q (want connect, storm, hold, fanout, privmsg, offline, offline-store)\n", o.scenario)
		return 2
	}
	if o.n < 1 || o.n > 1_000_000 {
		fmt.Fprintln(stderr, "ircbench: -n must be between 1 and 1000000")
		return 2
	}
	if o.auth != authPass && o.auth != authNone {
		fmt.Fprintf(stderr, "ircbench: -auth %q: want pass or none\n", o.auth)
		return 2
	}
	if o.join != joinServer && o.join != joinClient && o.join != joinDetect && o.join != joinNone {
		fmt.Fprintf(stderr, "ircbench: -join %q: want server, client, detect or none\n", o.join)
		return 2
	}
	if o.batch < 1 || o.batch > maxBatch {
		fmt.Fprintf(stderr, "ircbench: -batch must be between 1 and %d\n", maxBatch)
		return 2
	}
	cl := &client{addrs: strings.Split(o.addr, ","), userPfx: o.userPfx, passPfx: o.passPfx, first: o.first,
		timeout: o.timeout, readBuf: max(o.readBuf, 512), auth: o.auth, join: o.join, channel: o.channel}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "ircbench:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	r := &result{}
	r.str("scenario", o.scenario)
	if o.label != "" {
		r.str("label", o.label)
	}
	err := run(o, cl, r)
	r.str("auth", o.auth)
	r.str("join", o.join)
	r.int("client_joins", cl.joinsSent.Load())
	if err != nil {
		r.int("ok", 0)
		r.str("error", err.Error())
	}
	r.int("ncpu", int64(runtime.NumCPU()))
	fmt.Fprintln(stdout, r.String())
	if err != nil {
		return 1
	}
	return 0
}

// result is one output line of key=value pairs, in the order added.
type result struct{ kv []string }

func (r *result) str(k, v string) {
	v = strings.Map(func(c rune) rune {
		if c == ' ' || c == '\t' || c == '\n' || c == '=' {
			return '_'
		}
		return c
	}, v)
	r.kv = append(r.kv, k+"="+v)
}

func (r *result) int(k string, v int64) { r.kv = append(r.kv, k+"="+strconv.FormatInt(v, 10)) }

// num adds a float with three significant decimals at most.
func (r *result) num(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.kv = append(r.kv, k+"=NA")
		return
	}
	prec := 3
	if math.Abs(v) >= 1000 {
		prec = 0
	} else if math.Abs(v) >= 100 {
		prec = 1
	}
	r.kv = append(r.kv, k+"="+strconv.FormatFloat(v, 'f', prec, 64))
}

func (r *result) ms(k string, d time.Duration) { r.num(k, float64(d)/1e6) }

func (r *result) String() string { return strings.Join(r.kv, " ") }

// cpu adds the server's and the tool's CPU over the measured interval;
// work is the work done and unit its scale name (e.g. "M_deliveries" with
// scale 1e6: server seconds per million deliveries); one names a single
// unit, for the server's system calls per unit (e.g. "delivery").
func (r *result) cpu(s cpuSample, work float64, unit string, scale float64, one string) {
	r.num("wall_s", s.wall)
	if s.srvOK {
		r.num("srv_cpu_s", s.srv)
		if work > 0 {
			r.num("srv_cpu_s_per_"+unit, s.srv/work*scale)
		} else {
			r.str("srv_cpu_s_per_"+unit, "NA")
		}
		if s.wall > 0 {
			r.num("srv_cpu_pct", 100*s.srv/s.wall)
		}
	} else {
		r.str("srv_cpu_s", "NA")
	}
	if s.ioOK {
		// System calls per unit of work: how many lines a read or a
		// write of the server carries, in effect.
		r.int("srv_reads", s.reads)
		r.int("srv_writes", s.writes)
		if work > 0 {
			r.num("srv_reads_per_"+one, float64(s.reads)/work)
			r.num("srv_writes_per_"+one, float64(s.writes)/work)
		}
	}
	r.num("tool_cpu_s", s.self)
	if s.wall > 0 {
		r.num("tool_cpu_pct", 100*s.self/s.wall)
	}
}

func (r *result) lat(prefix string, h *hist) {
	s := h.summary()
	r.ms(prefix+"_p50_ms", s.p50)
	r.ms(prefix+"_p99_ms", s.p99)
	r.ms(prefix+"_max_ms", s.max)
}

func defInt(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}

// sleepUntil sleeps until t or until stop is closed; it reports false if
// stopped.
func sleepUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	}
}
