#!/usr/bin/env bash
# Runs every Moon test. Installs what the tests need when it is missing: Debian's redis-server and
# redis-tools, used as the oracle by the interop tests. Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
    || ! command -v redis-check-aof >/dev/null 2>&1; then
  echo "tests/run.sh: installing redis-server and redis-tools (Debian packages) for the interop tests"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

# The end-to-end tests start the real binaries, so build them first.
cargo build --workspace --bins
"${CARGO_TARGET_DIR:-target}/debug/moon-aof-tool" check --quiet --expect fixtures/expected.json fixtures/ | grep -v '^ok '
cargo test --workspace
# Time-boxed fuzzing of the engine's parsers (nightly; skipped with a reason when nightly is missing).
bash engine/fuzz/run.sh
