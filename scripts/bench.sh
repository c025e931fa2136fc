#!/usr/bin/env bash
# Benchmark matrix for the chat server (`make bench`).
#
# Builds bin/ircd and bin/ircbench, generates 20,000 plaintext accounts
# (user0/pw0 ... user19999/pw19999), and for every run starts a fresh
# server (127.0.0.1, a port it picks, an empty store in a temp dir, flood
# and connection limits off), runs one ircbench scenario against it, stops
# it, and finally prints a table of the results and of the targets.
#
# Environment:
#   BENCH_ONLY=regex   run only the labels matching regex (e.g. 'fanout|privmsg')
#   BENCH_BASE=path    also run every scenario against a baseline server, just
#                      before the current one, and print new/base ratios: path
#                      is an ircd binary or the root of another checkout
#                      (its ./cmd/ircd is built). Doubles the run time.
#   BENCH_PEER=inspircd  also run the scenarios that mean the same on any IRC
#                      server against a fresh InspIRCd each (config from
#                      scripts/inspircd-peer.sh, ircbench with -auth none
#                      -join client), right after ours, and print ours,
#                      theirs and ours/theirs per row and the peer targets.
#                      INSPIRCD=path picks the binary (default /usr/sbin/inspircd).
#   BENCH_TOOL_FLAGS='-batch 32 ...'  extra ircbench flags for every run, after
#                      the row's own (so they win): for measuring what a
#                      tool setting changes, not for the recorded figures
#   BENCH_OUT=file     where the raw result lines go (default bin/bench-results.txt;
#                      the baseline's go to FILE.base, the peer's to FILE.peer)
#   GO=go              the go command
set -u -o pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
ONLY=${BENCH_ONLY:-}
read -r -a TOOLFLAGS <<<"${BENCH_TOOL_FLAGS:-}"
BASE=${BENCH_BASE:-}
PEER=${BENCH_PEER:-}
OUT=${BENCH_OUT:-bin/bench-results.txt}
START=$(date +%s)

say() { printf '%s\n' "$*"; }

case "$PEER" in
"") ;;
inspircd)
	# shellcheck source=inspircd-peer.sh
	. scripts/inspircd-peer.sh
	if ! [ -x "${INSPIRCD:-/usr/sbin/inspircd}" ]; then
		say "BENCH_PEER=inspircd: ${INSPIRCD:-/usr/sbin/inspircd} is not installed (apt-get install -y inspircd, or set INSPIRCD=path)"
		exit 1
	fi
	;;
*)
	say "BENCH_PEER=$PEER: the only peer is inspircd"
	exit 1
	;;
esac

# Each process needs its own descriptors: the 19,000-user run holds 19,000
# in the tool and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
[ "$FDS" = unlimited ] && FDS=1048576

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ircbench.XXXXXX") || exit 1
SRV_PID=""
stop_server() {
	stop_cluster
	[ -n "$SRV_PID" ] || return 0
	kill -TERM "$SRV_PID" 2>/dev/null
	# A server with thousands of clients takes a while to say goodbye to
	# each; its state is thrown away, so do not wait long.
	for _ in $(seq 30); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=""
}
cleanup() {
	stop_server
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build into the temp dir and run those copies, so that someone rebuilding
# bin/ircd during the run cannot swap the server under the benchmark; then
# copy them to bin/ as usual.
say "== building"
mkdir -p "$TMP/bin" bin
$GO build -o "$TMP/bin/ircd" ./cmd/ircd || exit 1
$GO build -o "$TMP/bin/ircbench" ./cmd/ircbench || exit 1
$GO build -o "$TMP/bin/natsd" ./cmd/natsd || exit 1
for b in ircd ircbench; do # rename into place: never rewrite a running binary
	cp "$TMP/bin/$b" "bin/.$b.tmp" && mv -f "bin/.$b.tmp" "bin/$b"
done
IRCBENCH=$TMP/bin/ircbench
SERVERS=(new)
BIN_new=$TMP/bin/ircd
if [ -n "$BASE" ]; then
	if [ -d "$BASE" ]; then
		(cd "$BASE" && $GO build -o "$TMP/bin/ircd-base" ./cmd/ircd) || exit 1
	else
		cp "$BASE" "$TMP/bin/ircd-base" || exit 1
	fi
	BIN_base=$TMP/bin/ircd-base
	SERVERS=(base new)
fi
if [ -n "$PEER" ]; then
	SERVERS+=(peer)
	PEER_VERSION=$("${INSPIRCD:-/usr/sbin/inspircd}" --version 2>/dev/null | head -n 1)
fi

# What was measured: a hash of the server's non-test sources (the tree may
# have uncommitted changes) and the time.
SRCHASH=$(find accounts store ircd cmd/ircd -name '*.go' ! -name '*_test.go' 2>/dev/null | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
MACHINE="$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(awk '/MemTotal/ { printf "%.0f GB RAM", $2 / 1048576 }' /proc/meminfo), $($GO version | cut -d' ' -f3-4), nofile $FDS"
say "server: source hash $SRCHASH, built $(date -u '+%Y-%m-%d %H:%M:%S UTC')${BASE:+; baseline $BASE}${PEER:+; peer $PEER_VERSION}"
say "machine: $MACHINE"
[ ${#TOOLFLAGS[@]} -eq 0 ] || say "ircbench flags added to every run: ${TOOLFLAGS[*]}"

awk 'BEGIN { for (i = 0; i < 20000; i++) print "user" i " pw" i }' >"$TMP/users.txt"

# Keys that only newer servers know: keep each one the server accepts.
# flood_rate = 0 and max_per_ip / max_clients / ip_login_failures = 0 mean
# "no limit" (a thousand logins at once from 127.0.0.1 would otherwise
# hold more checks in flight than one address is allowed).
probe() { # probe BINARY SECTION KEY VALUE
	printf '[server]\nlisten = ["127.0.0.1:0"]\n[accounts]\nusers_file = "%s"\n[store]\npath = "%s"\n[%s]\n%s = %s\n' \
		"$TMP/users.txt" "$TMP/probe/ircd.db" "$2" "$3" "$4" >"$TMP/probe.toml"
	"$1" check -config "$TMP/probe.toml" >/dev/null 2>&1
}
for srv in "${SERVERS[@]}"; do
	[ "$srv" = peer ] && continue
	bin=BIN_$srv
	limits=""
	for kv in "flood_rate 0" "max_per_ip 0" "max_clients 0" "ip_login_failures 0"; do
		set -- $kv
		if probe "${!bin}" limits "$1" "$2"; then
			limits+="$1 = $2"$'\n'
			say "config ($srv): [limits] $1 = $2"
		else
			say "config ($srv): this server does not know [limits] $1; left out"
		fi
	done
	printf -v "LIMITS_$srv" '%s' "$limits"
	announce=0
	probe "${!bin}" channel announce_limit 0 && announce=1
	printf -v "ANNOUNCE_$srv" '%s' "$announce"
	[ "$announce" = 1 ] || say "config ($srv): no [channel] announce_limit; every run announces joins"
done

# write_config SERVER ANNOUNCE_LIMIT: a config for one run in $TMP/run.
write_config() {
	local lim=LIMITS_$1 ann=ANNOUNCE_$1
	rm -rf "$TMP/run"
	mkdir -p "$TMP/run"
	{
		printf '[server]\nlisten = ["127.0.0.1:0"]\n'
		if [ "${!ann}" = 1 ]; then
			printf '[channel]\nannounce_limit = %s\n' "$2"
		fi
		printf '[accounts]\nusers_file = "%s"\n' "$TMP/users.txt"
		printf '[store]\npath = "%s"\n' "$TMP/run/state/ircd.db"
		printf '[limits]\n%s' "${!lim}"
		if [ "${3:-}" = web ]; then
			printf '[web]\nlisten = ["127.0.0.1:0"]\n'
		fi
	} >"$TMP/run/config.toml"
}

# web_addr: the running server's web listener as a WebSocket URL.
web_addr() {
	local a=""
	for _ in $(seq 50); do
		a=$(sed -n 's/.*msg="web listening" addr=\([0-9.:]*\).*/\1/p' "$TMP/run/ircd.log" | head -n 1)
		[ -n "$a" ] && break
		sleep 0.1
	done
	[ -n "$a" ] && printf 'ws://%s/irc' "$a"
}

# start_server BINARY: serve $TMP/run/config.toml; sets SRV_PID and ADDR.
start_server() {
	"$1" -config "$TMP/run/config.toml" >"$TMP/run/ircd.log" 2>&1 &
	SRV_PID=$!
	ADDR=""
	for _ in $(seq 100); do
		ADDR=$(sed -n 's/.*msg=listening addr=\([0-9.:]*\).*/\1/p' "$TMP/run/ircd.log" | head -n 1)
		[ -n "$ADDR" ] && return 0
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "server did not start:"
	cat "$TMP/run/ircd.log" >&2
	return 1
}

# outfile SERVER: where its result lines go.
outfile() {
	case $1 in
	base) printf '%s\n' "$OUT.base" ;;
	peer) printf '%s\n' "$OUT.peer" ;;
	*) printf '%s\n' "$OUT" ;;
	esac
}

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.peer" # a table must not mix in an older run's peer rows
for srv in "${SERVERS[@]}"; do
	out=$(outfile "$srv")
	case $srv in
	base) src=$BASE ;;
	peer) src="$PEER_VERSION" ;;
	*) src=$SRCHASH ;;
	esac
	{
		printf '# %s: source=%s date=%s\n' "$srv" "${src// /_}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		printf '# machine: %s\n' "$MACHINE"
		[ ${#TOOLFLAGS[@]} -eq 0 ] || printf '# ircbench flags added: %s\n' "${TOOLFLAGS[*]}"
	} >"$out"
done

# start_peer: a fresh InspIRCd with its config, pid file and log in
# $TMP/run; sets SRV_PID and ADDR.
start_peer() {
	rm -rf "$TMP/run"
	mkdir -p "$TMP/run"
	peer_start "$TMP/run" || return 1
	SRV_PID=$PEER_PID ADDR=$PEER_ADDR
}

# bench [-peer] LABEL ANNOUNCE_LIMIT SCENARIO [ircbench flags...]: one run
# per server. -peer marks a run that means the same on InspIRCd (every
# JOIN announced, nothing our server alone does): with BENCH_PEER it runs
# there too, logging in with NICK/USER only and sending its own JOIN.
bench() {
	local peerok=0
	if [ "$1" = -peer ]; then
		peerok=1
		shift
	fi
	local label=$1 announce=$2 scenario=$3
	shift 3
	if [ -n "$ONLY" ] && ! [[ $label =~ $ONLY ]]; then
		return 0
	fi
	local srv bin out line t0 ann started extra
	for srv in "${SERVERS[@]}"; do
		out=$(outfile "$srv")
		extra=()
		t0=$(date +%s)
		if [ "$srv" = peer ]; then
			[ "$peerok" = 1 ] || continue
			start_peer && started=1 || started=0
			extra=(-auth none -join client)
		else
			bin=BIN_$srv
			if [[ $label == web-* ]]; then
				write_config "$srv" "$announce" web
				start_server "${!bin}" && ADDR=$(web_addr) && started=1 || started=0
			else
				write_config "$srv" "$announce"
				start_server "${!bin}" && started=1 || started=0
			fi
		fi
		if [ "$started" = 1 ]; then
			line=$(timeout 400 "$IRCBENCH" -addr "$ADDR" -pid "$SRV_PID" -label "$label" "${extra[@]}" "$@" "${TOOLFLAGS[@]}" "$scenario" 2>>"$TMP/run/ircbench.err")
			[ -n "$line" ] || line="scenario=$scenario label=$label ok=0 error=ircbench_gave_no_result"
		else
			line="scenario=$scenario label=$label ok=0 error=server_did_not_start"
		fi
		stop_server
		if [ "$srv" = peer ]; then
			line+=" server=inspircd"
		else
			ann=ANNOUNCE_$srv
			if [ "${!ann}" = 1 ]; then line+=" announce_limit=$announce"; else line+=" announce_limit=none"; fi
		fi
		printf '%s\n' "$line" >>"$out"
		if [ ${#SERVERS[@]} -gt 1 ]; then
			say "[$(($(date +%s) - t0))s $srv] $line"
		else
			say "[$(($(date +%s) - t0))s] $line"
		fi
	done
}

# bench_cluster LABEL SCENARIO [ircbench flags...]: the current server as
# a cluster, three daemons on one NATS server (bin/natsd), the tool's
# connections spread over the three and the CPU of all four processes
# summed. Labelled cluster-LABEL, next to LABEL on one server.
CLUSTER_PIDS=()
stop_cluster() {
	for p in "${CLUSTER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${CLUSTER_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	CLUSTER_PIDS=()
}
bench_cluster() {
	local label=cluster-$1 scenario=$2
	shift 2
	if [ -n "$ONLY" ] && ! [[ $label =~ $ONLY ]]; then
		return 0
	fi
	local t0 nats="" addrs=() pids=() line node i
	t0=$(date +%s)
	rm -rf "$TMP/cluster"
	mkdir -p "$TMP/cluster"
	"$TMP/bin/natsd" -name bench -addr 127.0.0.1:0 -store "$TMP/cluster/nats" >"$TMP/cluster/nats.log" 2>&1 &
	CLUSTER_PIDS+=($!)
	pids+=($!)
	for _ in $(seq 100); do
		nats=$(sed -n 's/.*clients at \(nats:[^,]*\),.*/\1/p' "$TMP/cluster/nats.log")
		[ -n "$nats" ] && break
		sleep 0.1
	done
	for node in a b c; do
		{
			printf '[server]\nlisten = ["127.0.0.1:0"]\n[channel]\nannounce_limit = 0\n'
			printf '[accounts]\nusers_file = "%s"\n' "$TMP/users.txt"
			printf '[cluster]\nnats = ["%s"]\nnode = "%s"\n' "$nats" "$node"
			printf '[limits]\n%s' "$LIMITS_new"
		} >"$TMP/cluster/$node.toml"
		"$BIN_new" -config "$TMP/cluster/$node.toml" >"$TMP/cluster/$node.log" 2>&1 &
		CLUSTER_PIDS+=($!)
		pids+=($!)
		for i in $(seq 200); do
			a=$(sed -n 's/.*msg=listening addr=\([0-9.:]*\).*/\1/p' "$TMP/cluster/$node.log" | head -n 1)
			[ -n "$a" ] && break
			sleep 0.1
		done
		addrs+=("$a")
	done
	if [ -n "$nats" ] && [ ${#addrs[@]} = 3 ] && [ -n "${addrs[2]}" ]; then
		line=$(timeout 400 "$IRCBENCH" -addr "$(IFS=,; echo "${addrs[*]}")" -pid "$(IFS=,; echo "${pids[*]}")" -label "$label" "$@" "${TOOLFLAGS[@]}" "$scenario" 2>>"$TMP/cluster/ircbench.err")
		[ -n "$line" ] || line="scenario=$scenario label=$label ok=0 error=ircbench_gave_no_result"
	else
		line="scenario=$scenario label=$label ok=0 error=cluster_did_not_start"
	fi
	stop_cluster
	line+=" nodes=3 announce_limit=0"
	printf '%s\n' "$line" >>"$OUT"
	say "[$(($(date +%s) - t0))s cluster] $line"
}

HOLD_N=19000
if [ "$FDS" -lt $((HOLD_N + 100)) ]; then
	HOLD_N=$((FDS - 100))
	say "note: open-file limit is $FDS; the concurrent-users run uses $HOLD_N"
fi

say "== running the matrix (results in $OUT)"
# Rows marked -peer also run on InspIRCd with BENCH_PEER=inspircd: those
# announce every JOIN (announce_limit 0, as InspIRCd does) and use nothing
# InspIRCd lacks. InspIRCd completes registrations once a second, so runs
# that are not about logins log in 1,000 at a time (-inflight 1000) to
# keep its login phase short; the measured interval is unaffected.
# Logins, then bytes per idle connection. The N=10,000+ runs use
# announce_limit=1000 (label ends in q, "quiet"): with announcements a
# 10,000-user login costs minutes (ergo#1974); storm-10000 measures that.
bench -peer connect-100 0 connect -n 100
bench -peer connect-1000 0 connect -n 1000
# The same without any JOIN announcement: the cost of a login itself.
bench connect-1000-noannounce 1 connect -n 1000
# Idle memory side by side: 5,000 logged in, every JOIN announced, 100
# logins at a time (InspIRCd: about a minute). InspIRCd's RSS keeps the
# heap its O(n²) JOIN output grew into (glibc does not return it), so its
# figure grows with the login pace; see BENCHMARKS.md.
bench -peer idle-5000 0 connect -n 5000 -inflight 100
# Web users: the same idle hold over WebSocket (a reader goroutine each).
bench web-idle-1000 0 connect -n 1000 -inflight 100
bench connect-10000q 1000 connect -n 10000
# Login storm: every login at once, with and without announcements.
bench storm-10000q 1000 storm -n 10000 -timeout 150s
bench -peer storm-10000 0 storm -n 10000 -timeout 150s
bench hold-${HOLD_N}q 1000 hold -n "$HOLD_N" -duration 10s -timeout 150s
# Channel fan-out: closed loop, 10 senders, 10 messages each in flight,
# one line per write.
bench -peer fanout-100 0 fanout -n 100 -senders 10 -window 10 -duration 5s
bench -peer fanout-1000 0 fanout -n 1000 -senders 10 -window 10 -duration 10s -inflight 1000
bench fanout-10000q 1000 fanout -n 10000 -senders 10 -window 10 -duration 5s
# Fan-out at a fixed 50 messages/s into the channel: latency.
bench -peer fanout-1000-rate50 0 fanout -n 1000 -senders 10 -rate 50 -duration 10s -inflight 1000
# Private messages: n/2 pairs, 100 in flight per sender, one line per write.
bench -peer privmsg-100 0 privmsg -n 100 -window 100 -duration 5s
bench -peer privmsg-1000 0 privmsg -n 1000 -window 100 -duration 10s -inflight 1000
bench privmsg-10000q 1000 privmsg -n 10000 -window 100 -duration 5s
# Offline messages: replay at login, and storing (fsync before the 301).
bench offline-1000 0 offline -msgs 1000 -senders 10
bench offline-store-100 0 offline-store -senders 100 -window 1 -duration 5s

# The same traffic with one room on three daemons (one NATS server).
bench_cluster fanout-1000 fanout -n 1000 -senders 10 -window 10 -duration 10s -inflight 1000
bench_cluster privmsg-1000 privmsg -n 1000 -window 100 -duration 10s -inflight 1000

ELAPSED=$(($(date +%s) - START))

# ---- tables -------------------------------------------------------------
BASEFILE=/dev/null
[ -n "$BASE" ] && BASEFILE=$OUT.base
PEERFILE=/dev/null
[ -n "$PEER" ] && [ -f "$OUT.peer" ] && PEERFILE=$OUT.peer
awk -v elapsed="$ELAPSED" -v basefile="$BASEFILE" -v peerfile="$PEERFILE" -v newfile="$OUT" '
function kv(line, key,    n, i, a, p) {
	n = split(line, a, " ")
	for (i = 1; i <= n; i++) {
		p = index(a[i], "=")
		if (substr(a[i], 1, p - 1) == key) return substr(a[i], p + 1)
	}
	return "-"
}
/^#/ { next }
FILENAME == basefile { base[kv($0, "label")] = $0; next }
FILENAME == peerfile { peer[kv($0, "label")] = $0; next }
{ lab = kv($0, "label"); res[lab] = $0; order[++nres] = lab }
function row(lab, main, lat, cpu,    l) {
	l = res[lab]
	printf "%-25s %-60s %-30s %-22s %6s %6s %3s\n", lab, main, lat, cpu, kv(l, "srv_cpu_pct"), kv(l, "tool_cpu_pct"), kv(l, "ok")
}
END {
	printf "\n%-25s %-60s %-30s %-22s %6s %6s %3s\n", "run", "result", "latency p50/p99/max ms", "server CPU", "srv%", "tool%", "ok"
	for (i = 1; i <= nres; i++) {
		lab = order[i]; l = res[lab]; s = kv(l, "scenario")
		if (kv(l, "error") != "-") { printf "%-25s ERROR %s\n", lab, kv(l, "error"); continue }
		if (s == "connect" || s == "storm" || s == "hold")
			row(lab, sprintf("%s/%s joined in %ss, %s B/conn (peak %s), %s drops", kv(l, "welcomed"), kv(l, "n"), kv(l, "all_joined_s"), kv(l, "bytes_per_conn"), kv(l, "peak_bytes_per_conn"), kv(l, "disconnects")),
				sprintf("welcome %s/%s/%s", kv(l, "welcome_p50_ms"), kv(l, "welcome_p99_ms"), kv(l, "welcome_max_ms")),
				sprintf("%s s/k logins", kv(l, "srv_cpu_s_per_k_logins")))
		else if (s == "fanout" || s == "privmsg")
			row(lab, sprintf("%s deliveries/s, lost %s, reordered %s", kv(l, "deliveries_per_s"), kv(l, "lost"), kv(l, "reordered")),
				sprintf("%s/%s/%s", kv(l, "lat_p50_ms"), kv(l, "lat_p99_ms"), kv(l, "lat_max_ms")),
				sprintf("%s s/M deliveries", kv(l, "srv_cpu_s_per_M_deliveries")))
		else if (s == "offline")
			row(lab, sprintf("%s/%s replayed %s ms after the welcome", kv(l, "received"), kv(l, "msgs"), kv(l, "replay_ms")),
				sprintf("welcome %s", kv(l, "welcome_ms")),
				sprintf("%s s/k msgs", kv(l, "srv_cpu_s_per_k_msgs")))
		else if (s == "offline-store")
			row(lab, sprintf("%s stored/s, %s refused", kv(l, "stored_per_s"), kv(l, "refused")),
				sprintf("301 %s/%s/%s", kv(l, "ack_p50_ms"), kv(l, "ack_p99_ms"), kv(l, "ack_max_ms")),
				sprintf("%s s/k msgs", kv(l, "srv_cpu_s_per_k_msgs")))
	}

	printf "\n%-58s %-22s %-12s %s\n", "target", "measured", "goal", "met"
	target("memory per idle connection, N=10,000 (B)", "connect-10000q", "bytes_per_conn", "<=", 6144, "<= 6 KB")
	target("fan-out 1,000 closed loop: server s / M deliveries", "fanout-1000", "srv_cpu_s_per_M_deliveries", "<=", 0.6, "<= 0.6")
	target("fan-out 1,000 closed loop: lost + reordered", "fanout-1000", "lost+reordered", "<=", 0, "0")
	target("fan-out 1,000 at 50 msgs/s: p99 latency (ms)", "fanout-1000-rate50", "lat_p99_ms", "<=", 20, "<= 20")
	target("privmsg 500 pairs window 100: server s / M", "privmsg-1000", "srv_cpu_s_per_M_deliveries", "<=", 1.9, "<= 1.9")
	target("logins (N=1,000): server s / thousand", "connect-1000", "srv_cpu_s_per_k_logins", "<=", 0.150, "<= 0.150")
	target("logins (N=1,000, no announcements): s / thousand", "connect-1000-noannounce", "srv_cpu_s_per_k_logins", "<=", 0.150, "<= 0.150")
	for (lab in res) if (lab ~ /^hold-/)
		target(sprintf("%s concurrent users: drops + failed + silent", kv(res[lab], "n")), lab, "holdbad", "<=", 0, "0")
	target("login storm 10,000, quiet joins: all joined (s)", "storm-10000q", "stormtime", "<=", 30, "<= 30, all")
	target("login storm 10,000, announced joins: all joined (s)", "storm-10000", "stormtime", "<=", 30, "<= 30, all")
	target("offline: 1,000 replayed, ms after welcome", "offline-1000", "replay", "<=", 1000, "<= 1000, all")
	target("offline storing, 100 senders (msgs/s)", "offline-store-100", "stored_per_s", ">=", 5000, ">= 5000")

	if (length(base) > 0) {
		printf "\n%-25s %-28s %12s %12s %9s\n", "new vs base", "metric", "base", "new", "new/base"
		for (i = 1; i <= nres; i++) {
			lab = order[i]
			if (!(lab in base)) continue
			s = kv(res[lab], "scenario")
			if (s == "connect" || s == "storm" || s == "hold") { cmp(lab, "srv_cpu_s_per_k_logins"); cmp(lab, "all_joined_s"); cmp(lab, "bytes_per_conn"); cmp(lab, "peak_bytes_per_conn") }
			else if (s == "fanout" || s == "privmsg") { cmp(lab, "srv_cpu_s_per_M_deliveries"); cmp(lab, "deliveries_per_s"); cmp(lab, "lat_p99_ms") }
			else if (s == "offline") { cmp(lab, "replay_ms"); cmp(lab, "srv_cpu_s_per_k_msgs") }
			else if (s == "offline-store") { cmp(lab, "stored_per_s"); cmp(lab, "srv_cpu_s_per_k_msgs") }
		}
	}
	if (length(peer) > 0) {
		printf "\n%-22s %-28s %12s %12s %11s\n", "ours vs InspIRCd", "metric", "ours", "inspircd", "ours/theirs"
		for (i = 1; i <= nres; i++) {
			lab = order[i]
			if (!(lab in peer)) continue
			s = kv(res[lab], "scenario")
			if (s == "connect" || s == "storm") { pcmp(lab, "srv_cpu_s_per_k_logins"); pcmp(lab, "all_joined_s"); pcmp(lab, "bytes_per_conn"); pcmp(lab, "peak_bytes_per_conn") }
			else if (s == "fanout" || s == "privmsg") { pcmp(lab, "srv_cpu_s_per_M_deliveries"); pcmp(lab, "deliveries_per_s"); pcmp(lab, "lat_p99_ms"); pcmp(lab, "lost"); pcmp(lab, "srv_cpu_pct"); pcmp(lab, "tool_cpu_pct") }
			pcmp(lab, "ok")
		}
		printf "\n%-58s %-9s %-9s %-7s %-8s %s\n", "target (ours/InspIRCd, one run)", "ours", "inspircd", "ratio", "goal", "met"
		ptarget("privmsg 500 pairs, 100 in flight, 10 s: s / M", "privmsg-1000", "srv_cpu_s_per_M_deliveries", 0.8)
		ptarget("fan-out 1,000, 10 senders x 10 in flight: s / M deliv.", "fanout-1000", "srv_cpu_s_per_M_deliveries", 0.8)
		ptarget("idle memory per logged-in connection, 5,000 (B)", "idle-5000", "bytes_per_conn", 1.0)
		ptarget("login CPU, N=1,000, JOINs announced: s / thousand", "connect-1000", "srv_cpu_s_per_k_logins", 1.0)
		ploss("privmsg-1000"); ploss("fanout-1000")
		if ("storm-10000" in peer)
			printf "%-58s %-9s %-9s %-7s %-8s %s\n", "login storm 10,000, announced: s until all joined", kv(res["storm-10000"], "all_joined_s"), kv(peer["storm-10000"], "all_joined_s"), ratio(kv(res["storm-10000"], "all_joined_s"), kv(peer["storm-10000"], "all_joined_s")), "-", "(shown)"
	}
	printf "\nmake bench took %d s\n", elapsed
}
function ratio(a, b) { return (b + 0 != 0 && a != "-" && b != "-" && a != "NA" && b != "NA") ? sprintf("%.2f", a / b) : "-" }
function pcmp(lab, key,    o, p) {
	o = kv(res[lab], key); p = kv(peer[lab], key)
	printf "%-22s %-28s %12s %12s %11s\n", lab, key, o, p, ratio(o, p)
}
function ptarget(name, lab, key, goal,    o, p, r, ok) {
	if (!(lab in res) || !(lab in peer)) return
	o = kv(res[lab], key); p = kv(peer[lab], key); r = ratio(o, p)
	ok = (r != "-" && r + 0 <= goal && kv(res[lab], "error") == "-" && kv(peer[lab], "error") == "-")
	printf "%-58s %-9s %-9s %-7s %-8s %s\n", name, o, p, r, "<= " goal, ok ? "yes" : "NO"
}
function ploss(lab,    o, p, ok) {
	if (!(lab in res) || !(lab in peer)) return
	o = kv(res[lab], "lost") + kv(res[lab], "reordered"); p = kv(peer[lab], "lost") + kv(peer[lab], "reordered")
	ok = (o == 0 && kv(res[lab], "ok") == 1 && kv(res[lab], "deliveries") > 0)
	printf "%-58s %-9s %-9s %-7s %-8s %s\n", lab ": lost + reordered (ours must be 0)", o, p, "-", "0", ok ? "yes" : "NO"
}
function cmp(lab, key,    b, n) {
	b = kv(base[lab], key); n = kv(res[lab], key)
	printf "%-25s %-28s %12s %12s %9s\n", lab, key, b, n, (b + 0 != 0 && n != "-" && b != "-") ? sprintf("%.2f", n / b) : "-"
}
function target(name, lab, key, op, goal, goaltxt,    l, v, ok) {
	if (!(lab in res)) return
	l = res[lab]
	if (kv(l, "error") != "-") { printf "%-58s %-22s %-12s %s\n", name, "error", goaltxt, "NO"; return }
	if (key == "lost+reordered") v = kv(l, "lost") + kv(l, "reordered")
	else if (key == "holdbad") v = kv(l, "disconnects") + (kv(l, "n") - kv(l, "alive")) + kv(l, "failed")
	else if (key == "stormtime") v = kv(l, "all_joined_s")
	else if (key == "replay") v = kv(l, "replay_ms")
	else v = kv(l, key)
	if (v == "-" || v == "NA") { printf "%-58s %-22s %-12s %s\n", name, "n/a", goaltxt, "?"; return }
	ok = (op == "<=") ? (v + 0 <= goal) : (v + 0 >= goal)
	if (key == "stormtime" && kv(l, "welcomed") != kv(l, "n")) { ok = 0; v = v " (" kv(l, "welcomed") "/" kv(l, "n") ")" }
	if (key == "replay" && kv(l, "received") != kv(l, "msgs")) { ok = 0; v = v " (" kv(l, "received") "/" kv(l, "msgs") ")" }
	printf "%-58s %-22s %-12s %s\n", name, v, goaltxt, ok ? "yes" : "NO"
}
' "$BASEFILE" "$PEERFILE" "$OUT"

# Cluster rows next to the same rows on one server.
awk '
function kv(line, key,    n, i, a, p) {
	n = split(line, a, " ")
	for (i = 1; i <= n; i++) { p = index(a[i], "="); if (p && substr(a[i], 1, p - 1) == key) return substr(a[i], p + 1) }
	return "-"
}
{ lab = kv($0, "label"); res[lab] = $0 }
END {
	header = 0
	for (lab in res) {
		if (substr(lab, 1, 8) != "cluster-") continue
		one = substr(lab, 9)
		if (!header) {
			printf "\n%-16s %-30s %14s %14s %9s\n", "cluster (3+NATS)", "metric (all processes summed)", "one server", "cluster", "ratio"
			header = 1
		}
		for (k = 1; k <= 3; k++) {
			key = (k == 1) ? "srv_cpu_s_per_M_deliveries" : (k == 2) ? "deliveries_per_s" : "lost"
			o = kv(res[one], key); c = kv(res[lab], key)
			printf "%-16s %-30s %14s %14s %9s\n", one, key, o, c, (o + 0 != 0 && c != "-" && o != "-") ? sprintf("%.2f", c / o) : "-"
		}
		if (kv(res[lab], "error") != "-") printf "%-16s error: %s\n", one, kv(res[lab], "error")
	}
}' "$OUT"
