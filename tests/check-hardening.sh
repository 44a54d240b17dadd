#!/bin/sh
# Checks that a binary (default build/posthorn) carries the hardening of the release build
# (Makefile REL_CFLAGS/REL_LDFLAGS): a position-independent executable, full RELRO (a
# GNU_RELRO segment and BIND_NOW), the stack protector and FORTIFY_SOURCE (calls to the
# checking __*_chk variants of libc). Prints what it found; exit 1 when anything is missing.
set -u
bin=${1:-build/posthorn}
[ -f "$bin" ] || { echo "hardening: $bin not found"; exit 1; }
bad=0
check() { # $1 = what, $2 = 0 when present
	if [ "$2" -eq 0 ]; then echo "hardening: $1 ok"; else echo "hardening: $1 MISSING"; bad=1; fi
}
readelf -h "$bin" | grep -q 'Type:[[:space:]]*DYN'
check "PIE (ELF type DYN)" $?
readelf -d "$bin" | grep -q 'FLAGS_1.*PIE'
check "PIE flag" $?
readelf -l "$bin" | grep -q 'GNU_RELRO'
check "RELRO segment" $?
readelf -d "$bin" | grep -Eq 'BIND_NOW|FLAGS_1.*NOW'
check "BIND_NOW" $?
readelf --dyn-syms -W "$bin" | grep -q '__stack_chk_fail'
check "stack protector" $?
readelf --dyn-syms -W "$bin" | grep -Eq '__[a-z_]+_chk(@|[[:space:]]|$)'
check "FORTIFY_SOURCE (__*_chk calls)" $?
[ $bad -eq 0 ] && echo "hardening ok"
exit $bad
