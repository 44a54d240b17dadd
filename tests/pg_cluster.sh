#!/bin/sh
# A throw-away PostgreSQL cluster for tests: `pg_cluster.sh start DIR` creates a cluster in
# DIR (a new or empty directory), starts it on a free loopback port with its socket in DIR,
# creates a fresh database and prints its connection URI; `pg_cluster.sh stop DIR` stops
# it and removes what start made. initdb refuses root: as root the cluster belongs to the
# `postgres` system user (runuser). Trust authentication, loopback only.
# `pg_cluster.sh standby PRIMARY_DIR DIR` makes DIR a streaming standby of the running
# cluster in PRIMARY_DIR (pg_basebackup -R), starts it on a free port and prints the port;
# `pg_cluster.sh promote DIR` makes that standby a primary (failover tests).
set -eu
usage() { echo "usage: $0 start|stop|promote DIR | standby PRIMARY_DIR DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
if [ "$cmd" = standby ]; then
	[ $# -eq 3 ] || usage
	primary=$2
	dir=$3
else
	[ $# -eq 2 ] || usage
	dir=$2
fi
PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
	for v in 15 16 17; do
		[ -x /usr/lib/postgresql/$v/bin/initdb ] && PG_BIN=/usr/lib/postgresql/$v/bin && break
	done
fi
[ -n "$PG_BIN" ] || { echo "pg_cluster: no PostgreSQL server binaries (postgresql-15)" >&2; exit 1; }
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the cluster in $dir/data on a free port (a few tries: the port may be taken
# between the look and the start); records the port in $dir/port.
run_on_free_port() {
	tries=0
	while :; do
		port=$(free_port)
		if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
			-o "-p $port -c max_connections=300 -c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir'" \
			>/dev/null 2>&1; then
			break
		fi
		tries=$((tries + 1))
		[ $tries -lt 5 ] || { tail -20 "$dir/server.log" >&2; exit 1; }
	done
	echo "$port" >"$dir/port"
}

start() {
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ -e "$dir/data" ] && { echo "pg_cluster: $dir/data exists" >&2; exit 1; }
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	# --no-sync: only initdb's own final sync is skipped; the server keeps fsync on. The
	# default collation is linguistic (ICU), as on most installations: byte order where
	# the store needs it must come from the schema.
	as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		--locale-provider=icu --icu-locale=en \
		--no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	run_on_free_port
	as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres posthorn_test
	echo "postgresql://postgres@127.0.0.1:$port/posthorn_test"
}

standby() {
	primary=$(cd "$primary" && pwd)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ -e "$dir/data" ] && { echo "pg_cluster: $dir/data exists" >&2; exit 1; }
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	# initdb's pg_hba.conf lets 127.0.0.1 replicate with trust; -R writes standby.signal
	# and primary_conninfo; -X stream brings the WAL the copy needs.
	as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U postgres \
		-D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
		{ cat "$dir/basebackup.log" >&2; exit 1; }
	run_on_free_port
	cat "$dir/port"
}

promote() {
	as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
}

stop() {
	[ -d "$dir" ] || exit 0
	if [ -d "$dir/data" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$dir/data"
	fi
	rm -f "$dir/port" "$dir/initdb.log" "$dir/server.log" "$dir/basebackup.log"
	rmdir "$dir" 2>/dev/null || true
}

case $cmd in
start) start ;;
stop) stop ;;
standby) standby ;;
promote) promote ;;
*) usage ;;
esac
