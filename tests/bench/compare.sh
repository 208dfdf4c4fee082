#!/usr/bin/env bash
# Moon against redis-server 7.0.15 on the same machine, in the same run: one command for every figure of
# issue 8, printed as a markdown table of Moon/Redis ratios and saved to $OUT. Not part of the test run.
#
# Datasets (generated once by redis-server itself and cached in $BENCH_DIR; REGEN=1 rebuilds them):
#   strings  KEYS small strings ("key:<n>", 3-20 bytes, a tenth of them integers)
#   mixed    KEYS keys of every type: strings (short, integer, long/compressible, with and without TTL),
#            small and large hashes, lists, sets of strings, sets of integers, sorted sets, a tenth of the
#            keys with a TTL; then a tail of KEYS/5 non-idempotent updates (INCRBY, APPEND, LPUSH, ZINCRBY,
#            HINCRBY, INCR) that a wrong replay cannot get right by accident.
#   For each, redis-server (appendonly yes, aof-use-rdb-preamble no) receives the commands, then SAVEs:
#   dump.rdb and a pure-RESP appendonlydir/ holding the same data, with its DEBUG DIGEST and DBSIZE.
#
# Figures (each server: redis-server, then moon-server with --shards 1 and 2; median of RUNS runs):
#   rdb    rdb_load.sh on those dumps: load time from the server's own log, spawn to PING answering. Then
#          one more load each for the peak RSS during load (VmHWM), memory per key (RSS after load minus an
#          empty server's, over DBSIZE), and bgsave_latency.py's probe (a client sending SET one at a time;
#          worst round trip while a BGSAVE runs).
#   aof    start on a copy of the appendonlydir: replay time (log), spawn until PING answers and DBSIZE is
#          the whole dataset, peak RSS; then BGREWRITEAOF time, base size and peak memory (Redis: parent RSS
#          plus the fork child's private dirty pages); then aof_rewrite_latency.py's probe around another
#          BGREWRITEAOF. Moon's rewritten appendonlydir is loaded in redis-server, whose digest must agree.
#   tool   (not by default) aof_tool.sh: moon-aof-tool check/compact vs redis-check-aof; output in the log only
#   bench  redis-benchmark -t set,get -c CLIENTS -r KEYS at pipeline 1, 16, 64 on a fresh server with
#          appendonly yes, for appendfsync everysec and always; the AOF must hold every SET afterwards.
# Next to wall times, the table gives the server's CPU time (user + system of all threads from /proc/<pid>/stat;
# Redis's reaped fork child included for the rewrite): a busy neighbour moves it far less than wall time.
# Every load (RDB, AOF, the rewrite's output) is checked with DEBUG DIGEST against the digest redis-server
# reported when it wrote the files, so a fast but wrong load stops the run instead of showing as a win.
#
# Fairness on a small machine. Loads and rewrites are not pinned: redis-server loads on one thread, Moon
# with --shards 2 on two, and using the machine's cores is the point of Moon's design. redis-benchmark is
# different: its client needs about as much CPU as the server, so on 2 cores the only even split is one
# core each. With PIN=1 (default when there are 2+ CPUs) every server runs on CPU 0 and redis-benchmark on
# CPU 1. moon --shards 2 then shares CPU 0 between its shards: on 2 cores it can only show the cost of
# cross-shard hops, not a gain; on a bigger machine use PIN=0 (or taskset by hand) and more shards.
# Redis's bio thread and Moon's AOF writer share the server's core alike. Other processes on the machine
# (parallel builds) move every figure; the table records the load average before and after.
#
# Usage: bash tests/bench/compare.sh
# Environment:
#   QUICK=1            smoke test: KEYS=50000, RUNS=1, a tenth of the benchmark requests, 1 s probe baseline
#   KEYS=1000000       keys per dataset          RUNS=3           runs per figure (the median is shown)
#   BENCH_RUNS=$RUNS   runs of each redis-benchmark figure
#   SECTIONS="rdb aof bench"  DATASETS="strings mixed"  SHARDS="1 2"  FSYNC="everysec always"
#   PIPELINES="1 16 64"  CLIENTS=50  REQ_SCALE=1 (multiplies the redis-benchmark request counts)
#   PROBES=1 (0 skips the latency probes)  PROBE_BASELINE=3 (seconds of probing before each BGSAVE/rewrite)
#   PREAMBLE=yes       aof-use-rdb-preamble for the rewrite      PIN=1  see above
#   MOON_BIN           use this moon-server instead of building one in CARGO_TARGET_DIR=/tmp/rel-bench
#   BENCH_DIR=/tmp/moon-compare/k$KEYS (datasets, log)    OUT=$BENCH_DIR/compare.md (the table)
#   NOTE="..."         added to the table's title (e.g. "machine loaded by parallel builds")
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${QUICK:-0}" = 1 ]; then
  export KEYS=${KEYS:-50000} RUNS=${RUNS:-1} REQ_SCALE=${REQ_SCALE:-0.1} PROBE_BASELINE=${PROBE_BASELINE:-1}
fi
export KEYS=${KEYS:-1000000}
export REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server} REDIS_CLI=${REDIS_CLI:-/usr/bin/redis-cli}
export REDIS_BENCHMARK=${REDIS_BENCHMARK:-/usr/bin/redis-benchmark}
for tool in "$REDIS_SERVER" "$REDIS_CLI" "$REDIS_BENCHMARK" python3 taskset; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 2; }
done
"$REDIS_SERVER" --version | grep -q 'v=7\.0\.' || echo "compare.sh: warning: $REDIS_SERVER is not 7.0.x" >&2

if [ -z "${MOON_BIN:-}" ]; then
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/rel-bench} cargo build --release -q -p moon-server
  MOON_BIN=${CARGO_TARGET_DIR:-/tmp/rel-bench}/release/moon-server
fi
export MOON_BIN
exec python3 tests/bench/compare.py
