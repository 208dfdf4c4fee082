#!/usr/bin/env bash
# Start-up load benchmark: the same dump.rdb, written by redis-server 7.0.15, loaded by redis-server and by
# release moon-server with 1 and 2 shards. Not run by CI.
#
# Datasets (1M keys each, generated once and cached in $BENCH_DIR):
#   strings  1M small strings (keys "key:<n>", values of 3 to 20 bytes, a tenth of them integers)
#   mixed    1M keys of every type: short/int/long strings, small hashes/lists/sets/intsets/zsets, one key in
#            500 a large hash/list/set/zset, 10% of keys with a TTL
#
# Each run starts the server on a copy-free hard link of the dump in a fresh directory and reads the load time
# the server logs ("DB loaded from disk: X seconds", both servers log it), plus the wall-clock time from spawn
# until PING answers. After each load, DEBUG DIGEST and DBSIZE must equal what redis-server reported when it
# wrote the file.
#
# Run it on an otherwise idle machine: the parallel load is memory-bound, and on a shared VM a busy neighbour
# moves its figures far more than the single-threaded redis-server's.
#
# Usage: bash tests/bench/rdb_load.sh [runs]        (default 5 runs; the median is reported)
# Environment: BENCH_DIR (default /tmp/moon-rdb-bench), REGEN=1 to rebuild the dumps,
#              MOON_BIN (skip the cargo build), DATASETS="strings mixed", SHARDS="1 2".
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${1:-5}
BENCH_DIR=${BENCH_DIR:-/tmp/moon-rdb-bench}
DATASETS=${DATASETS:-"strings mixed"}
SHARDS=${SHARDS:-"1 2"}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
REDIS_CLI=${REDIS_CLI:-/usr/bin/redis-cli}

for tool in "$REDIS_SERVER" "$REDIS_CLI" python3; do
  command -v "$tool" >/dev/null || { echo "rdb_load.sh: $tool is required" >&2; exit 2; }
done

if [ -z "${MOON_BIN:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/rel-load}
  cargo build --release -q -p moon-server
  MOON_BIN=$CARGO_TARGET_DIR/release/moon-server
fi
mkdir -p "$BENCH_DIR"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Writes the RESP commands of dataset $1 to stdout (deterministic).
gen_data() {
  python3 - "$1" <<'PY'
import random, sys
kind = sys.argv[1]
rnd = random.Random(20240607)
out = sys.stdout.buffer
buf = []

def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    buf.append(b"".join(parts))
    if len(buf) >= 4096:
        out.write(b"".join(buf))
        buf.clear()

letters = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
def word(lo, hi):
    return bytes(rnd.choice(letters) for _ in range(rnd.randint(lo, hi)))

N = 1_000_000
if kind == "strings":
    for i in range(N):
        v = str(rnd.randint(0, 10**9)).encode() if i % 10 == 0 else word(3, 20)
        cmd(b"SET", b"key:%d" % i, v)
else:
    for i in range(N):
        k = b"k:%d" % i
        r = i % 100
        if i % 500 == 250:
            big = (i // 500) % 4
            if big == 0:
                cmd(b"HSET", k, *[x for j in range(300) for x in (b"field%d" % j, word(5, 40))])
            elif big == 1:
                cmd(b"RPUSH", k, *[word(5, 60) for _ in range(600)])
            elif big == 2:
                cmd(b"SADD", k, *[b"member:%d" % j for j in range(400)])
            else:
                cmd(b"ZADD", k, *[x for j in range(250) for x in (b"%d.25" % rnd.randint(-10**6, 10**6), b"m%d" % j)])
        elif r < 30:
            cmd(b"SET", k, word(4, 30))
        elif r < 40:
            cmd(b"SET", k, rnd.randint(-10**12, 10**12))
        elif r < 45:
            # Long values; a repeated one compresses (LZF in the file).
            cmd(b"SET", k, word(50, 200) if r % 2 else b"abcdefgh" * rnd.randint(8, 40))
        elif r < 55:
            cmd(b"HSET", k, *[x for j in range(rnd.randint(2, 8)) for x in (b"f%d" % j, word(1, 20))])
        elif r < 63:
            cmd(b"RPUSH", k, *[word(1, 20) for _ in range(rnd.randint(2, 10))])
        elif r < 70:
            cmd(b"SADD", k, *{word(3, 12) for _ in range(rnd.randint(2, 8))})
        elif r < 75:
            cmd(b"SADD", k, *{rnd.randint(-1000, 100000) for _ in range(rnd.randint(2, 12))})
        elif r < 85:
            cmd(b"ZADD", k, *[x for j in range(rnd.randint(2, 8)) for x in (rnd.randint(0, 1000), b"m%d" % j)])
        else:
            cmd(b"SET", k, word(10, 20))
        if i % 10 == 3:
            cmd(b"PEXPIREAT", k, 4102444800000 + i)
out.write(b"".join(buf))
PY
}

# Builds $BENCH_DIR/$1/dump.rdb with redis-server and records its DEBUG DIGEST and DBSIZE.
make_dump() {
  local ds=$1 dir=$BENCH_DIR/$1
  if [ -f "$dir/dump.rdb" ] && [ -f "$dir/digest" ] && [ "${REGEN:-0}" != 1 ]; then
    return
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  local port; port=$(free_port)
  "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --daemonize no --logfile "$dir/gen.log" --enable-debug-command yes &
  local pid=$!
  # shellcheck disable=SC2064 # the pid is meant to be expanded now
  trap "kill $pid 2>/dev/null || true" EXIT
  until "$REDIS_CLI" -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
  echo "generating dataset '$ds' with redis-server $("$REDIS_SERVER" --version | sed 's/.*v=\([^ ]*\).*/\1/')..."
  gen_data "$ds" | "$REDIS_CLI" -p "$port" --pipe >/dev/null
  "$REDIS_CLI" -p "$port" save >/dev/null
  "$REDIS_CLI" -p "$port" debug digest >"$dir/digest"
  "$REDIS_CLI" -p "$port" dbsize >"$dir/dbsize"
  "$REDIS_CLI" -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  trap - EXIT
  echo "  $(du -h "$dir/dump.rdb" | cut -f1) dump.rdb, $(cat "$dir/dbsize") keys, digest $(cat "$dir/digest")"
}

for ds in $DATASETS; do make_dump "$ds"; done

# The timing runs: one line per run, "dataset server seconds_logged seconds_to_ready".
RESULTS=$BENCH_DIR/results.txt
: >"$RESULTS"
python3 - "$RUNS" "$BENCH_DIR" "$REDIS_SERVER" "$MOON_BIN" "$RESULTS" "$DATASETS" "$SHARDS" <<'PY'
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time

runs, bench, redis_bin, moon_bin, results = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
datasets, shard_counts = sys.argv[6].split(), [int(s) for s in sys.argv[7].split()]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def command(port, *args, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    line = data.split(b"\r\n")[0]
    if line.startswith(b"$"):
        return data.split(b"\r\n")[1].decode()
    return line[1:].decode()

def run_one(ds, server, shards):
    src = os.path.join(bench, ds, "dump.rdb")
    d = tempfile.mkdtemp(prefix="rdbload-", dir=bench)
    os.link(src, os.path.join(d, "dump.rdb"))
    port, log = free_port(), os.path.join(d, "server.log")
    common = ["--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no",
              "--logfile", log, "--enable-debug-command", "yes"]
    argv = [redis_bin, "--daemonize", "no"] + common if server == "redis" else \
           [moon_bin, "--shards", str(shards)] + common
    name = "redis-server" if server == "redis" else f"moon --shards {shards}"
    # Let the kernel settle after the previous server freed its memory (that slows the next one's page faults).
    time.sleep(1)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = None
        while ready is None:
            if p.poll() is not None:
                sys.exit(f"{name} exited during load: see {log}")
            if time.monotonic() - t0 > 600:
                sys.exit(f"{name} not ready after 600 s: see {log}")
            try:
                if command(port, b"PING", timeout=1) == "PONG":
                    ready = time.monotonic() - t0
            except OSError:
                pass
            # Polls 200 times a second: a client spinning on -LOADING would take a CPU from the load.
            if ready is None:
                time.sleep(0.005)
        m = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", open(log, errors="replace").read())
        if not m:
            sys.exit(f"{name}: no 'DB loaded from disk' line in {log}")
        try:
            digest, dbsize = command(port, b"DEBUG", b"DIGEST", timeout=120), command(port, b"DBSIZE")
        except OSError as e:
            sys.exit(f"{name}: {e} asking for DEBUG DIGEST; log kept in {d}")
        want_digest = open(os.path.join(bench, ds, "digest")).read().strip()
        want_size = open(os.path.join(bench, ds, "dbsize")).read().strip()
        if digest != want_digest or dbsize != want_size:
            sys.exit(f"{name} loaded {ds} with digest {digest} / {dbsize} keys, "
                     f"expected {want_digest} / {want_size}; log kept in {d}")
        try:
            command(port, b"SHUTDOWN", b"NOSAVE", timeout=5)
        except OSError:
            pass
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
    shutil.rmtree(d)
    return float(m[-1]), ready

servers = [("redis", 0)] + [("moon", n) for n in shard_counts]
rows = {}
with open(results, "w") as out:
    for ds in datasets:
        for r in range(runs):
            for server, shards in servers:
                logged, ready = run_one(ds, server, shards)
                name = "redis-server" if server == "redis" else f"moon --shards {shards}"
                rows.setdefault((ds, name), []).append((logged, ready))
                out.write(f"{ds}\t{name}\t{logged:.3f}\t{ready:.3f}\n")

def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]

print(f"\nmedian of {runs} runs; 'load' is the server's own 'DB loaded from disk' figure, 'ready' is spawn to PING;")
print("'per run' pairs each run's redis-server load with Moon's right after it (the median and range of those")
print("ratios: on a shared machine the speed drifts between periods, and paired runs see the same period)")
print(f"{'dataset':8} {'server':16} {'load s':>8} {'ready s':>8} {'redis/moon (load)':>18} {'(ready)':>8}"
      f" {'per run (load)':>22}")
for ds in datasets:
    size = os.path.getsize(os.path.join(bench, ds, "dump.rdb")) / 1e6
    base = rows[(ds, "redis-server")]
    bl, br = median([x[0] for x in base]), median([x[1] for x in base])
    for server, shards in servers:
        name = "redis-server" if server == "redis" else f"moon --shards {shards}"
        l, rd = median([x[0] for x in rows[(ds, name)]]), median([x[1] for x in rows[(ds, name)]])
        ratio = "" if server == "redis" else f"{bl / max(l, 1e-4):.2f}x"
        rratio = "" if server == "redis" else f"{br / max(rd, 1e-4):.2f}x"
        paired = [b[0] / max(m[0], 1e-4) for b, m in zip(base, rows[(ds, name)])]
        per_run = "" if server == "redis" else \
            f"{median(paired):.2f}x ({min(paired):.2f}-{max(paired):.2f})"
        print(f"{ds:8} {name:16} {l:8.3f} {rd:8.3f} {ratio:>18} {rratio:>8} {per_run:>22}")
    print(f"{'':8} ({size:.1f} MB dump.rdb, digest checked on every load)")
PY
