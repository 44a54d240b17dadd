#!/bin/sh
# The layer rules of STYLE.md, checked over #include lines. Prints each violation.
cd "$(dirname "$0")/.."
bad=0
violation() { echo "layer violation: $1"; bad=1; }
check() { # $1 = directory glob, $2 = allowed project include prefixes (regex)
	for f in $(find $1 -name '*.[ch]' 2>/dev/null); do
		grep -E '^#include "' "$f" | sed -E 's/#include "([^"]+)".*/\1/' | while read -r inc; do
			echo "$inc" | grep -Eq "$2" || echo "$f includes $inc"
		done
	done
}
out=$( {
	check src/core '^core/'
	check src/net '^(core|net)/'
	check src/mime '^(core|mime)/'
	check src/auth '^(core|auth)/'
	check src/store '^(core|mime|store)/'
	for p in smtp pop3 imap; do
		check src/$p "^(core/|net/|auth/|mime/|store/store\.h$|$p/)"
	done
} )
[ -n "$out" ] && violation "$out"
for f in $(grep -rlE '#include <(event2/|openssl/ssl\.h)' src | grep -v '^src/net/'); do
	violation "$f includes libevent or openssl/ssl.h outside src/net/"
done
for f in $(grep -rlE '#include <unbound' src | grep -v '^src/net/'); do
	violation "$f includes libunbound outside src/net/"
done
for f in $(grep -rlE 'sqlite3' src | grep -v '^src/store/sqlite/'); do
	violation "$f mentions sqlite3 outside src/store/sqlite/"
done
for f in $(grep -rlE '#include <libpq' src | grep -v '^src/store/pg/'); do
	violation "$f includes libpq outside src/store/pg/"
done
for f in $(find src -name '*.c'); do
	grep -q '#include "core/banned.h"' "$f" || violation "$f does not include core/banned.h"
done
[ $bad -eq 0 ] && echo "layers ok"
exit $bad
