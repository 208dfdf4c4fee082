#!/usr/bin/env bash
# `moon-aof-tool check` and `compact` on a 1M-key AOF directory written by redis-server 7.0.15, next to
# `redis-check-aof` on the same directory and a BGREWRITEAOF of the same data by that redis-server.
# Not run by CI. Wall times are noisy while other work runs: the CPU time (user + sys, from /usr/bin/time)
# is the steadier figure to compare builds with.
#
# For each base format (RDB preamble, then RESP with aof-use-rdb-preamble no): start redis-server with
# appendonly yes in a temp dir, DEBUG POPULATE the keys (strings), BGREWRITEAOF (the base holds them), then
# write more with redis-benchmark (SET/LPUSH/HSET/SADD/ZADD/INCR: the incr file), time one more
# BGREWRITEAOF (the comparison point for compact), shut down, and time on copies of the directory:
#   redis-check-aof <manifest>      moon-aof-tool check --quiet <dir>      moon-aof-tool compact --quiet <dir>
#
# Usage: bash tests/bench/aof_tool.sh [KEYS] [INCR_COMMANDS]     (defaults 1000000 and 1000000)
# Builds the tool with: CARGO_TARGET_DIR=/tmp/rel-tool cargo build --release -p moon-aof-tool
set -euo pipefail
cd "$(dirname "$0")/../.."
keys=${1:-1000000}
incr=${2:-1000000}
CARGO_TARGET_DIR=/tmp/rel-tool cargo build --release -q -p moon-aof-tool
tool=/tmp/rel-tool/release/moon-aof-tool

# The temp dir $tmp (removed on exit with a server still running), free_port, wait_ready, stop, wait_rewrite.
source fixtures/lib.sh

port=$(free_port)
cli() { redis-cli -p "$port" "$@"; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
timed() { # timed LABEL CMD...: runs CMD, prints the wall time, the CPU time (user + sys) and exit status
    local t0 t1 rc=0 cpu
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$tmp/time.txt" "${@:2}" >"$tmp/out.txt" 2>&1 || rc=$?
    t1=$(now)
    cpu=$(awk '{printf "%.2f", $1 + $2}' "$tmp/time.txt")
    printf '  %-42s %6ss  cpu %6ss  (exit %s)\n' "$1" "$(elapsed "$t0" "$t1")" "$cpu" "$rc"
}

for preamble in yes no; do
    d=$tmp/data-$preamble
    mkdir -p "$d"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --save '' --appendonly yes --appendfsync everysec \
        --aof-use-rdb-preamble "$preamble" --auto-aof-rewrite-percentage 0 --enable-debug-command yes \
        --daemonize no --logfile "$d/redis.log" >/dev/null 2>&1 &
    pid=$!
    wait_ready "$d/redis.log"
    cli debug populate "$keys" key 24 >/dev/null
    cli bgrewriteaof >/dev/null
    wait_rewrite
    per=$((incr / 6))
    redis-benchmark -p "$port" -q -n "$per" -r "$keys" -P 64 -t set,lpush,hset,sadd,zadd,incr >/dev/null 2>&1 || true
    t0=$(now)
    cli bgrewriteaof >/dev/null
    wait_rewrite
    t1=$(now)
    rewrite=$(elapsed "$t0" "$t1")
    # Put the directory back to base + incr (the state before that rewrite) by writing the same incr again.
    redis-benchmark -p "$port" -q -n "$per" -r "$keys" -P 64 -t set,lpush,hset,sadd,zadd,incr >/dev/null 2>&1 || true
    dbsize=$(cli dbsize)
    stop
    size=$(du -sb "$d/appendonlydir" | cut -f1)
    echo "aof-use-rdb-preamble $preamble: $dbsize keys, appendonlydir $size bytes:"
    ls -l "$d/appendonlydir" | awk 'NR>1 {printf "    %12s %s\n", $5, $9}'
    printf '  %-42s %6ss\n' "redis BGREWRITEAOF (same data, from INFO)" "$rewrite"
    cp -r "$d/appendonlydir" "$tmp/c1"
    timed "redis-check-aof" redis-check-aof "$tmp/c1/appendonly.aof.manifest"
    tail -1 "$tmp/out.txt" | sed 's/^/    /'
    timed "moon-aof-tool check" "$tool" check --quiet "$tmp/c1"
    tail -1 "$tmp/out.txt" | sed 's/^/    /'
    timed "moon-aof-tool check --digest (full load)" "$tool" check --quiet --digest "$tmp/c1"
    tail -1 "$tmp/out.txt" | sed 's/^/    /'
    timed "moon-aof-tool compact" "$tool" compact --quiet "$tmp/c1"
    grep -E '^(Loaded|DEBUG DIGEST|Wrote|Size)' "$tmp/out.txt" | sed 's/^/    /'
    timed "moon-aof-tool compact --no-verify" "$tool" compact --quiet --no-verify "$tmp/c1"
    timed "moon-aof-tool inspect --keys" "$tool" inspect --quiet --keys "$d/appendonlydir"
    rm -rf "$tmp/c1" "$d"
done
