#!/bin/sh
# Install the benchmark peers from Debian when missing: Postfix (for smtp-source, smtp-sink and as the
# peer MTA), Dovecot (LMTP, IMAP, POP3) and the check daemons of bench/checks_bench.py. Postfix is installed with the debconf answer
# "No configuration" and service start-up is blocked during the install, so no system-wide
# Postfix or Dovecot is configured or started: bench/peers/peer.sh runs private instances.
set -e
# opendkim, opendmarc and postfix-policyd-spf-python: the peer's SPF/DKIM/DMARC checks
# (bench/checks_bench.py), run as private daemons; their system services are not started.
PKGS="postfix dovecot-core dovecot-lmtpd dovecot-imapd dovecot-pop3d knot strace opendkim
opendmarc postfix-policyd-spf-python"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "bench: missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "bench: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Keep maintainer scripts from starting the system services (invoke-rc.d honours this).
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
rc=0
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >/dev/null || rc=$?
[ -n "$made_policy" ] && rm -f "$policy"
exit $rc
