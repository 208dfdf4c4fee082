#!/usr/bin/env python3
"""Worst client round trip and extra memory during a BGSAVE of 1M keys: release moon-server (fork-less
snapshot) next to redis-server 7.0.15 (fork). Not run by CI; python3 standard library only, raw sockets.

For each server: start it in a fresh temp dir (--save '' --appendonly no), load N keys with pipelined SETs
(strings of 20 to 60 bytes, plus one key in 20 a 20-field hash), then
  1. baseline: a probe client sends SET <random existing key> <value> one at a time for --baseline seconds
     and records every round trip;
  2. BGSAVE from a second connection while the probe keeps going (and, with --flood, a third client pipelines
     random overwrites to make the save copy more pre-images / copy-on-write pages), until
     rdb_bgsave_in_progress goes back to 0.
Reports max / p99.9 / p99 / median round trip before and during the save, the BGSAVE command's own round
trip, the save's duration, and memory: RSS before, peak RSS during (Moon: the one process; Redis: parent,
plus the fork child's Private_Dirty peak from /proc/<child>/smaps_rollup, and Redis's own rdb_last_cow_size).

Usage: python3 tests/bench/bgsave_latency.py [--keys 1000000] [--shards 4] [--baseline 3] [--flood]
                                             [--moon PATH] [--redis PATH] [--only moon|redis]
Build Moon first: CARGO_TARGET_DIR=/tmp/rel-bgsave cargo build --release -p moon-server
"""

import argparse
import gc
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            if t == b"-":
                return RuntimeError(rest.decode())
            return rest.decode()
        if t == b":":
            return int(rest)
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n + 2)[:-2]
            return data[4:] if t == b"=" else data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("unexpected reply %r" % line)

    def cmd(self, *args):
        self.sock.sendall(enc(*args))
        return self.reply()

    def pipeline(self, payload, count):
        sender = threading.Thread(target=self.sock.sendall, args=(payload,))
        sender.start()
        for _ in range(count):
            r = self.reply()
            if isinstance(r, RuntimeError):
                raise r
        sender.join()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def info(conn, section="persistence"):
    text = conn.cmd("INFO", section)
    out = {}
    for line in text.decode().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def private_dirty_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


class Sampler(threading.Thread):
    """Samples RSS of the server (and the private dirty memory of any fork child) every 5 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss = 0
        self.peak_child = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.peak_rss = max(self.peak_rss, rss_kb(self.pid))
            for c in children(self.pid):
                self.peak_child = max(self.peak_child, private_dirty_kb(c))
            time.sleep(0.005)


def start(kind, binary, shards):
    d = tempfile.mkdtemp(prefix="bgsave-bench-")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no"]
    if kind == "moon":
        args += ["--shards", str(shards), "--protected-mode", "no"]
    else:
        args += ["--daemonize", "no"]
    log = open(os.path.join(d, "server.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            c = Conn(port)
            if c.cmd("PING") == "PONG":
                return proc, port, d
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("%s did not start, see %s" % (kind, d))
        time.sleep(0.05)


def populate(port, keys):
    c = Conn(port)
    rnd = random.Random(1)
    batch = 20000
    for lo in range(0, keys, batch):
        parts = []
        n = 0
        for i in range(lo, min(keys, lo + batch)):
            if i % 20 == 0:
                fields = []
                for f in range(20):
                    fields += [b"f%d" % f, b"v%d" % rnd.randrange(1 << 30)]
                parts.append(enc("HSET", b"key:%d" % i, *fields))
            else:
                parts.append(enc("SET", b"key:%d" % i, b"x" * rnd.randrange(20, 61)))
            n += 1
        c.pipeline(b"".join(parts), n)


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, int(len(sorted_values) * p))
    return sorted_values[i]


def summary(name, rtts):
    s = sorted(rtts)
    ms = lambda v: v * 1000.0
    return "%-9s n=%-7d max %8.3f ms  p99.9 %7.3f ms  p99 %7.3f ms  median %6.3f ms" % (
        name,
        len(s),
        ms(s[-1]) if s else 0.0,
        ms(percentile(s, 0.999)),
        ms(percentile(s, 0.99)),
        ms(percentile(s, 0.5)),
    )


def flood(port, keys, stop):
    c = Conn(port)
    rnd = random.Random(2)
    while not stop.is_set():
        n = 200
        payload = b"".join(enc("SET", b"key:%d" % (rnd.randrange(keys) | 1), b"y" * 40) for _ in range(n))
        c.pipeline(payload, n)


def bench(kind, binary, keys, shards, baseline, with_flood):
    proc, port, d = start(kind, binary, shards)
    try:
        t0 = time.time()
        populate(port, keys)
        ctl = Conn(port)
        print("%s: %d keys loaded in %.1f s (DBSIZE %d)" % (kind, keys, time.time() - t0, ctl.cmd("DBSIZE")))
        probe = Conn(port)
        rnd = random.Random(3)
        time.sleep(1.0)
        rss_before = rss_kb(proc.pid)
        stop_flood = threading.Event()
        flooder = None
        if with_flood:
            flooder = threading.Thread(target=flood, args=(port, keys, stop_flood), daemon=True)
            flooder.start()
        gc.disable()
        before = []
        end = time.perf_counter() + baseline
        while time.perf_counter() < end:
            k = b"key:%d" % (rnd.randrange(keys) | 1)
            t = time.perf_counter()
            probe.cmd("SET", k, b"z" * 30)
            before.append(time.perf_counter() - t)
        sampler = Sampler(proc.pid)
        sampler.peak_rss = rss_kb(proc.pid)
        sampler.start()
        poll = Conn(port)
        during = []
        bg = {}

        def bgsave():
            t = time.perf_counter()
            bg["reply"] = ctl.cmd("BGSAVE")
            bg["rtt"] = time.perf_counter() - t

        started = time.perf_counter()
        threading.Thread(target=bgsave, daemon=True).start()
        next_poll = started + 0.05
        while True:
            k = b"key:%d" % (rnd.randrange(keys) | 1)
            t = time.perf_counter()
            probe.cmd("SET", k, b"z" * 30)
            during.append(time.perf_counter() - t)
            now = time.perf_counter()
            if "rtt" in bg and now >= next_poll:
                next_poll = now + 0.05
                if info(poll)["rdb_bgsave_in_progress"] == "0":
                    break
            if now - started > 600:
                raise RuntimeError("BGSAVE did not finish in 10 minutes")
        save_secs = time.perf_counter() - started
        gc.enable()
        stop_flood.set()
        sampler.stop = True
        sampler.join()
        if flooder:
            flooder.join()
        p = info(ctl)
        print("%s: BGSAVE replied %r in %.3f ms, finished in %.2f s, status %s" % (
            kind, bg["reply"], bg["rtt"] * 1000, save_secs, p["rdb_last_bgsave_status"]))
        print("  " + summary("before", before))
        print("  " + summary("during", during))
        line = "  memory: RSS before %.1f MB, peak RSS during %.1f MB (+%.1f MB)" % (
            rss_before / 1024, sampler.peak_rss / 1024, (sampler.peak_rss - rss_before) / 1024)
        if kind == "redis":
            stats = info(ctl, "stats")
            line += "; fork child private dirty peak %.1f MB, rdb_last_cow_size %.1f MB, latest_fork_usec %s" % (
                sampler.peak_child / 1024, int(p.get("rdb_last_cow_size", 0)) / 1048576, stats.get("latest_fork_usec"))
        print(line)
        # What each server measures itself: how long its request path stopped for the save (no client noise).
        stats = info(ctl, "stats")
        field = "latest_fork_usec" if kind == "redis" else "latest_snapshot_max_hold_usec"
        print("  server stall %.3f ms (%s)" % (int(stats.get(field, 0)) / 1000, field))
        print("  dump.rdb %.1f MB" % (os.path.getsize(os.path.join(d, "dump.rdb")) / 1048576))
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
    ap.add_argument("--moon", default="/tmp/rel-bgsave/release/moon-server")
    ap.add_argument("--redis", default="/usr/bin/redis-server")
    ap.add_argument("--only", choices=["moon", "redis"])
    a = ap.parse_args()
    for kind, binary in (("moon", a.moon), ("redis", a.redis)):
        if a.only and a.only != kind:
            continue
        if not os.path.exists(binary):
            print("%s: %s not found, skipped" % (kind, binary), file=sys.stderr)
            continue
        bench(kind, binary, a.keys, a.shards, a.baseline, a.flood)


if __name__ == "__main__":
    main()
