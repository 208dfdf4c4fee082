#!/usr/bin/env python3
"""Moon against redis-server 7.0.15, side by side, same data, same run: the harness behind
tests/bench/compare.sh (read its header for the options and the fairness rules). Standard library only.

Reuses the other scripts of this directory instead of measuring the same thing twice:
  rdb_load.sh            RDB load and spawn-to-PING times (called on dumps this script generates)
  bgsave_latency.py      client, RSS sampler, and the probe loop around a BGSAVE (imported; its bench()
                         runs on a server this script started and loaded)
  aof_rewrite_latency.py the probe loop around a BGREWRITEAOF and its rewrite/base helpers (imported)
"""

import contextlib
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import aof_rewrite_latency as arl  # noqa: E402
import bgsave_latency as bl  # noqa: E402

ENV = os.environ
KEYS = int(ENV.get("KEYS", "1000000"))
RUNS = int(ENV.get("RUNS", "3"))
BENCH_RUNS = int(ENV.get("BENCH_RUNS", str(RUNS)))
SECTIONS = ENV.get("SECTIONS", "rdb aof bench").split()
DATASETS = ENV.get("DATASETS", "strings mixed").split()
SHARDS = [int(s) for s in ENV.get("SHARDS", "1 2").split()]
FSYNC = ENV.get("FSYNC", "everysec always").split()
PIPELINES = [int(p) for p in ENV.get("PIPELINES", "1 16 64").split()]
CLIENTS = int(ENV.get("CLIENTS", "50"))
REQ_SCALE = float(ENV.get("REQ_SCALE", "1"))
PROBES = ENV.get("PROBES", "1") == "1"
PROBE_BASELINE = float(ENV.get("PROBE_BASELINE", "3"))
PREAMBLE = ENV.get("PREAMBLE", "yes")
PIN = ENV.get("PIN", "1") == "1" and os.cpu_count() >= 2
BENCH_DIR = ENV.get("BENCH_DIR", "/tmp/moon-compare/k%d" % KEYS)
REGEN = ENV.get("REGEN", "0") == "1"
NOTE = ENV.get("NOTE", "")
OUT = ENV.get("OUT", os.path.join(BENCH_DIR, "compare.md"))
MOON = ENV["MOON_BIN"]
REDIS = ENV.get("REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = ENV.get("REDIS_CLI", "/usr/bin/redis-cli")
REDIS_BENCH = ENV.get("REDIS_BENCHMARK", "/usr/bin/redis-benchmark")
LOG = os.path.join(BENCH_DIR, "compare.log")

# Requests per redis-benchmark test (each of SET and GET), by appendfsync and pipeline: about 2-5 s each on
# 2 cores. Pipelines not listed get the nearest smaller one's count.
REQS = {
    "everysec": {1: 200_000, 16: 1_000_000, 64: 2_000_000},
    "always": {1: 20_000, 16: 200_000, 64: 500_000},
    "no": {1: 200_000, 16: 1_000_000, 64: 2_000_000},
}

LIVE = []  # servers still running, killed on the way out


def log(msg=""):
    print(msg, flush=True)
    with open(LOG, "a") as f:
        f.write(msg + "\n")


def fail(msg):
    log("FAILED: " + msg)
    raise SystemExit(1)


def servers():
    return [("redis", 0)] + [("moon", n) for n in SHARDS]


def label(kind, shards):
    return "redis" if kind == "redis" else "moon x%d" % shards


def argv(kind, shards, d, port, extra, pin):
    common = ["--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--logfile",
              os.path.join(d, "server.log"), "--enable-debug-command", "yes"] + extra
    if kind == "redis":
        a = [REDIS, "--daemonize", "no"] + common
    else:
        a = [MOON, "--shards", str(shards), "--protected-mode", "no"] + common
    return (["taskset", "-c", "0"] if pin else []) + a


def spawn(kind, shards, d, extra, pin=False):
    port = bl.free_port()
    t0 = time.monotonic()
    p = subprocess.Popen(argv(kind, shards, d, port, extra, pin), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    LIVE.append(p)
    return p, port, t0


def wait_ready(p, port, want_keys, t0, what):
    """Seconds from spawn until PING answers PONG and DBSIZE is the whole dataset (polled every 5 ms)."""
    while True:
        if p.poll() is not None:
            fail("%s exited during start-up (exit %s)" % (what, p.returncode))
        if time.monotonic() - t0 > 900:
            fail("%s not serving the dataset after 900 s" % what)
        try:
            c = bl.Conn(port)
            try:
                if c.cmd("PING") == "PONG" and c.cmd("DBSIZE") == want_keys:
                    return time.monotonic() - t0
            finally:
                c.sock.close()
        except OSError:
            pass
        time.sleep(0.005)


def cmd(port, *args):
    c = bl.Conn(port)
    try:
        r = c.cmd(*args)
    finally:
        c.sock.close()
    if isinstance(r, RuntimeError):
        raise r
    return r.decode() if isinstance(r, bytes) else r


def stop(p, port):
    try:
        cmd(port, "SHUTDOWN", "NOSAVE")
    except (OSError, RuntimeError):
        pass
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if p in LIVE:
        LIVE.remove(p)


def status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid, children=False):
    """User + system CPU of a process and all its threads (with children=True, plus its reaped children:
    Redis's fork child is reaped by the server); a measure a busy neighbour moves far less than wall time."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def logged_seconds(d, pattern):
    with open(os.path.join(d, "server.log"), errors="replace") as f:
        m = re.findall(pattern, f.read())
    return float(m[-1]) if m else float("nan")


def tmpdir(tag):
    return tempfile.mkdtemp(prefix="%s-" % tag, dir=BENCH_DIR)


def expected(ds):
    with open(os.path.join(BENCH_DIR, ds, "digest")) as f:
        digest = f.read().strip()
    with open(os.path.join(BENCH_DIR, ds, "dbsize")) as f:
        size = int(f.read().strip())
    return digest, size


def check_digest(port, ds, what, d):
    want_digest, want_size = expected(ds)
    got = cmd(port, "DEBUG", "DIGEST")
    if got != want_digest:
        keep = d + "-kept"
        shutil.copytree(d, keep, ignore=shutil.ignore_patterns("*.rdb", "appendonlydir"))
        fail("%s: DEBUG DIGEST %s, expected %s (redis-server's when it wrote the files); log in %s"
             % (what, got, want_digest, keep))
    return want_size


# ---------------------------------------------------------------------------------------------- datasets

LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Gen:
    """Deterministic RESP commands of one dataset, in chunks for redis-cli --pipe."""

    def __init__(self, seed):
        import random

        self.r = random.Random(seed)
        self.pool = bytes(self.r.choice(LETTERS) for _ in range(1 << 16))
        self.parts = []

    def word(self, lo, hi):
        n = self.r.randint(lo, hi)
        o = self.r.randrange(len(self.pool) - n)
        return self.pool[o:o + n]

    def cmd(self, *args):
        self.parts.append(bl.enc(*args))

    def take(self):
        out, self.parts = b"".join(self.parts), []
        return out


def mixed_kind(i):
    """The type of key i of the mixed dataset (the tail of updates needs it too)."""
    if i % 1000 == 500:
        return ("bighash", "biglist", "bigset", "bigintset", "bigzset")[(i // 1000) % 5]
    r = i % 100
    for bound, kind in ((20, "str"), (30, "int"), (35, "long"), (40, "strttl"), (50, "hash"), (58, "list"),
                        (65, "set"), (72, "intset"), (82, "zset")):
        if r < bound:
            return kind
    return "str"


def gen_strings(g, keys):
    for lo in range(0, keys, 20000):
        for i in range(lo, min(keys, lo + 20000)):
            v = b"%d" % g.r.randint(0, 10**9) if i % 10 == 0 else g.word(3, 20)
            g.cmd(b"SET", b"key:%d" % i, v)
        yield g.take()


def gen_mixed(g, keys):
    w = g.word
    for lo in range(0, keys, 20000):
        for i in range(lo, min(keys, lo + 20000)):
            k, kind = b"key:%d" % i, mixed_kind(i)
            if kind == "bighash":
                g.cmd(b"HSET", k, *[x for j in range(300) for x in (b"field%d" % j, w(5, 40))])
            elif kind == "biglist":
                g.cmd(b"RPUSH", k, *[w(5, 60) for _ in range(600)])
            elif kind == "bigset":
                g.cmd(b"SADD", k, *[b"member:%d" % j for j in range(400)])
            elif kind == "bigintset":
                g.cmd(b"SADD", k, *[b"%d" % (j * 7919 - 10**6) for j in range(400)])
            elif kind == "bigzset":
                g.cmd(b"ZADD", k, *[x for j in range(250) for x in (b"%d.25" % g.r.randint(-10**6, 10**6), b"m%d" % j)])
            elif kind == "str":
                g.cmd(b"SET", k, w(4, 30))
            elif kind == "int":
                g.cmd(b"SET", k, b"%d" % g.r.randint(-10**12, 10**12))
            elif kind == "long":
                g.cmd(b"SET", k, w(50, 200) if i % 2 else b"abcdefgh" * g.r.randint(8, 40))
            elif kind == "strttl":
                g.cmd(b"SET", k, w(4, 30), b"EX", b"%d" % (10**9 + i))
            elif kind == "hash":
                g.cmd(b"HSET", k, *[x for j in range(g.r.randint(2, 8)) for x in (b"f%d" % j, w(1, 20))])
            elif kind == "list":
                g.cmd(b"RPUSH", k, *[w(1, 20) for _ in range(g.r.randint(2, 10))])
            elif kind == "set":
                g.cmd(b"SADD", k, *{w(3, 12) for _ in range(g.r.randint(2, 8))})
            elif kind == "intset":
                g.cmd(b"SADD", k, *{b"%d" % g.r.randint(-1000, 100000) for _ in range(g.r.randint(2, 12))})
            else:
                g.cmd(b"ZADD", k, *[x for j in range(g.r.randint(2, 8)) for x in (b"%d" % g.r.randint(0, 1000), b"m%d" % j)])
            if i % 10 == 3 and kind != "strttl":
                g.cmd(b"PEXPIREAT", k, b"%d" % (4102444800000 + i))
        yield g.take()
    # The tail: non-idempotent updates of existing keys (replaying them twice or out of order shows).
    for lo in range(0, keys // 5, 20000):
        for _ in range(lo, min(keys // 5, lo + 20000)):
            i = g.r.randrange(keys)
            k, kind = b"key:%d" % i, mixed_kind(i)
            if kind == "int":
                g.cmd(b"INCRBY", k, b"%d" % g.r.randint(-1000, 1000))
            elif kind in ("str", "long", "strttl"):
                g.cmd(b"APPEND", k, w(1, 6))
            elif kind in ("list", "biglist"):
                g.cmd(b"LPUSH", k, w(1, 20))
            elif kind in ("zset", "bigzset"):
                g.cmd(b"ZINCRBY", k, b"1.5", b"m%d" % g.r.randint(0, 3))
            elif kind in ("hash", "bighash"):
                g.cmd(b"HINCRBY", k, b"counter", b"1")
            else:
                g.cmd(b"INCR", b"counter:%d" % (i % 1000))
        yield g.take()


def make_dataset(ds):
    """BENCH_DIR/<ds>/: dump.rdb and a pure-RESP appendonlydir/ of the same data, both written by redis-server,
    with its DEBUG DIGEST and DBSIZE (the layout rdb_load.sh reads)."""
    d = os.path.join(BENCH_DIR, ds)
    if not REGEN and all(os.path.exists(os.path.join(d, f)) for f in ("dump.rdb", "appendonlydir", "digest", "dbsize")):
        return
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    t = time.monotonic()
    p, port, t0 = spawn("redis", 0, d, ["--appendonly", "yes", "--appendfsync", "no", "--aof-use-rdb-preamble", "no",
                                        "--auto-aof-rewrite-percentage", "0"])
    wait_ready(p, port, 0, t0, "redis-server (generator)")
    pipe = subprocess.Popen([REDIS_CLI, "-p", str(port), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    g = Gen(20261124)
    for chunk in (gen_strings if ds == "strings" else gen_mixed)(g, KEYS):
        pipe.stdin.write(chunk)
    pipe.stdin.close()
    out = pipe.stdout.read().decode(errors="replace")
    if pipe.wait() != 0 or "errors: 0," not in out:
        fail("generating %s: redis-cli --pipe said %s" % (ds, out.strip()))
    cmd(port, "SAVE")
    digest, size = cmd(port, "DEBUG", "DIGEST"), cmd(port, "DBSIZE")
    rewrites = bl.info(bl.Conn(port))["aof_rewrites"]
    stop(p, port)
    os.remove(os.path.join(d, "server.log"))
    bases = os.listdir(os.path.join(d, "appendonlydir"))
    if rewrites != "0" or any(b.endswith(".rdb") for b in bases):
        fail("generating %s: the appendonlydir is not pure RESP (%s)" % (ds, bases))
    with open(os.path.join(d, "dbsize"), "w") as f:
        f.write("%d\n" % size)
    with open(os.path.join(d, "digest"), "w") as f:
        f.write(digest + "\n")
    log("dataset %s: %d keys, dump.rdb %.1f MB, appendonlydir %.1f MB, digest %s (%.0f s)" % (
        ds, size, mb(os.path.getsize(os.path.join(d, "dump.rdb"))), mb(dir_bytes(os.path.join(d, "appendonlydir"))),
        digest, time.monotonic() - t))


def mb(n):
    return n / 1048576


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


# ------------------------------------------------------------------------------------------------ figures

FIG = {}  # (dataset, figure) -> {server label: [values]}


def put(ds, fig, who, v):
    FIG.setdefault((ds, fig), {}).setdefault(who, []).append(v)


@contextlib.contextmanager
def handed_over(proc, port, d):
    """Makes bgsave_latency/aof_rewrite_latency's bench() run on a server this script already started and
    loaded (their start() and populate() are replaced for the call; the bench kills it and removes d)."""
    saved = bl.start, arl.start, bl.populate
    bl.start = arl.start = lambda *a, **k: (proc, port, d)
    bl.populate = lambda *a, **k: None
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            yield out
    finally:
        bl.start, arl.start, bl.populate = saved
        if proc in LIVE:
            LIVE.remove(proc)
        for line in out.getvalue().splitlines():
            log("    | " + line)


def worst(text, phase):
    """The worst round trip of bgsave_latency/aof_rewrite_latency's probe 'before' or 'during' the job."""
    m = re.search(r"^\s*%s\s+n=(\d+)\s+max\s+([0-9.]+) ms" % phase, text, re.M)
    return float(m.group(2)) if m else float("nan")


def empty_rss_kb(kind, shards):
    d = tmpdir("empty")
    p, port, t0 = spawn(kind, shards, d, ["--appendonly", "no"])
    wait_ready(p, port, 0, t0, label(kind, shards))
    time.sleep(0.5)
    rss = status_kb(p.pid, "VmRSS")
    stop(p, port)
    shutil.rmtree(d)
    return rss


def section_rdb():
    env = dict(ENV, BENCH_DIR=BENCH_DIR, DATASETS=" ".join(DATASETS), SHARDS=" ".join(map(str, SHARDS)),
               MOON_BIN=MOON)
    env.pop("REGEN", None)
    log("== RDB load: rdb_load.sh %d (the same dump.rdb, server-logged load time and spawn-to-PING)" % RUNS)
    r = subprocess.run(["bash", os.path.join(HERE, "rdb_load.sh"), str(RUNS)], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    for line in r.stdout.splitlines():
        log("    | " + line)
    if r.returncode != 0:
        fail("rdb_load.sh exited %d" % r.returncode)
    with open(os.path.join(BENCH_DIR, "results.txt")) as f:
        for line in f:
            ds, name, logged, ready = line.rstrip("\n").split("\t")
            who = "redis" if name == "redis-server" else "moon x%s" % name.split()[-1]
            put(ds, "rdb_load", who, float(logged))
            put(ds, "rdb_ready", who, float(ready))
    empty = {label(k, s): empty_rss_kb(k, s) for k, s in servers()}
    log("== RDB load memory and BGSAVE latency (empty-server RSS: %s)" % ", ".join(
        "%s %.1f MB" % (w, v / 1024) for w, v in empty.items()))
    for ds in DATASETS:
        for run in range(RUNS):
            for kind, shards in servers():
                who = label(kind, shards)
                d = tmpdir("rdbmem")
                os.link(os.path.join(BENCH_DIR, ds, "dump.rdb"), os.path.join(d, "dump.rdb"))
                time.sleep(1)
                p, port, t0 = spawn(kind, shards, d, ["--appendonly", "no"])
                ready = wait_ready(p, port, expected(ds)[1], t0, who)
                hwm, rss, cpu = status_kb(p.pid, "VmHWM"), status_kb(p.pid, "VmRSS"), cpu_seconds(p.pid)
                keys = check_digest(port, ds, "%s after loading %s/dump.rdb" % (who, ds), d)
                put(ds, "rdb_cpu", who, cpu)
                put(ds, "rdb_peak_rss", who, hwm * 1024)
                put(ds, "mem_per_key", who, (rss - empty[who]) * 1024 / keys)
                log("  %s %s run %d: ready %.3f s, CPU %.2f s, peak RSS %.1f MB, RSS %.1f MB, digest ok" % (
                    ds, who, run + 1, ready, cpu, hwm / 1024, rss / 1024))
                if PROBES and run == 0:
                    with handed_over(p, port, d) as out:
                        bl.bench(kind, REDIS if kind == "redis" else MOON, keys, shards, PROBE_BASELINE, False)
                    put(ds, "bgsave_worst", who, worst(out.getvalue(), "during"))
                    m = re.search(r"server stall ([0-9.]+) ms", out.getvalue())
                    put(ds, "bgsave_stall", who, float(m.group(1)) if m else float("nan"))
                    put(ds, "bgsave_before", who, worst(out.getvalue(), "before"))
                else:
                    stop(p, port)
                    shutil.rmtree(d)


def verify_in_redis(aofdir, ds, who):
    """Loads a copy of an appendonlydir a server rewrote in redis-server: the digest must be the dataset's."""
    d = tmpdir("verify")
    os.rename(aofdir, os.path.join(d, "appendonlydir"))
    p, port, t0 = spawn("redis", 0, d, ["--appendonly", "yes", "--auto-aof-rewrite-percentage", "0"])
    wait_ready(p, port, expected(ds)[1], t0, "redis-server loading %s's rewrite" % who)
    check_digest(port, ds, "redis-server loading the appendonlydir %s rewrote" % who, d)
    stop(p, port)
    shutil.rmtree(d)


def section_aof():
    log("== AOF replay of the same pure-RESP appendonlydir, BGREWRITEAOF (aof-use-rdb-preamble %s)" % PREAMBLE)
    extra = ["--appendonly", "yes", "--appendfsync", "everysec", "--aof-use-rdb-preamble", PREAMBLE,
             "--auto-aof-rewrite-percentage", "0"]
    for ds in DATASETS:
        for run in range(RUNS):
            for kind, shards in servers():
                who = label(kind, shards)
                d = tmpdir("aof")
                shutil.copytree(os.path.join(BENCH_DIR, ds, "appendonlydir"), os.path.join(d, "appendonlydir"))
                time.sleep(1)
                p, port, t0 = spawn(kind, shards, d, extra)
                ready = wait_ready(p, port, expected(ds)[1], t0, who)
                hwm, cpu = status_kb(p.pid, "VmHWM"), cpu_seconds(p.pid)
                keys = check_digest(port, ds, "%s after replaying %s/appendonlydir" % (who, ds), d)
                loaded = logged_seconds(d, r"DB loaded from append only file: ([0-9.]+) seconds")
                put(ds, "aof_load", who, loaded)
                put(ds, "aof_ready", who, ready)
                put(ds, "aof_cpu", who, cpu)
                put(ds, "aof_peak_rss", who, hwm * 1024)
                # The rewrite: timed, RSS sampled (Redis: the parent, plus the fork child's private dirty pages).
                time.sleep(0.5)
                ctl = bl.Conn(port)
                before = bl.rss_kb(p.pid)
                sampler = bl.Sampler(p.pid)
                sampler.peak_rss = before
                sampler.start()
                cpu0 = cpu_seconds(p.pid, children=True)
                reply, secs = arl.rewrite_and_wait(ctl)
                rw_cpu = cpu_seconds(p.pid, children=True) - cpu0
                sampler.stop = True
                sampler.join()
                status = bl.info(ctl)["aof_last_bgrewrite_status"]
                # The longest the server's request path was held up by the rewrite, as each server measures it
                # itself (no client or scheduler noise): Redis's fork, Moon's longest hold of a shard.
                stats = bl.info(ctl, "stats")
                stall_us = stats.get("latest_snapshot_max_hold_usec", stats.get("latest_fork_usec"))
                put(ds, "rewrite_stall", who, float(stall_us) / 1000 if stall_us is not None else float("nan"))
                if isinstance(reply, RuntimeError) or status != "ok":
                    fail("%s: BGREWRITEAOF replied %r, status %s" % (who, reply, status))
                base = arl.base_size(d)
                peak = sampler.peak_rss + sampler.peak_child
                put(ds, "rewrite_secs", who, secs)
                put(ds, "rewrite_cpu", who, rw_cpu)
                put(ds, "rewrite_base", who, base)
                put(ds, "rewrite_peak_rss", who, peak * 1024)
                put(ds, "rewrite_mem_ratio", who, peak / max(before, 1))
                log("  %s %s run %d: replay %.3f s (log), ready %.3f s, CPU %.2f s, peak RSS %.1f MB, digest ok; "
                    "BGREWRITEAOF %.2f s (CPU %.2f s), base %.1f MB, memory %.1f -> peak %.1f MB" % (
                        ds, who, run + 1, loaded, ready, cpu, hwm / 1024, secs, rw_cpu, mb(base), before / 1024,
                        peak / 1024))
                if run == 0 and kind == "moon":
                    copy = tmpdir("rewritten")
                    shutil.copytree(os.path.join(d, "appendonlydir"), os.path.join(copy, "appendonlydir"),
                                    ignore=shutil.ignore_patterns("*.lock"))
                    pending = os.path.join(copy, "appendonlydir")
                else:
                    pending = None
                if PROBES and run == 0:
                    with handed_over(p, port, d) as out:
                        arl.bench(kind, REDIS if kind == "redis" else MOON, keys, shards, PROBE_BASELINE, False,
                                  PREAMBLE)
                    put(ds, "rewrite_worst", who, worst(out.getvalue(), "during"))
                    put(ds, "rewrite_before", who, worst(out.getvalue(), "before"))
                else:
                    stop(p, port)
                    shutil.rmtree(d)
                if pending:
                    verify_in_redis(pending, ds, who)
                    shutil.rmtree(os.path.dirname(pending))
                    log("  %s %s: its rewritten appendonlydir loads in redis-server with the same digest" % (ds, who))


def section_tool():
    """Not in the table: aof_tool.sh's moon-aof-tool check/compact against redis-check-aof and a BGREWRITEAOF,
    on an AOF of KEYS keys written by redis-server; its output goes to the log."""
    log("== moon-aof-tool: aof_tool.sh %d %d" % (KEYS, KEYS))
    r = subprocess.run(["bash", os.path.join(HERE, "aof_tool.sh"), str(KEYS), str(KEYS)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    for line in r.stdout.splitlines():
        log("    | " + line)
    if r.returncode != 0:
        fail("aof_tool.sh exited %d" % r.returncode)


def reqs(mode, pipeline):
    table = REQS.get(mode, REQS["everysec"])
    n = table[max([p for p in table if p <= pipeline] or [min(table)])]
    return max(1000, int(n * REQ_SCALE))


def section_bench():
    log("== redis-benchmark -c %d -r %d -t set,get, appendonly yes, pinning %s" % (
        CLIENTS, KEYS, "server to CPU 0, client to CPU 1" if PIN else "off"))
    set_record = len(bl.enc("SET", "key:%012d" % 0, "xxx"))
    for mode in FSYNC:
        for run in range(BENCH_RUNS):
            for kind, shards in servers():
                who = label(kind, shards)
                d = tmpdir("bench")
                p, port, t0 = spawn(kind, shards, d, ["--appendonly", "yes", "--appendfsync", mode,
                                                      "--auto-aof-rewrite-percentage", "0"], pin=PIN)
                wait_ready(p, port, 0, t0, who)
                sets = 0
                line = []
                for pl in PIPELINES:
                    n = reqs(mode, pl)
                    a = (["taskset", "-c", "1"] if PIN else []) + [
                        REDIS_BENCH, "-h", "127.0.0.1", "-p", str(port), "-c", str(CLIENTS), "-P", str(pl),
                        "-n", str(n), "-r", str(KEYS), "-t", "set,get", "--csv"]
                    cpu0 = cpu_seconds(p.pid)
                    r = subprocess.run(a, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
                    cpu = cpu_seconds(p.pid) - cpu0
                    got = {}
                    for row in r.stdout.splitlines():
                        f = [x.strip('"') for x in row.split(",")]
                        if len(f) > 1 and f[0] in ("SET", "GET"):
                            got[f[0]] = float(f[1])
                    if r.returncode != 0 or len(got) != 2:
                        fail("%s: redis-benchmark %s said %s" % (who, " ".join(a), r.stdout[-500:]))
                    for t, rps in got.items():
                        put("bench", "%s %s P%d" % (t, mode, pl), who, rps)
                    put("bench", "CPU %s P%d" % (mode, pl), who, cpu * 1e6 / (2 * n))
                    sets += n
                    line.append("P%d SET %.0f GET %.0f (%.1f us CPU/req)" % (pl, got["SET"], got["GET"],
                                                                        cpu * 1e6 / (2 * n)))
                aof = dir_bytes(os.path.join(d, "appendonlydir"))
                stop(p, port)
                shutil.rmtree(d)
                # Every acknowledged SET must be in the AOF: a server that skipped logging would look fast.
                if aof < sets * set_record:
                    fail("%s: appendonlydir has %d bytes after %d SETs (at least %d expected)" % (
                        who, aof, sets, sets * set_record))
                log("  %s %s run %d: %s req/s; AOF %.1f MB" % (mode, who, run + 1, ", ".join(line), mb(aof)))


# ------------------------------------------------------------------------------------------------ the table

# figure -> (title, unit formatter, better: "lower"/"higher", ratio target or None, absolute Moon target or None)
ROWS = [
    ("rdb_load", "RDB load (server's log)", "s", "lower", 0.2, None),
    ("rdb_ready", "RDB start-up to serving", "s", "lower", 1 / 3, None),
    ("aof_load", "AOF replay (server's log)", "s", "lower", 1 / 3, None),
    ("aof_ready", "AOF start-up to serving (PING + DBSIZE)", "s", "lower", 1 / 3, None),
    ("rdb_cpu", "RDB load, server CPU time (all threads)", "s", "lower", None, None),
    ("aof_cpu", "AOF replay, server CPU time (all threads)", "s", "lower", None, None),
    ("rdb_peak_rss", "peak RSS during RDB load", "MB", "lower", None, None),
    ("aof_peak_rss", "peak RSS during AOF replay", "MB", "lower", None, None),
    ("mem_per_key", "memory per key (RSS after RDB load - empty)", "B", "lower", 1.0, None),
    ("rewrite_secs", "BGREWRITEAOF time", "s", "lower", 1.0, None),
    ("rewrite_cpu", "BGREWRITEAOF CPU time (Redis: + fork child)", "s", "lower", None, None),
    ("rewrite_base", "BGREWRITEAOF base size", "MB", "lower", 1.05, None),
    ("rewrite_peak_rss", "peak memory during BGREWRITEAOF (Redis: + child)", "MB", "lower", None, None),
    ("rewrite_mem_ratio", "  same, / RSS before the rewrite", "x", "lower", None, 1.3),
    ("rewrite_stall", "BGREWRITEAOF: longest server-side stall (Redis: fork; Moon: shard hold)", "ms", "lower",
     None, 5.0),
    ("rewrite_worst", "worst probe round trip during BGREWRITEAOF", "ms", "lower", None, 5.0),
    ("rewrite_before", "  same, in the seconds before (noise floor)", "ms", "lower", None, None),
    ("bgsave_stall", "BGSAVE: longest server-side stall (Redis: fork; Moon: shard hold)", "ms", "lower", None,
     5.0),
    ("bgsave_worst", "worst probe round trip during BGSAVE", "ms", "lower", None, 5.0),
    ("bgsave_before", "  same, in the seconds before (noise floor)", "ms", "lower", None, None),
]


def fmt(v, unit):
    if v != v:
        return "n/a"
    if unit == "MB":
        return "%.1f MB" % mb(v)
    if unit == "B":
        return "%.0f B" % v
    if unit == "s":
        return "%.3f s" % v if v < 10 else "%.1f s" % v
    if unit == "ms":
        return "%.2f ms" % v
    if unit == "us":
        return "%.2f us" % v
    if unit == "rps":
        return "%.0fk" % (v / 1000)
    return "%.2f%s" % (v, unit)


def ratio_cell(moon, redis, unit, better, target, absolute):
    if moon != moon or redis != redis or redis == 0:
        return "n/a"
    r = moon / redis
    if better == "lower":
        word = "faster" if unit == "s" else "lower"
        text = "%.2f" % r + (" (%.1fx %s)" % (1 / r, word) if 0 < r < 0.95 else "")
        ok = target is None or r <= target
    else:
        text = "%.2f" % r
        ok = target is None or r >= target
    if absolute is not None:
        ok = ok and moon < absolute
    if target is None and absolute is None:
        return text
    return text + (" ✓" if ok else " ✗")


def target_text(better, target, absolute):
    parts = []
    if target is not None:
        if better == "lower" and target < 1:
            parts.append("%.0fx faster" % (1 / target))
        else:
            parts.append("%s %.2f" % ("≤" if better == "lower" else "≥", target))
    if absolute is not None:
        parts.append("Moon < %g" % absolute)
    return ", ".join(parts)


def table():
    whos = [label(k, s) for k, s in servers()]
    moons = whos[1:]
    head = "| figure | redis | " + " | ".join("%s | %s/redis" % (m, m) for m in moons) + " | target |"
    sep = "|" + " --- |" * (3 + 2 * len(moons))
    lines = []

    def row(title, vals, unit, better, target, absolute):
        med = {w: statistics.median(vals[w]) if vals.get(w) else float("nan") for w in whos}
        cells = [title, fmt(med["redis"], unit)]
        for m in moons:
            cells += [fmt(med[m], unit), ratio_cell(med[m], med["redis"], unit, better, target, absolute)]
        cells.append(target_text(better, target, absolute))
        lines.append("| " + " | ".join(cells) + " |")

    for ds in DATASETS:
        present = [r for r in ROWS if (ds, r[0]) in FIG]
        if not present:
            continue
        _, size = expected(ds)
        lines += ["", "%s: %d keys (%s)" % (ds, size, "small strings" if ds == "strings" else
                                             "mixed types and TTLs, then %d non-idempotent updates" % (KEYS // 5)),
                  "", head, sep]
        for key, title, unit, better, target, absolute in present:
            row(title, FIG[(ds, key)], unit, better, target, absolute)
    bench_keys = [k for (ds, k) in FIG if ds == "bench"]
    if bench_keys:
        lines += ["", "redis-benchmark, %d clients, appendonly yes, requests per second%s" % (
            CLIENTS, " (server pinned to CPU 0, client to CPU 1)" if PIN else ""), "", head, sep]
        for mode in FSYNC:
            for t in ("SET", "GET"):
                for pl in PIPELINES:
                    key = "%s %s P%d" % (t, mode, pl)
                    if ("bench", key) not in FIG:
                        continue
                    target = 1.0 if mode == "always" else 1.5 if mode == "everysec" and pl > 1 else None
                    row("%s -P %d, appendfsync %s" % (t, pl, mode), FIG[("bench", key)], "rps", "higher", target,
                        None)
        for mode in FSYNC:
            for pl in PIPELINES:
                key = "CPU %s P%d" % (mode, pl)
                if ("bench", key) in FIG:
                    row("server CPU per request, -P %d, %s" % (pl, mode), FIG[("bench", key)], "us", "lower", None,
                        None)
    return "\n".join(lines)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    redis_v = subprocess.run([REDIS, "--version"], stdout=subprocess.PIPE, text=True).stdout.split()
    redis_v = next((x[2:] for x in redis_v if x.startswith("v=")), "?")
    return "%d CPUs (%s), kernel %s, redis-server %s, load average %s" % (
        os.cpu_count(), model, os.uname().release, redis_v, load)


def main():
    os.makedirs(BENCH_DIR, exist_ok=True)
    open(LOG, "w").close()
    started = time.time()
    first = machine()
    log("compare: KEYS=%d RUNS=%d SECTIONS=%s DATASETS=%s SHARDS=%s; %s" % (
        KEYS, RUNS, " ".join(SECTIONS), " ".join(DATASETS), " ".join(map(str, SHARDS)), first))
    log("moon-server: %s" % MOON)
    try:
        for ds in DATASETS:
            make_dataset(ds)
        for s in SECTIONS:
            t = time.monotonic()
            {"rdb": section_rdb, "aof": section_aof, "bench": section_bench, "tool": section_tool}[s]()
            log("(section %s: %.0f s)" % (s, time.monotonic() - t))
    finally:
        for p in LIVE:
            p.send_signal(signal.SIGKILL)
            p.wait()
        for name in os.listdir(BENCH_DIR):
            if re.match(r"(empty|rdbmem|aof|verify|rewritten|bench)-", name) and not name.endswith("-kept"):
                shutil.rmtree(os.path.join(BENCH_DIR, name), ignore_errors=True)
    header = ["### Moon / Redis, %s UTC%s" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
                                              ", " + NOTE if NOTE else ""), "",
              "Machine: %s; at the end: %s." % (first, machine().rsplit(", ", 1)[1]),
              "KEYS=%d, median of %d run(s) (probe latencies: first run only), %.0f min. Ratios are Moon/Redis of "
              "the figure; the check marks compare them with issue 8's targets." % (
                  KEYS, RUNS, (time.time() - started) / 60)]
    text = "\n".join(header) + "\n" + table() + "\n"
    with open(OUT, "w") as f:
        f.write(text)
    log("")
    log(text)
    log("(saved to %s; details in %s)" % (OUT, LOG))


if __name__ == "__main__":
    main()
