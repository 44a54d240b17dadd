#!/bin/sh
# Install the Debian packages that building, running and testing Posthorn need, when they
# are missing and we are root. Usage: tests/deps.sh build|test
set -e
# nettle-dev: libunbound.pc requires hogweed.pc and nettle.pc, and Debian's libunbound-dev
# does not depend on it (without it pkg-config fails for libunbound).
# libjansson-dev: rspamd's replies are JSON (smtp/rspamd_proto.c; docs/design-notes.md).
BUILD_PKGS="build-essential pkg-config libevent-dev libssl-dev libsqlite3-dev libsodium-dev openssl
	libunbound-dev nettle-dev zlib1g-dev libpq-dev libjansson-dev"
# Each tool comes with what it needs to work, not only its binary: we install without
# recommends, so swaks needs its Perl modules for TLS (Net::SSLeay, IO::Socket::SSL) and
# AUTH (Authen::SASL, Digest::HMAC) named here; fetchmail and curl need the CA bundle.
# rspamd: test_rspamd.py's smoke test against the real one (GTUBE rejected; skipped without).
# python3-fusepy (with libfuse2): powerfs, the file system of the power-loss tests; mount
# (mount, umount: not in a minimal Debian) for them and for the disk-full tests' tmpfs.
TEST_PKGS="libcmocka-dev python3 python3-pytest clang libclang-rt-14-dev clang-format
	swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl libdigest-hmac-perl
	fetchmail getmail6 isync curl ca-certificates offlineimap3 neomutt tmux
	python3-dnslib ldnsutils python3-dkim python3-nacl opendkim-tools iproute2 util-linux
	python3-aiosmtpd postgresql-15 python3-spf python3-yaml publicsuffix python3-authres python3-milter
	rspamd python3-fusepy mount"
want="$BUILD_PKGS"
[ "$1" = test ] && want="$want $TEST_PKGS"
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "posthorn: missing Debian packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	echo "posthorn: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The load-generator smoke test uses Postfix's smtp-source; the peers' installer sets
# Postfix up with "No configuration" and starts no system service.
if [ "$1" = test ]; then
	sh "$(dirname "$0")/../bench/peers/install.sh"
fi
