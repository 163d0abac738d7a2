#!/usr/bin/env bash
# fuzz-long.sh - the long tier's fuzzing: fuzzes every libFuzzer target of a
# GBX_FUZZ build until each has had GBX_FUZZ_LONG_SECONDS (default 3600) in
# total, cumulative across runs, with the corpus kept between runs.
#
# Usage: tests/fuzz/fuzz-long.sh [FUZZ_BUILD_DIR]     (default build-fuzz)
#   or:  make fuzz-long                                (builds it first)
#
# State lives outside the build dir, in GBX_FUZZ_HOME (default
# $XDG_CACHE_HOME/gearbox-fuzz, else ~/.cache/gearbox-fuzz):
#   <target>/corpus/      the persistent corpus (the committed seeds are read
#                         as a second, read-only corpus directory)
#   <target>/seconds      the ledger: seconds fuzzed so far
#   <target>/artifacts/   crashing, leaking, timing-out or oversized inputs
#   <target>/last.log     the last run's libFuzzer output
# An interrupted run (Ctrl-C) still books the seconds it fuzzed. Rerunning
# after every target reached its hour does nothing and prints the ledger;
# delete GBX_FUZZ_HOME/<target>/seconds to start another hour.
#
# GBX_FUZZ_LONG_SLICE (seconds, default: all that remains) caps one target's
# run per invocation, so the hour can be spread over several sessions;
# GBX_FUZZ_JOBS (default 1) runs that many libFuzzer workers per target (the
# ledger counts wall seconds times workers).
#
# Exits 0 when nothing crashed, 1 when a target left artifacts (its name and
# the inputs are printed; fix, commit the input to tests/fuzz/corpus/<target>
# so the corpus replay keeps it fixed, delete the artifact), 2 on misuse.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build-fuzz}
total=${GBX_FUZZ_LONG_SECONDS:-3600}
slice=${GBX_FUZZ_LONG_SLICE:-0}
jobs=${GBX_FUZZ_JOBS:-1}
home=${GBX_FUZZ_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/gearbox-fuzz}
mkdir -p "$home" && home=$(cd "$home" && pwd) # absolute: each target runs from its own dir

shopt -s nullglob
targets=()
for src in "$here"/fuzz_*.c; do
  targets+=("$(basename "$src" .c)")
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz-long: no tests/fuzz/fuzz_*.c targets" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  if [[ ! -x $build/tests/$t ]]; then
    echo "fuzz-long: $build/tests/$t is not built (cmake -DGBX_FUZZ=ON with clang; make fuzz-long)" >&2
    exit 2
  fi
done
mkdir -p "$home" || exit 2

ledger() { cat "$home/$1/seconds" 2>/dev/null || echo 0; }

current=""
started=0
# Books the seconds the current target has fuzzed (also on Ctrl-C).
book() {
  [[ -n $current ]] || return 0
  local spent=$((($(date +%s) - started) * jobs))
  echo $(($(ledger "$current") + spent)) >"$home/$current/seconds"
  current=""
}
trap 'book; echo "fuzz-long: interrupted; seconds booked" >&2; exit 130' INT TERM

failed=()
for t in "${targets[@]}"; do
  dir=$home/$t
  mkdir -p "$dir/corpus" "$dir/artifacts"
  done_s=$(ledger "$t")
  left=$((total - done_s))
  if ((left <= 0)); then
    echo "fuzz-long: $t has had ${done_s}s of ${total}s"
    continue
  fi
  run=$left
  if ((slice > 0 && slice < run)); then run=$slice; fi
  wall=$(((run + jobs - 1) / jobs))
  echo "fuzz-long: $t: ${done_s}s so far, fuzzing ${run}s now ($(ls "$dir/corpus" | wc -l) inputs kept)"
  current=$t
  started=$(date +%s)
  extra=()
  if ((jobs > 1)); then extra=(-jobs="$jobs" -workers="$jobs"); fi
  bin=$(cd "$build/tests" && pwd)/$t
  # run from the target's state dir: with -jobs libFuzzer writes its
  # workers' fuzz-N.log files into the current directory
  (cd "$dir" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      exec "$bin" -max_total_time="$wall" -timeout=25 -rss_limit_mb=2048 \
      -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$dir/artifacts/" \
      -print_final_stats=1 "${extra[@]}" "$dir/corpus" "$here/corpus/$t") >"$dir/last.log" 2>&1
  rc=$?
  book
  found=("$dir"/artifacts/*)
  if ((rc != 0 || ${#found[@]} != 0)); then
    tail -n 60 "$dir/last.log"
    echo "fuzz-long: $t FAILED (exit $rc); inputs: ${found[*]:-none}" >&2
    failed+=("$t")
  fi
done

echo "fuzz-long: ledger (seconds of ${total}) in $home:"
for t in "${targets[@]}"; do
  printf '  %-16s %6s s  %6s corpus inputs\n' "$t" "$(ledger "$t")" "$(ls "$home/$t/corpus" 2>/dev/null | wc -l)"
done
if ((${#failed[@]})); then
  echo "fuzz-long: crashes in: ${failed[*]}" >&2
  exit 1
fi
