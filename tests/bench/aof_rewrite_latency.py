#!/usr/bin/env python3
"""Worst client round trip and extra memory during BGREWRITEAOF: release moon-server (fork-less snapshot on
the shard threads) next to redis-server 7.0.15 (fork). Not run by CI; python3 standard library only. Reuses
the client, loader, sampler and statistics of bgsave_latency.py (same directory).

For each server: start it in a fresh temp dir with appendonly yes (appendfsync everysec, automatic rewrites
off, --preamble yes|no for aof-use-rdb-preamble), load N keys with pipelined SETs (strings of 20 to 60
bytes, one key in 20 a 20-field hash), run one BGREWRITEAOF to fold the load into a base (timed, not
probed), then
  1. baseline: a probe client sends SET <random existing key> <value> one at a time for --baseline seconds;
  2. BGREWRITEAOF from a second connection while the probe keeps going (and, with --flood, a third client
     pipelines random overwrites), until aof_rewrite_in_progress goes back to 0.
Reports max / p99.9 / p99 / median round trip before and during the rewrite, BGREWRITEAOF's own round trip,
the rewrite's duration and the new base's size, and memory: RSS before, peak RSS during (Moon: the one
process; Redis: the parent, plus the fork child's Private_Dirty peak and Redis's aof_last_cow_size).

Usage: python3 tests/bench/aof_rewrite_latency.py [--keys 1000000] [--shards 4] [--baseline 3] [--flood]
                                                  [--preamble yes|no] [--moon PATH] [--redis PATH]
                                                  [--only moon|redis]
Build Moon first: CARGO_TARGET_DIR=/tmp/rel-aofrw cargo build --release -p moon-server
"""

import argparse
import gc
import glob
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgsave_latency as bl  # noqa: E402


def start(kind, binary, shards, preamble):
    d = tempfile.mkdtemp(prefix="aofrw-bench-")
    port = bl.free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0", "--aof-use-rdb-preamble", preamble]
    if kind == "moon":
        args += ["--shards", str(shards), "--protected-mode", "no"]
    else:
        args += ["--daemonize", "no"]
    log = open(os.path.join(d, "server.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            c = bl.Conn(port)
            if c.cmd("PING") == "PONG":
                return proc, port, d
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("%s did not start, see %s" % (kind, d))
        time.sleep(0.05)


def rewriting(conn):
    p = bl.info(conn)
    return p["aof_rewrite_in_progress"] != "0" or p["aof_rewrite_scheduled"] != "0"


def rewrite_and_wait(conn):
    t = time.perf_counter()
    reply = conn.cmd("BGREWRITEAOF")
    while rewriting(conn):
        time.sleep(0.05)
    return reply, time.perf_counter() - t


def base_size(d):
    bases = glob.glob(os.path.join(d, "appendonlydir", "*.base.*"))
    return max((os.path.getsize(b) for b in bases), default=0)


def bench(kind, binary, keys, shards, baseline, with_flood, preamble):
    proc, port, d = start(kind, binary, shards, preamble)
    try:
        t0 = time.time()
        bl.populate(port, keys)
        ctl = bl.Conn(port)
        print("%s: %d keys loaded in %.1f s (DBSIZE %d)" % (kind, keys, time.time() - t0, ctl.cmd("DBSIZE")))
        reply, secs = rewrite_and_wait(ctl)
        print("%s: first BGREWRITEAOF (folds the load into a base) %r, %.2f s" % (kind, reply, secs))
        probe = bl.Conn(port)
        rnd = random.Random(3)
        time.sleep(1.0)
        rss_before = bl.rss_kb(proc.pid)
        stop_flood = threading.Event()
        flooder = None
        if with_flood:
            flooder = threading.Thread(target=bl.flood, args=(port, keys, stop_flood), daemon=True)
            flooder.start()
        gc.disable()
        before = []
        end = time.perf_counter() + baseline
        while time.perf_counter() < end:
            k = b"key:%d" % (rnd.randrange(keys) | 1)
            t = time.perf_counter()
            probe.cmd("SET", k, b"z" * 30)
            before.append(time.perf_counter() - t)
        sampler = bl.Sampler(proc.pid)
        sampler.peak_rss = bl.rss_kb(proc.pid)
        sampler.start()
        poll = bl.Conn(port)
        during = []
        bg = {}

        def bgrewriteaof():
            t = time.perf_counter()
            bg["reply"] = ctl.cmd("BGREWRITEAOF")
            bg["rtt"] = time.perf_counter() - t

        started = time.perf_counter()
        threading.Thread(target=bgrewriteaof, daemon=True).start()
        next_poll = started + 0.05
        while True:
            k = b"key:%d" % (rnd.randrange(keys) | 1)
            t = time.perf_counter()
            probe.cmd("SET", k, b"z" * 30)
            during.append(time.perf_counter() - t)
            now = time.perf_counter()
            if "rtt" in bg and now >= next_poll:
                next_poll = now + 0.05
                if not rewriting(poll):
                    break
            if now - started > 600:
                raise RuntimeError("BGREWRITEAOF did not finish in 10 minutes")
        rewrite_secs = time.perf_counter() - started
        gc.enable()
        stop_flood.set()
        sampler.stop = True
        sampler.join()
        if flooder:
            flooder.join()
        p = bl.info(ctl)
        print("%s: BGREWRITEAOF replied %r in %.3f ms, finished in %.2f s, status %s, aof_rewrites %s" % (
            kind, bg["reply"], bg["rtt"] * 1000, rewrite_secs, p["aof_last_bgrewrite_status"], p["aof_rewrites"]))
        print("  " + bl.summary("before", before))
        print("  " + bl.summary("during", during))
        line = "  memory: RSS before %.1f MB, peak RSS during %.1f MB (+%.1f MB)" % (
            rss_before / 1024, sampler.peak_rss / 1024, (sampler.peak_rss - rss_before) / 1024)
        if kind == "redis":
            stats = bl.info(ctl, "stats")
            line += "; fork child private dirty peak %.1f MB, aof_last_cow_size %.1f MB, latest_fork_usec %s" % (
                sampler.peak_child / 1024, int(p.get("aof_last_cow_size", 0)) / 1048576,
                stats.get("latest_fork_usec"))
        print(line)
        stats = bl.info(ctl, "stats")
        field = "latest_fork_usec" if kind == "redis" else "latest_snapshot_max_hold_usec"
        print("  server stall %.3f ms (%s)" % (int(stats.get(field, 0)) / 1000, field))
        print("  base %.1f MB (aof-use-rdb-preamble %s)" % (base_size(d) / 1048576, preamble))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--baseline", type=float, default=3.0)
    ap.add_argument("--flood", action="store_true")
    ap.add_argument("--preamble", choices=["yes", "no"], default="yes")
    ap.add_argument("--moon", default="/tmp/rel-aofrw/release/moon-server")
    ap.add_argument("--redis", default="/usr/bin/redis-server")
    ap.add_argument("--only", choices=["moon", "redis"])
    a = ap.parse_args()
    for kind, binary in (("moon", a.moon), ("redis", a.redis)):
        if a.only and a.only != kind:
            continue
        if not os.path.exists(binary):
            print("%s: %s not found, skipped" % (kind, binary), file=sys.stderr)
            continue
        bench(kind, binary, a.keys, a.shards, a.baseline, a.flood, a.preamble)


if __name__ == "__main__":
    main()
