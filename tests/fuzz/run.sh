#!/bin/bash
# Run every libFuzzer target for a bounded time, then every kept regression.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]     (default 20)
#
# Builds build-fuzz (clang, ASan+UBSan, -Dfuzz=true) if it is missing, then
# for each target fuzzes a temporary copy of its seed corpus (the repository
# is never written: new inputs go to the copy, crash inputs to
# build-fuzz/fuzz-artifacts/<target>/), and runs each file of
# tests/fuzz/regressions/<target>/ once. Targets run two at a time (one per
# core). Exits non-zero if any target crashed, leaked, timed out, hit UB or
# failed a property. See tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
secs=${1:-20}
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
jobs=${FUZZ_JOBS:-2}
targets=(list_xml ddb_json sigv4 objmap s3attr chain_key)

case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 2
	;;
esac

# UBSan only reports and goes on unless told to stop; libFuzzer must see it die.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dwerror=true >/dev/null
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
logs=$build/fuzz-logs
rm -rf "$logs"
mkdir -p "$logs"

# fuzz_one TARGET: fuzz for $secs seconds; the exit status is libFuzzer's.
fuzz_one() {
	local t=$1 bin=$build/tests/fuzz/fuzz_$1 seeds=tests/fuzz/corpus/$1
	local art=$build/fuzz-artifacts/$t/ dict=()

	mkdir -p "$tmp/$t" "$art"
	cp -R "$seeds/." "$tmp/$t/"
	[ -f "tests/fuzz/$t.dict" ] && dict=("-dict=tests/fuzz/$t.dict")
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$art" "${dict[@]}" \
		"$tmp/$t" "$seeds" >"$logs/$t.log" 2>&1
}

# regress_one TARGET: each kept input once.
regress_one() {
	local t=$1 dir=tests/fuzz/regressions/$1 files=()

	[ -d "$dir" ] || return 0
	while IFS= read -r -d '' f; do files+=("$f"); done \
		< <(find "$dir" -type f ! -name '.*' -print0 | sort -z)
	[ ${#files[@]} -gt 0 ] || return 0
	"$build/tests/fuzz/fuzz_$t" "${files[@]}" >"$logs/$t.regress.log" 2>&1
}

# One line per target from libFuzzer's log: executions, speed, coverage.
summary() {
	local t=$1 log=$logs/$1.log
	local runs speed cov

	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
	cov=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n1) || true
	printf '%-10s %10s execs %7s exec/s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}"
}

declare -A status
fail=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
	pids=()
	batch=("${targets[@]:i:jobs}")
	for t in "${batch[@]}"; do
		fuzz_one "$t" &
		pids+=($!)
	done
	for k in "${!batch[@]}"; do
		if wait "${pids[$k]}"; then
			status[${batch[$k]}]=ok
		else
			status[${batch[$k]}]="FAILED (exit $?)"
		fi
	done
done

printf '\n=== fuzzing, %s s per target\n' "$secs"
for t in "${targets[@]}"; do
	summary "$t"
	if [ "${status[$t]}" != ok ]; then
		fail=1
		echo "  $t: ${status[$t]}; log $logs/$t.log, input in $build/fuzz-artifacts/$t/"
		grep -a -m1 -E 'property failed|ERROR: |runtime error' "$logs/$t.log" | sed 's/^/  /' || true
	fi
done

printf '\n=== regressions\n'
for t in "${targets[@]}"; do
	n=0
	[ -d "tests/fuzz/regressions/$t" ] &&
		n=$(find "tests/fuzz/regressions/$t" -type f ! -name '.*' | wc -l)
	if regress_one "$t"; then
		printf '%-10s %3d inputs ok\n' "$t" "$n"
	else
		fail=1
		printf '%-10s %3d inputs FAILED; log %s\n' "$t" "$n" "$logs/$t.regress.log"
		grep -a -m1 -E 'property failed|ERROR: |runtime error' "$logs/$t.regress.log" |
			sed 's/^/  /' || true
	fi
done

exit $fail
