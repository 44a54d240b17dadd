#!/bin/sh
# Runs fuzz targets: `run.sh smoke SECONDS TARGET...` (make fuzz-smoke, CI) runs each target
# over its committed corpus and then SECONDS of fuzzing (or FUZZ_SMOKE_RUNS inputs, when set
# and reached first), new inputs going to a scratch directory, and ends with "N passed, N
# failed"; `run.sh campaign SECONDS TARGET...` (make fuzz-campaign) fuzzes each target for
# SECONDS of CPU with its corpus growing in build/fuzz/corpus/, and adds a row per target (wall
# and CPU seconds, execs, execs per CPU second, coverage, crashes) to the table in
# build/fuzz/campaign.md, so that a campaign may run in parts (FUZZ_TARGETS). Crashing inputs
# are kept in build/fuzz/artifacts/TARGET/. `run.sh merge 0 TARGET...` (make fuzz-merge) adds
# to fuzz/corpus/TARGET/ the campaign's inputs that add coverage (libFuzzer's -merge=1).
set -u
mode=$1
secs=$2
shift 2
pass=0
fail=0
mkdir -p build/fuzz/logs
head='| target | started (UTC) | commit | wall s | CPU s | execs | execs/CPU s | cov | ft | corpus | crashes |'
if [ "$mode" = campaign ] && ! grep -qF "$head" build/fuzz/campaign.md 2>/dev/null; then
	{
		echo "# Fuzzing campaign"
		echo
		echo "$head"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
	} >build/fuzz/campaign.md
fi
for f in "$@"; do
	n=$(basename "$f")
	dict=
	[ -f "fuzz/$n.dict" ] && dict="-dict=fuzz/$n.dict"
	art="build/fuzz/artifacts/$n"
	mkdir -p "$art" "fuzz/corpus/$n"
	if [ "$mode" = merge ]; then
		# What a campaign found that adds coverage goes into the committed corpus.
		before=$(find "fuzz/corpus/$n" -type f | wc -l)
		if [ -d "build/fuzz/corpus/$n" ] && "$f" -merge=1 -artifact_prefix="$art/" "fuzz/corpus/$n" \
			"build/fuzz/corpus/$n" >"build/fuzz/logs/$n.merge" 2>&1; then
			echo "$n: $before -> $(find "fuzz/corpus/$n" -type f | wc -l) inputs"
			pass=$((pass + 1))
		else
			echo "$n: nothing to merge or merge failed"; fail=$((fail + 1))
		fi
		continue
	fi
	log="build/fuzz/logs/$n.log"
	if [ "$mode" = smoke ]; then
		scratch=$(mktemp -d /tmp/posthorn-fuzz.XXXXXX)
		# shellcheck disable=SC2086
		"$f" $dict -max_total_time="$secs" ${FUZZ_SMOKE_RUNS:+-runs=$FUZZ_SMOKE_RUNS} \
			-max_len=4096 -artifact_prefix="$art/" -print_final_stats=1 "$scratch" \
			"fuzz/corpus/$n" >"$log" 2>&1
		rc=$?
		rm -rf "$scratch"
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
		if [ $rc -eq 0 ]; then
			echo "$n: ok (${execs:-?} execs)"; pass=$((pass + 1))
		else
			echo "$n: FAILED"; tail -40 "$log"; fail=$((fail + 1))
		fi
		continue
	fi
	mkdir -p "build/fuzz/corpus/$n"
	start=$(date +%s)
	when=$(date -u '+%Y-%m-%d %H:%M')
	# On a busy machine a target gets less than a core. Where Debian's `time` is installed the
	# target runs in slices (the corpus carries over) until it has had SECONDS of CPU (user +
	# system); without it, SECONDS of wall time. execs/s is per CPU second.
	cpu=0 cpu10=0 execs=0 rc=0 slice=$secs slices=0
	: >"$log"
	# At most 10 slices (a target starved of CPU stops there; its row says how much it had).
	while [ $slices -lt 10 ]; do
		slices=$((slices + 1))
		timer=
		[ -x /usr/bin/time ] && timer="/usr/bin/time -f %U+%S -o $log.cpu"
		# shellcheck disable=SC2086
		$timer "$f" $dict -max_total_time="$slice" -artifact_prefix="$art/" -print_final_stats=1 \
			"build/fuzz/corpus/$n" "fuzz/corpus/$n" >"$log.slice" 2>&1
		rc=$?
		cat "$log.slice" >>"$log"
		e=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log.slice" | grep -o '[0-9]*$')
		execs=$((execs + ${e:-0}))
		if [ -z "$timer" ]; then cpu='?'; break; fi
		# Tenths of seconds summed (a starved slice still adds up); no figure: stop.
		t=$(tail -1 "$log.cpu" 2>/dev/null | awk -F+ 'NF == 2 { printf "%d", ($1 + $2) * 10 }')
		if [ -z "$t" ]; then cpu='?'; break; fi
		cpu10=$((cpu10 + t))
		cpu=$((cpu10 / 10))
		if [ $rc -ne 0 ] || [ "$cpu" -ge "$secs" ]; then break; fi
		slice=$((secs - cpu))
		[ $slice -ge 60 ] || slice=60
	done
	rm -f "$log.slice" "$log.cpu"
	took=$(($(date +%s) - start))
	rate='?'
	[ "$cpu" != '?' ] && [ "$cpu" -gt 0 ] && rate=$((execs / cpu))
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(printf '%s\n' "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
	ft=$(printf '%s\n' "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
	corp=$(printf '%s\n' "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*')
	# libFuzzer's slow-unit-* files are inputs that took long (wall time), not failures.
	crashes=$(find "$art" -type f ! -name 'slow-unit-*' | wc -l)
	slow=$(find "$art" -type f -name 'slow-unit-*' | wc -l)
	[ "$slow" -eq 0 ] || crashes="$crashes ($slow slow)"
	[ $rc -eq 0 ] || crashes="$crashes (exit $rc)"
	echo "| $n | $when | $(git rev-parse --short HEAD 2>/dev/null) | $took | $cpu | $execs | $rate | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |" >>build/fuzz/campaign.md
	echo "$n: $took s ($cpu s CPU), $execs execs, $rate/s, cov ${cov:-?}, crashes $crashes"
	if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
[ "$mode" = campaign ] && echo "table: build/fuzz/campaign.md"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
