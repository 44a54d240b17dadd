#!/bin/sh
# `make test`: install test dependencies, build (release + ASan/UBSan), run the layer check,
# the unit tests, the fuzz smoke run and the integration tests, and end with one
# line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
sh tests/deps.sh test || exit 1
make -j2 all asan fuzz-build >build.log 2>&1 || { tail -50 build.log; echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
rm -f build.log
pass=0
fail=0
count() { # $1 = passed, $2 = failed
	pass=$((pass + $1)); fail=$((fail + $2))
}

echo "== layers"
if sh tests/check-layers.sh; then count 1 0; else count 0 1; fi

echo "== hardening (release binary: PIE, RELRO, BIND_NOW, stack protector, FORTIFY)"
if sh tests/check-hardening.sh build/posthorn; then count 1 0; else count 0 1; fi

echo "== formatting (clang-format, .clang-format)"
if sh tests/check-format.sh; then echo "format ok"; count 1 0; else count 0 1; fi

# A throw-away PostgreSQL cluster for the tests that run on both engines
# (POSTHORN_TEST_PGURL); stopped at the end, whatever happens.
echo "== PostgreSQL test cluster"
pgdir=$(mktemp -d /tmp/posthorn-pg.XXXXXX)
trap 'sh tests/pg_cluster.sh stop "$pgdir"' EXIT
trap 'exit 1' INT TERM
if POSTHORN_TEST_PGURL=$(sh tests/pg_cluster.sh start "$pgdir"); then
	export POSTHORN_TEST_PGURL
	echo "cluster ok: $POSTHORN_TEST_PGURL"; count 1 0
else
	unset POSTHORN_TEST_PGURL
	echo "cluster FAILED: the PostgreSQL tests skip"; count 0 1
fi

# Integration modules that run a second time on PostgreSQL in `make test`.
PG_MODULES=$(printf 'tests/integration/%s.py ' test_imap_basic test_imap_messages \
	test_imap_mailboxes test_imap_concurrency test_imap_condstore test_imap_qresync test_imap_quota \
	test_imap_metadata \
	test_pop3_mail test_smtp_submission test_db test_imap_replace test_imap_objectid \
	test_imap_savedate_preview test_imap_acl test_imap_notify test_imap_search_index)

# Integration modules that run in the side stream (on SQLite, after the PostgreSQL ones)
# rather than in the main run, so that the two streams take about as long: the main run
# is the long one (most modules), the side stream's unit tests and PostgreSQL modules are
# shorter. Long modules: the PostgreSQL clusters of several nodes, imaptest and IMAPClient.
SIDE_MODULES=$(printf 'tests/integration/%s.py ' test_cluster test_cluster_failover \
	test_imap_suites)

# pytest over the given files (or all of tests/integration), counted.
integration() {
	out=$(POSTHORN_BIN="$PWD/build/asan/posthorn" /usr/bin/python3 -m pytest \
		-p no:cacheprovider -q -rfE "$@" 2>&1); rc=$?
	# All of it when something failed (the failures carry the server's log), else the summary.
	if [ $rc -ne 0 ]; then printf '%s\n' "$out"; else printf '%s\n' "$out" | tail -5; fi
	last=$(printf '%s\n' "$out" | grep -E '(passed|failed|error)' | tail -1)
	ip=$(printf '%s\n' "$last" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
	if_=$(printf '%s\n' "$last" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || true)
	ie=$(printf '%s\n' "$last" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+' || true)
	ip=${ip:-0}; if_=${if_:-0}; ie=${ie:-0}
	if [ $rc -ne 0 ] && [ $((if_ + ie)) -eq 0 ]; then if_=1; fi
	count "$ip" $((if_ + ie))
}

unit_tests() {
	echo "== unit tests"
	for t in build/asan/tests/test_*; do
		[ -x "$t" ] || continue
		out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$t" 2>&1); rc=$?
		ok=$(printf '%s\n' "$out" | grep -c '^ok ')
		# cmocka 1.1 prints a skipped test as "not ok N # SKIP": not a failure.
		bad=$(printf '%s\n' "$out" | grep '^not ok ' | grep -vc '# SKIP')
		if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
		[ "$bad" -ne 0 ] && printf '%s\n' "$out"
		echo "$(basename "$t"): $ok passed, $bad failed"
		count "$ok" "$bad"
	done
}

# Every fuzz target over its committed corpus, then 2000 inputs or a second of fuzzing,
# whichever comes first (fuzz/run.sh smoke, as `make fuzz-smoke`); one test per target.
fuzz_regression() {
	echo "== fuzz smoke (corpus, then 2000 runs or ${FUZZ_SMOKE_SECONDS:-1} s each)"
	bins=$(for f in build/fuzz/fuzz_*; do [ -f "$f" ] && [ -x "$f" ] && echo "$f"; done)
	# shellcheck disable=SC2086
	out=$(FUZZ_SMOKE_RUNS=2000 sh fuzz/run.sh smoke "${FUZZ_SMOKE_SECONDS:-1}" $bins 2>&1)
	printf '%s\n' "$out" | sed '$d'
	last=$(printf '%s\n' "$out" | tail -1)
	fp=$(printf '%s\n' "$last" | grep -oE '^[0-9]+ passed' | grep -oE '[0-9]+')
	ff=$(printf '%s\n' "$last" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
	[ -n "$fp" ] && [ -n "$ff" ] || { fp=0; ff=1; }
	count "$fp" "$ff"
}

# The side stream: unit tests, fuzz smoke run and the store modules on PostgreSQL.
# It runs beside the main integration run (each keeps about one core busy; CI has two) and
# reports its counts in a file; its output follows the main run's.
side() {
	pass=0
	fail=0
	# Each stream starts its servers on its own half of the test ports (conftest.py).
	export POSTHORN_TEST_PORT_SLICE=1
	unit_tests
	fuzz_regression
	if [ "${POSTHORN_TEST_STORE:-sqlite}" != postgresql ] && [ -n "${POSTHORN_TEST_PGURL:-}" ]; then
		# The modules that work the store hardest, again on PostgreSQL (the whole suite
		# there is `make test-pg`: too long for every run).
		echo "== integration tests on PostgreSQL (store modules)"
		POSTHORN_TEST_STORE=postgresql integration $PG_MODULES
	fi
	echo "== integration tests (side stream: $(echo $SIDE_MODULES | wc -w) modules)"
	integration $SIDE_MODULES
	echo "$pass $fail" >"$side_counts"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
side_log=$(mktemp /tmp/posthorn-side.XXXXXX)
side_counts=$(mktemp /tmp/posthorn-side-counts.XXXXXX)
side >"$side_log" 2>&1 &
side_pid=$!
export POSTHORN_TEST_PORT_SLICE=0
trap 'kill "$side_pid" 2>/dev/null; wait "$side_pid" 2>/dev/null; rm -f "$side_log" "$side_counts"; sh tests/pg_cluster.sh stop "$pgdir"' EXIT

if [ "${POSTHORN_TEST_STORE:-sqlite}" = postgresql ]; then
	# `make test-pg`: the whole integration suite with every server on PostgreSQL.
	echo "== integration tests on PostgreSQL (all)"
else
	echo "== integration tests"
fi
# shellcheck disable=SC2046
integration tests/integration $(for m in $SIDE_MODULES; do printf -- '--ignore=%s ' "$m"; done)

wait "$side_pid"
cat "$side_log"
read -r side_pass side_fail <"$side_counts" || { side_pass=0; side_fail=1; }
count "${side_pass:-0}" "${side_fail:-1}"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
