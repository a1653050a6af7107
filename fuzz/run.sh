#!/bin/sh
# fuzz/run.sh SECONDS TARGET...: for each target, replay the crashes of
# fuzz/regress/<target>/ (each must now pass), then fuzz for SECONDS from
# the committed seeds fuzz/corpus/<target>/ (read only) and what earlier runs
# found (fuzz/build/corpus/<target>/). Run by `make fuzz` after fuzz-build.
# Ends with one line "fuzz: N passed, N failed"; exits 1 if any failed.
secs=$1
shift
dir=fuzz/build
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
passed=0
failed=0

# The report of a crash: from the sanitizer's or the check's first line.
show_crash() {
	grep -E -A 30 'ERROR: |check failed|runtime error|deadly signal' "$1" |
	    head -n 40 | sed 's/^/    /'
}
for t in "$@"; do
	bin=$dir/fuzz_$t
	log=$dir/fuzz_$t.log
	ok=1
	if [ ! -x "$bin" ]; then
		echo "fuzz $t: $bin is missing (make fuzz-build)"
		failed=$((failed + 1))
		continue
	fi
	set --
	if [ -d "fuzz/regress/$t" ]; then
		for f in "fuzz/regress/$t"/*; do
			[ -f "$f" ] && set -- "$@" "$f"
		done
	fi
	if [ $# -gt 0 ]; then
		if "$bin" -runs=1 "$@" >"$log" 2>&1; then
			echo "fuzz $t: $# regression input(s) pass"
		else
			echo "fuzz $t: a regression input fails again (full log:" \
			    "$log):"
			show_crash "$log"
			ok=0
		fi
	fi
	dict=
	[ -f "fuzz/dict/$t.dict" ] && dict="-dict=fuzz/dict/$t.dict"
	mkdir -p "$dir/corpus/$t"
	if [ $ok = 1 ]; then
		if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		    -print_final_stats=1 $dict \
		    -artifact_prefix="$dir/crash-$t-" \
		    "$dir/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
			execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
			cov=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 |
			    sed -n 's/.*\(cov: [0-9]*\).*/\1/p')
			echo "fuzz $t: ${execs:-?} inputs in ${secs}s, $cov, no crash"
		else
			echo "fuzz $t: CRASH (full log: $log); to keep it as a" \
			    "regression input: mkdir -p fuzz/regress/$t &&" \
			    "mv $dir/crash-$t-* fuzz/regress/$t/"
			show_crash "$log"
			ok=0
		fi
	fi
	if [ $ok = 1 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed = 0 ]
