#!/bin/bash
# A private Postfix -> Dovecot (LMTP, Maildir) pair in one directory, the peer Posthorn is
# measured against. Nothing system-wide is touched: own config, queue, data and log
# directories, loopback-only listeners on unprivileged ports, started and stopped by PID.
#
#   peer.sh start DIR PORT_BASE DOMAIN USER...   configure and start; prints the two master PIDs
#   peer.sh stop DIR                             stop both (SIGTERM, then SIGKILL) by their PIDs
#   peer.sh count DIR USER                       messages in USER's Maildir (new/ + cur/)
#
# Ports: SMTP PORT_BASE+25, POP3 PORT_BASE+110, IMAP PORT_BASE+143, all on 127.0.0.1.
# USER is a full address in DOMAIN; its password is "bench-" followed by the address, stored
# as {PLAIN}; or, when PEER_PASSWORDS names a file of "ADDRESS {SCHEME}HASH" lines, the hash
# given there (bench/run gives argon2id hashes with Posthorn's parameters, so that a POP3
# login costs both servers the same). PEER_AUTH_CACHE=1 turns on Dovecot's auth_cache (10M,
# 1 hour) for the authentication benchmark. PEER_MAIN_CF and PEER_MASTER_CF name files whose
# lines are added to Postfix's main.cf and master.cf; PEER_RESOLV_CONF names a resolv.conf
# that Postfix's master and its children see as /etc/resolv.conf (a private mount namespace,
# unshare -m): bench/checks_bench.py's policy service and milters.
# Postfix accepts mail for DOMAIN (virtual mailbox domain, unknown users rejected at RCPT) and
# hands it over LMTP on a unix socket to Dovecot, which writes Maildir with its default fsync
# settings (mail_fsync = optimized). Both log to files under DIR (there is no syslog here).
set -eu

MAIL_USER=mail	# unprivileged owner of the Maildirs (exists on every Debian system)

die() { echo "peer.sh: $*" >&2; exit 1; }

pf_pid() { cat "$1/postfix/queue/pid/master.pid" 2>/dev/null | tr -d ' ' || true; }
dc_pid() { cat "$1/dovecot/run/master.pid" 2>/dev/null | tr -d ' ' || true; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Wait up to $2 tenths of a second for a TCP port on 127.0.0.1 to accept.
wait_port() {
	i=0
	while [ $i -lt "$2" ]; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

write_postfix() { # dir port domain users...
	d=$1 port=$2 domain=$3
	shift 3
	maps=""
	for u in "$@"; do maps="$maps $u=ok"; done
	pf=$d/postfix
	mkdir -p "$pf/etc" "$pf/queue" "$pf/data" "$pf/log"
	chown postfix "$pf/data"
	cat >"$pf/etc/main.cf" <<EOF
# Private Postfix for the Posthorn benchmark (bench/peers/peer.sh).
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $pf/log
maillog_file = $pf/log/maillog
myhostname = peer.$domain
mydomain = $domain
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
virtual_mailbox_domains = $domain
virtual_mailbox_maps = inline:{$maps }
virtual_transport = lmtp:unix:$d/dovecot/run/lmtp
message_size_limit = 52428800
EOF
	# chroot off everywhere: the paths above are absolute outside any chroot.
	cat >"$pf/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	if [ -n "${PEER_MAIN_CF:-}" ]; then cat "$PEER_MAIN_CF" >>"$pf/etc/main.cf"; fi
	if [ -n "${PEER_MASTER_CF:-}" ]; then cat "$PEER_MASTER_CF" >>"$pf/etc/master.cf"; fi
	return 0
}

write_dovecot() { # dir port_base domain users...
	d=$1 base=$2 domain=$3
	shift 3
	dc=$d/dovecot
	mkdir -p "$dc/etc" "$dc/run" "$dc/state" "$dc/log" "$dc/mail"
	chown "$MAIL_USER:$MAIL_USER" "$dc/mail"
	uid=$(id -u "$MAIL_USER")
	gid=$(id -g "$MAIL_USER")
	: >"$dc/etc/users"
	for u in "$@"; do
		local_part=${u%@*}
		pw="{PLAIN}bench-$u"
		if [ -n "${PEER_PASSWORDS:-}" ]; then
			pw=$(awk -v u="$u" '$1 == u { print $2; exit }' "$PEER_PASSWORDS")
			[ -n "$pw" ] || die "no password for $u in $PEER_PASSWORDS"
		fi
		echo "$u:$pw:$uid:$gid::$dc/mail/$domain/$local_part::" >>"$dc/etc/users"
	done
	cat >"$dc/etc/dovecot.conf" <<EOF
# Private Dovecot for the Posthorn benchmark (bench/peers/peer.sh). Fsync settings are
# Dovecot's defaults.
instance_name = posthorn-bench-$base
base_dir = $dc/run
state_dir = $dc/state
log_path = $dc/log/dovecot.log
info_log_path = $dc/log/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = $uid
mail_location = maildir:~/Maildir
default_process_limit = 1100
default_client_limit = 5000
mail_max_userip_connections = 2000
$(if [ -n "${PEER_AUTH_CACHE:-}" ]; then printf 'auth_cache_size = 10M\nauth_cache_ttl = 1 hour\n'; fi)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dc/etc/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dc/etc/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $((base + 143))
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $((base + 110))
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@$domain
}
EOF
}

start() {
	[ $# -ge 4 ] || die "usage: peer.sh start DIR PORT_BASE DOMAIN USER..."
	d=$1 base=$2 domain=$3
	shift 3
	command -v /usr/sbin/postfix >/dev/null || die "postfix is not installed (bench/peers/install.sh)"
	command -v /usr/sbin/dovecot >/dev/null || die "dovecot is not installed (bench/peers/install.sh)"
	mkdir -p "$d"
	d=$(cd "$d" && pwd)
	chmod 755 "$d"	# Postfix and Dovecot drop privileges and must traverse it
	write_postfix "$d" $((base + 25)) "$domain" "$@"
	write_dovecot "$d" "$base" "$domain" "$@"
	ulimit -n 65536 2>/dev/null || true
	# Dovecot first: its LMTP socket is in its own base_dir, so order does not matter for
	# correctness, but Postfix can then deliver from the first message on. Daemons get no
	# pipe of ours (a pipe held by a daemon never closes).
	/usr/sbin/dovecot -c "$d/dovecot/etc/dovecot.conf" </dev/null >"$d/dovecot/log/start.log" 2>&1 ||
		die "dovecot did not start: $(cat "$d/dovecot/log/start.log" "$d/dovecot/log/dovecot.log" 2>/dev/null)"
	pf_start=(/usr/sbin/postfix -c "$d/postfix/etc" start)
	if [ -n "${PEER_RESOLV_CONF:-}" ]; then
		pf_start=(unshare -m --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' \
			"$PEER_RESOLV_CONF" "${pf_start[@]}")
	fi
	if ! "${pf_start[@]}" </dev/null >"$d/postfix/log/start.log" 2>&1; then
		# Fatal start-up errors go only to syslog; on a terminal they go to stderr.
		script -q -c "/usr/sbin/postfix -c $d/postfix/etc check" /dev/null </dev/null >>"$d/postfix/log/start.log" 2>&1 || true
		stop_pid "$(dc_pid "$d")"
		die "postfix did not start: $(cat "$d/postfix/log/start.log" "$d/postfix/log/maillog" 2>/dev/null)"
	fi
	wait_port $((base + 25)) 100 || stop_die "$d" "postfix does not listen on $((base + 25)): $(cat "$d/postfix/log/maillog" 2>/dev/null)"
	wait_port $((base + 143)) 100 || stop_die "$d" "dovecot does not listen on $((base + 143)): $(cat "$d/dovecot/log/dovecot.log" 2>/dev/null)"
	i=0
	while [ ! -S "$d/dovecot/run/lmtp" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -S "$d/dovecot/run/lmtp" ] || stop_die "$d" "dovecot has no LMTP socket"
	echo "postfix $(pf_pid "$d")"
	echo "dovecot $(dc_pid "$d")"
}

# SIGTERM the process with this PID, wait up to 10 s, then SIGKILL it.
stop_pid() {
	pid=$1
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while alive "$pid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
	return 0
}

# Stop both (start failed half-way), then fail with a message.
stop_die() {
	stop "$1"
	die "$2"
}

stop() {
	[ $# -eq 1 ] || die "usage: peer.sh stop DIR"
	d=$1
	# Postfix's master terminates its children on SIGTERM, Dovecot's master likewise.
	stop_pid "$(pf_pid "$d")"
	stop_pid "$(dc_pid "$d")"
}

count() {
	[ $# -eq 2 ] || die "usage: peer.sh count DIR USER"
	d=$1 u=$2
	md=$(sed -n "s|^$u:[^:]*:[^:]*:[^:]*:[^:]*:\\([^:]*\\):.*|\\1|p" "$d/dovecot/etc/users")/Maildir
	n=0
	for sub in new cur; do
		[ -d "$md/$sub" ] || continue
		n=$((n + $(find "$md/$sub" -maxdepth 1 -type f | wc -l)))
	done
	echo "$n"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start) start "$@" ;;
stop) stop "$@" ;;
count) count "$@" ;;
*) die "usage: peer.sh start|stop|count ..." ;;
esac
