#!/usr/bin/env bash
# fuzz-run.sh - one bounded libFuzzer run, as the CI fuzz stage runs it
# (ctest -L fuzz-ci; `make fuzz-ci`).
#
# Usage: fuzz-run.sh FUZZER SEED_DIR WORK_DIR SECONDS
#
# Copies the committed seeds (SEED_DIR) into WORK_DIR/corpus, which the
# fuzzer may grow (the committed corpus is never written), and fuzzes for
# SECONDS with a per-input timeout and a memory cap. A crash, a sanitizer
# report, a leak, a timeout or an out-of-memory input leaves its input in
# WORK_DIR/artifacts/ and fails the run; reproduce it with
#   FUZZER WORK_DIR/artifacts/crash-...
# and commit it to SEED_DIR once fixed, so corpus replay keeps it fixed.
#
# Environment: GBX_FUZZ_TIMEOUT (seconds per input, default 25),
# GBX_FUZZ_RSS_MB (default 2048).
set -uo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 FUZZER SEED_DIR WORK_DIR SECONDS" >&2
  exit 2
fi
fuzzer=$1 seeds=$2 work=$3 secs=$4
name=$(basename "$fuzzer")

if [[ ! -x $fuzzer ]]; then
  echo "fuzz-run: $fuzzer: not an executable" >&2
  exit 2
fi
if [[ ! -d $seeds ]] || [[ -z $(ls -A "$seeds") ]]; then
  echo "fuzz-run: $seeds: no seed corpus" >&2
  exit 2
fi

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts" || exit 2
cp -R "$seeds"/. "$work/corpus/" && chmod -R u+w "$work/corpus" || exit 2

echo "fuzz-run: $name for ${secs}s from $(ls "$work/corpus" | wc -l) seeds"
start=$(date +%s)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$fuzzer" -max_total_time="$secs" -timeout="${GBX_FUZZ_TIMEOUT:-25}" \
  -rss_limit_mb="${GBX_FUZZ_RSS_MB:-2048}" -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus" \
  >"$work/fuzz.log" 2>&1
rc=$?
end=$(date +%s)

shopt -s nullglob
found=("$work"/artifacts/*)
if [[ $rc -ne 0 || ${#found[@]} -ne 0 ]]; then
  tail -n 80 "$work/fuzz.log"
  echo "fuzz-run: $name FAILED (exit $rc) after $((end - start))s; inputs: ${found[*]:-none}" >&2
  exit 1
fi
grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/fuzz.log" | tr '\n' ' '
echo
echo "fuzz-run: $name passed: $((end - start))s, corpus now $(ls "$work/corpus" | wc -l) inputs"
