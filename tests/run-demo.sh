#!/bin/sh
# `make run`: install what is missing, build, create ./demo on the first run (domain
# example.test, account demo@example.test with a password printed once) and serve in the
# foreground on high ports (10025 SMTP, 10587/10465 submission, 10110/10995 POP3,
# 10143/10993 IMAP).
set -e
cd "$(dirname "$0")/.."
sh tests/deps.sh build
make -j2 all >/dev/null
P="./build/posthorn -c demo/posthorn.conf"
if [ ! -f demo/posthorn.conf ]; then
	./build/posthorn init demo --hostname localhost --port-base 10000 >/dev/null
	cat >>demo/posthorn.conf <<'CONF'

# The demo runs offline: with the checks on arrival (SPF, DKIM, DMARC), a `swaks` to
# port 10025 would wait for DNS lookups to time out. A server on the Internet keeps them on.
inbound_checks = no
CONF
	$P domain add example.test
	pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-16)
	printf '%s\n' "$pw" | $P user add demo@example.test
	cat <<MSG

  Posthorn demo created in ./demo
  domain:   example.test
  account:  demo@example.test
  password: $pw      (shown only this once; change it with:
            ./build/posthorn -c demo/posthorn.conf user passwd demo@example.test)

  SMTP 127.0.0.1:10025 · submission 10587 (STARTTLS) · submissions 10465 (TLS)
  POP3 10110 (STLS) · 10995 (TLS) · IMAP 10143 (STARTTLS) · 10993 (TLS)
  try:  swaks --server 127.0.0.1:10025 --to demo@example.test
        ./build/posthorn -c demo/posthorn.conf mail list demo@example.test

MSG
fi
exec $P serve
