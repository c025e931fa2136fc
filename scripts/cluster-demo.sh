#!/usr/bin/env bash
# `make cluster-demo`: one room served by three daemons on loopback, with a
# three-server NATS cluster behind them (JetStream, every stream and bucket
# replicated three times), the layout for production on three machines.
#
#   NATS servers  127.0.0.1:4222 4223 4224   (routes on 6222 6223 6224)
#   ircd nodes    127.0.0.1:6667 (a)  6668 (b)  6669 (c)
#
# Point clients at any of the three: alice on 6667 and bob on 6669 are in
# the same #lobby, can message each other, and so on. Ctrl-C stops it all.
# State is kept in data/cluster-demo (delete it to start afresh).
#
# Environment:
#   CLUSTER_DEMO_CHECK=1   start, check that a line crosses from a to c and
#                          a stored message survives, then stop (used by a test)
#   CLUSTER_DEMO_DIR=dir   where state and logs go (default data/cluster-demo)
#   GO=go                  the go command
set -u -o pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
DIR=${CLUSTER_DEMO_DIR:-data/cluster-demo}
CHECK=${CLUSTER_DEMO_CHECK:-}
mkdir -p "$DIR" bin
DIR=$(cd "$DIR" && pwd)

say() { printf '%s\n' "$*"; }
say "== building bin/ircd and bin/natsd"
$GO build -o bin/ircd ./cmd/ircd || exit 1
$GO build -o bin/natsd ./cmd/natsd || exit 1

PIDS=()
stop() { # daemons first (they release their sessions), then NATS
	local rev=()
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do rev+=("${PIDS[$i]}"); done
	for p in "${rev[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${rev[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}
trap stop EXIT
trap 'exit 130' INT TERM

# wait_log FILE REGEX: until the log says it (60 s at most).
wait_log() {
	for _ in $(seq 600); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	say "!!! timed out waiting for /$2/ in $1:"
	tail -20 "$1"
	return 1
}

ROUTES="nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224"
say "== NATS cluster: 127.0.0.1:4222, 4223, 4224"
for i in 0 1 2; do
	bin/natsd -name "nats$i" -addr "127.0.0.1:$((4222 + i))" -store "$DIR/nats$i" \
		-cluster "127.0.0.1:$((6222 + i))" -routes "$ROUTES" >"$DIR/nats$i.log" 2>&1 &
	PIDS+=($!)
done
for i in 0 1 2; do wait_log "$DIR/nats$i.log" "clients at" || exit 1; done

cp users.txt "$DIR/users.txt"
say "== ircd nodes: a on 127.0.0.1:6667, b on 6668, c on 6669"
NODES=(a b c)
for i in 0 1 2; do
	node=${NODES[$i]}
	cat >"$DIR/$node.toml" <<EOF
[server]
name = "$node.lobby.local"
listen = ["127.0.0.1:$((6667 + i))"]
[accounts]
users_file = "users.txt"
[cluster]
nats = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"]
node = "$node"
replicas = 3
EOF
	# The JetStream cluster elects its leaders once its routes are up; the
	# first daemon waits for that.
	bin/ircd -config "$DIR/$node.toml" >"$DIR/$node.log" 2>&1 &
	PIDS+=($!)
	wait_log "$DIR/$node.log" "msg=listening" || exit 1
done

if [ -z "$CHECK" ]; then
	say ""
	say "Ready. Connect to any node, e.g. with irssi:"
	say "  /connect 127.0.0.1 6667 alicepw alice      (node a)"
	say "  /connect 127.0.0.1 6669 bobpw bob          (node c)"
	say "or nc -C 127.0.0.1 6668. Logs: $DIR/*.log. Ctrl-C stops everything."
	wait
	exit 0
fi

# The check: alice on a, bob on c; a room line and a private message
# cross; a message stored for carol (offline) is delivered on b.
say "== checking"
irc() { # irc PORT NICK: a connection on fd 3/4, logged in
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'PASS %spw\r\nNICK %s\r\nUSER %s 0 * :%s\r\n' "$2" "$2" "$2" "$2" >&3
}
expect() { # expect FD REGEX: read lines until one matches (10 s)
	local line
	while IFS= read -r -t 10 line <&"$1"; do
		[[ $line =~ $2 ]] && return 0
	done
	say "!!! did not see /$2/"
	return 1
}
exec 5<>/dev/tcp/127.0.0.1/6669 && printf 'PASS bobpw\r\nNICK bob\r\nUSER bob 0 * :bob\r\n' >&5
expect 5 ' 366 bob ' || exit 1
irc 6667 alice || exit 1
expect 3 ' 366 alice ' || exit 1
expect 5 ':alice!.* JOIN #lobby' || exit 1
printf 'PRIVMSG #lobby :hello from a\r\nPRIVMSG bob :psst\r\nPRIVMSG carol :while you were out\r\n' >&3
expect 5 ':alice!.* PRIVMSG #lobby :hello from a' || exit 1
expect 5 ':alice!.* PRIVMSG bob :psst' || exit 1
expect 3 ' 301 alice carol ' || exit 1
exec 6<>/dev/tcp/127.0.0.1/6668 && printf 'PASS carolpw\r\nNICK carol\r\nUSER carol 0 * :carol\r\n' >&6
expect 6 'PRIVMSG carol :.*while you were out' || exit 1
say "cluster demo: ok (a room line and a private message crossed nodes, a stored message reached its recipient on a third)"
