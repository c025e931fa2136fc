#!/usr/bin/env bash
# InspIRCd as the peer of `make bench` (BENCH_PEER=inspircd): a config for
# one benchmark run, and starting it in the foreground on a free port.
#
#   scripts/inspircd-peer.sh config DIR PORT   print the config for a server
#                                              whose pid file and log are in DIR
#   . scripts/inspircd-peer.sh                 (from bench.sh) defines
#       peer_start DIR   start a fresh InspIRCd with its config, log and pid
#                        file in DIR; sets PEER_PID and PEER_ADDR (127.0.0.1:PORT)
#
# The config is written for InspIRCd 3 (Debian's 3.15; the keys are read by
# src/configreader.cpp and src/usermanager.cpp of v3.15.0). Everything that
# would throttle or refuse a benchmark client is off or far out of reach,
# and nothing is looked up:
#   <connect>
#     resolvehostnames="no"  no reverse DNS per connection. There is no ident
#                            lookup anyway: m_ident is not loaded.
#     threshold="4000000"    flood penalty allowed before a client is held or
#                            killed: 4 M commands. InspIRCd multiplies it by
#                            1000 in an unsigned int, so 4,294,967 is the most
#                            that does not wrap. The default is 10.
#     commandrate="4000000000"  penalty forgiven each second (millicommands/s):
#                            4 M commands/s. The default is 1 command/s.
#     fakelag="no"           nothing is delayed; with the two above nothing
#                            is ever over the limit either.
#     softsendq, hardsendq   64 MiB. The soft limit stops reading a client's
#                            commands while its own send queue is longer (a
#                            fan-out sender is also a receiver); the hard one
#                            disconnects it. Defaults 4 KiB and 1 MiB. (Ours
#                            disconnects at 1 MiB, [limits] sendq.)
#     recvq                  64 MiB of unparsed input (default 4 KiB).
#     localmax, globalmax, limit   100,000 connections from one address, in
#                            all and in the class (every client is 127.0.0.1).
#     maxconnwarn="no"       no notice per refused clone (none are refused).
#     timeout="60"           registration timeout: ours ([limits]
#                            registration_timeout) is 60 s too. In the
#                            announced 10,000-login storm both servers get
#                            close to it here (welcome p99 about 58 s).
#     pingfreq="120"         the default, the same as ours (ping_interval).
#   <performance> softlimit="100000" (it is capped at the fd limit),
#     somaxconn="4096" (the kernel's maximum here), clonesonconnect="no".
#   <bind address="127.0.0.1" port=PORT type="clients">: loopback only.
#   <pid> and <log> (the default level, as the Debian config) in DIR. No MOTD
#     file, so it answers 422 like ours (no motd configured). No modules
#     beyond the core ones InspIRCd always loads.
# It runs with --nofork (the caller owns the pid; the process we measure is
# the server itself) and, when started by root, --runasroot (otherwise it
# refuses to start as root; nothing in this setup needs root).

peer_config() { # DIR PORT
	cat <<EOF
<server name="peer.bench.local" description="ircbench peer" network="BenchNet">
<admin name="ircbench" nick="ircbench" email="ircbench@localhost">
<path configdir="$1" datadir="$1" logdir="$1" runtimedir="$1" moduledir="${INSPIRCD_MODULES:-/usr/lib/inspircd/modules}">
<bind address="127.0.0.1" port="$2" type="clients">
<connect name="bench" allow="*" timeout="60" pingfreq="120" maxchans="20"
         resolvehostnames="no"
         threshold="4000000" commandrate="4000000000" fakelag="no"
         softsendq="67108864" hardsendq="67108864" recvq="67108864"
         localmax="100000" globalmax="100000" limit="100000" maxconnwarn="no">
<cidr ipv4clone="32" ipv6clone="128">
<performance softlimit="100000" somaxconn="4096" clonesonconnect="no" quietbursts="yes">
<pid file="$1/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$1/inspircd.log">
EOF
}

# peer_owns_port PID PORT: a socket listening on 127.0.0.1:PORT is one of
# PID's descriptors (another program may have taken the port first).
peer_owns_port() {
	local hex inode
	hex=$(printf '%04X' "$2")
	inode=$(awk -v a="0100007F:$hex" '$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp)
	[ -n "$inode" ] || return 1
	ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$inode\]"
}

# peer_free_port: a port below the ephemeral range that nothing on this
# machine is using (any state) right now.
peer_free_port() {
	local p hex i
	for i in $(seq 50); do
		p=$((10000 + RANDOM % 20000))
		hex=$(printf '%04X' "$p")
		if ! awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

# peer_start DIR: start InspIRCd (${INSPIRCD:-/usr/sbin/inspircd}) in the
# background with a fresh config in DIR; sets PEER_PID and PEER_ADDR. A
# port someone else bound between the check and the bind is retried with
# another one (up to 5 times).
peer_start() {
	local dir=$1 bin=${INSPIRCD:-/usr/sbin/inspircd} port try i
	local extra=()
	[ "$(id -u)" = 0 ] && extra+=(--runasroot)
	PEER_PID="" PEER_ADDR=""
	for try in 1 2 3 4 5; do
		port=$(peer_free_port) || return 1
		rm -f "$dir/inspircd.pid" "$dir/inspircd.log"
		peer_config "$dir" "$port" >"$dir/inspircd.conf"
		"$bin" --config "$dir/inspircd.conf" --nofork "${extra[@]}" >"$dir/inspircd.out" 2>&1 </dev/null &
		PEER_PID=$!
		for i in $(seq 100); do
			kill -0 "$PEER_PID" 2>/dev/null || break
			grep -q 'failed to bind' "$dir/inspircd.out" && break
			if grep -q 'is now running' "$dir/inspircd.out" && peer_owns_port "$PEER_PID" "$port"; then
				PEER_ADDR=127.0.0.1:$port
				return 0
			fi
			sleep 0.1
		done
		kill -KILL "$PEER_PID" 2>/dev/null
		wait "$PEER_PID" 2>/dev/null
		PEER_PID=""
		grep -q 'failed to bind' "$dir/inspircd.out" || break # not a port clash: give up
	done
	printf 'InspIRCd did not start (%s):\n' "$bin" >&2
	cat "$dir/inspircd.out" >&2
	return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case "${1:-}" in
	config)
		[ $# = 3 ] || { echo "usage: $0 config DIR PORT" >&2; exit 2; }
		peer_config "$2" "$3"
		;;
	*)
		echo "usage: $0 config DIR PORT (or source it for peer_start)" >&2
		exit 2
		;;
	esac
fi
