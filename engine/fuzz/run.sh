#!/usr/bin/env bash
# Builds every fuzz target with nightly cargo (no cargo-fuzz needed) and runs each for a fixed time over
# its checked-in corpus (plus the fixtures). Fails if any target finds a crash; the crashing input is kept
# under engine/fuzz/artifacts/<target>/ (copy it to regressions/<target>/ once fixed).
#
# Usage: bash engine/fuzz/run.sh [seconds-per-target] [target...]
#   MOON_FUZZ_SECONDS  seconds per target when no argument is given (default 45)
#   MOON_REQUIRE_FUZZ=1  a missing nightly toolchain is an error instead of a skip
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-${MOON_FUZZ_SECONDS:-45}}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(rdb_load resp_request aof_stream manifest); fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  if [ "${MOON_REQUIRE_FUZZ:-}" = 1 ]; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly) and MOON_REQUIRE_FUZZ=1" >&2
    exit 1
  fi
  echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly); set MOON_REQUIRE_FUZZ=1 to fail instead"
  exit 0
fi

triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
# What cargo-fuzz passes: libFuzzer's coverage instrumentation, and AddressSanitizer.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Zsanitizer=address -Cdebug-assertions -Coverflow-checks"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo +nightly build --quiet --release --target "$triple" "${bins[@]}"

seeds() {
  case "$1" in
    rdb_load) echo ../../fixtures/rdb ;;
    *) ;;
  esac
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  # New inputs go to a scratch copy, so the checked-in corpus stays as it is.
  mkdir -p "$work/$t" "artifacts/$t" "corpus/$t"
  log="$work/$t.log"
  echo "fuzz: $t for ${secs}s"
  # shellcheck disable=SC2046
  if "target/$triple/release/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/" "$work/$t" "corpus/$t" $(seeds "$t") >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    echo "fuzz: $t ok: ${runs:-?} executions"
  else
    # The panic message and libFuzzer's summary, without the stack trace.
    grep -v '^ *#[0-9]' "$log" | grep -E -A3 'panicked|ERROR: |SUMMARY|Test unit written|timeout|out-of-memory' >&2 || tail -n 40 "$log" >&2
    echo "fuzz: $t FAILED; crash input saved under engine/fuzz/artifacts/$t/" >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
