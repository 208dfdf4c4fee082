//! LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH / HISTOGRAM / HELP, and the two structures behind them:
//! - the latency monitor: per event ("command", "fast-command", later the persistence events), every spike
//!   at or above `latency-monitor-threshold` ms, one sample per second, the last 160 seconds with samples;
//! - [`Histogram`]: the per-command latency distribution behind `INFO latencystats` and `LATENCY HISTOGRAM`.
//!   It has the bucket layout of the HDR histogram Redis uses (1 ns to 1 s, two significant digits), so the
//!   reported percentiles and bucket bounds are the same numbers Redis prints for the same durations.

use crate::server::{unix_ms, Server};
use bytes::Bytes;
use engine::resp::Reply;
use engine::util::eq_ic;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
const HISTORY_LEN: usize = 160;

/// Histogram range: Redis tracks 1 ns .. 1 s, with 2 significant digits.
const HIST_MIN_NS: u64 = 1;
const HIST_MAX_NS: u64 = 1_000_000_000;
/// 2 significant digits need 200 distinct values per bucket: 256 sub-buckets, the upper half per bucket.
const SUB_BUCKETS: usize = 256;
const HALF: usize = SUB_BUCKETS / 2;
const HALF_MAGNITUDE: u32 = 7;
/// Buckets needed to reach `HIST_MAX_NS` (256 << 22 > 1e9).
const BUCKETS: usize = 23;
const COUNTS_LEN: usize = (BUCKETS + 1) * HALF;

/// A log-linear histogram of durations in nanoseconds with lock-free recording.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// Bucket of `v`: the power of two above it, less the sub-bucket bits.
fn bucket_of(v: u64) -> usize {
    let pow2ceiling = 64 - (v | (SUB_BUCKETS as u64 - 1)).leading_zeros();
    (pow2ceiling - (HALF_MAGNITUDE + 1)) as usize
}

fn index_of(v: u64) -> usize {
    let b = bucket_of(v);
    let sub = (v >> b) as usize;
    ((b + 1) << HALF_MAGNITUDE) + sub - HALF
}

/// The smallest value counted at `index`.
fn value_at(index: usize) -> u64 {
    let mut b = (index >> HALF_MAGNITUDE) as i64 - 1;
    let mut sub = (index & (HALF - 1)) + HALF;
    if b < 0 {
        sub -= HALF;
        b = 0;
    }
    (sub as u64) << b
}

/// The largest value counted in the same slot as `v`.
fn highest_equivalent(v: u64) -> u64 {
    let b = bucket_of(v);
    let lowest = (v >> b) << b;
    lowest + (1u64 << b) - 1
}

impl Histogram {
    pub fn new() -> Self {
        Histogram { counts: (0..COUNTS_LEN).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Records one duration, clamped into the tracked range as Redis does.
    pub fn record(&self, ns: u64) {
        let v = ns.clamp(HIST_MIN_NS, HIST_MAX_NS);
        self.counts[index_of(v)].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (Vec<u64>, u64) {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total = counts.iter().sum();
        (counts, total)
    }

    #[cfg(test)]
    fn total(&self) -> u64 {
        self.snapshot().1
    }

    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Ordering::Relaxed));
    }

    /// The value (ns) at `percentile` (0..=100): the highest value equivalent to the recorded value below
    /// which that share of the recordings falls.
    #[cfg(test)]
    fn percentile(&self, percentile: f64) -> u64 {
        let (counts, total) = self.snapshot();
        percentile_of(&counts, total, percentile)
    }

    /// Several percentiles from one consistent read.
    pub fn percentiles(&self, ps: &[f64]) -> Vec<u64> {
        let (counts, total) = self.snapshot();
        ps.iter().map(|&p| percentile_of(&counts, total, p)).collect()
    }

    /// The cumulative distribution `LATENCY HISTOGRAM` shows: (bucket upper bound in µs, recordings at or
    /// below it) for power-of-two bounds from 1024 ns, only where the count grows.
    pub fn cdf(&self) -> Vec<(u64, u64)> {
        let (counts, total) = self.snapshot();
        let mut out = Vec::new();
        if total == 0 {
            return out;
        }
        let (mut cumulative, mut prev, mut idx) = (0u64, 0u64, 0usize);
        let mut level = 1024u64;
        while idx < COUNTS_LEN {
            let stop = index_of(level.min(HIST_MAX_NS)).min(COUNTS_LEN - 1);
            while idx <= stop {
                cumulative += counts[idx];
                idx += 1;
            }
            if cumulative > prev {
                out.push((highest_equivalent(value_at(stop)) / 1000, cumulative));
                prev = cumulative;
            }
            if cumulative >= total || level >= HIST_MAX_NS {
                break;
            }
            level *= 2;
        }
        out
    }
}

fn percentile_of(counts: &[u64], total: u64, percentile: f64) -> u64 {
    let p = percentile.min(100.0);
    let want = (((p / 100.0) * total as f64) + 0.5) as u64;
    let want = want.max(1);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= want {
            let v = value_at(i);
            return if p == 0.0 { (v >> bucket_of(v)) << bucket_of(v) } else { highest_equivalent(v) };
        }
    }
    0
}

/// One event's spikes.
#[derive(Default)]
struct EventSeries {
    /// (unix seconds, ms), oldest first, at most one per second.
    samples: VecDeque<(i64, u64)>,
    max: u64,
}

/// The latency monitor: locked only when a spike is recorded or the LATENCY command reads it.
#[derive(Default)]
pub struct Monitor {
    events: Mutex<BTreeMap<String, EventSeries>>,
}

impl Monitor {
    /// Records `ms` for `event`; spikes within the same second keep the largest.
    pub fn add_sample(&self, event: &str, ms: u64) {
        let now = unix_ms() / 1000;
        let mut events = self.events.lock();
        let series = events.entry(event.to_string()).or_default();
        series.max = series.max.max(ms);
        match series.samples.back_mut() {
            Some((t, v)) if *t == now => *v = (*v).max(ms),
            _ => {
                if series.samples.len() == HISTORY_LEN {
                    series.samples.pop_front();
                }
                series.samples.push_back((now, ms));
            }
        }
    }

    /// Records `ms` for `event` when the monitor is on and `ms` reaches the threshold.
    pub fn add_if_needed(&self, server: &Server, event: &str, ms: u64) {
        let threshold = server.obs.latency_threshold_ms.load(Ordering::Relaxed);
        if threshold > 0 && ms >= threshold {
            self.add_sample(event, ms);
        }
    }
}

/// LATENCY <subcommand> ...
pub fn run(server: &Server, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    let monitor = &server.obs.latency;
    if eq_ic(sub, "latest") && a.len() == 2 {
        let events = monitor.events.lock();
        let rows = events
            .iter()
            .filter_map(|(name, s)| {
                let (t, v) = *s.samples.back()?;
                Some(Reply::Array(vec![
                    Reply::bulk(name.clone()),
                    Reply::Int(t),
                    Reply::Int(v as i64),
                    Reply::Int(s.max as i64),
                ]))
            })
            .collect();
        return Reply::Array(rows);
    }
    if eq_ic(sub, "history") && a.len() == 3 {
        let events = monitor.events.lock();
        let name = String::from_utf8_lossy(&a[2]);
        let rows = events.get(name.as_ref()).map_or_else(Vec::new, |s| {
            s.samples.iter().map(|&(t, v)| Reply::Array(vec![Reply::Int(t), Reply::Int(v as i64)])).collect()
        });
        return Reply::Array(rows);
    }
    if eq_ic(sub, "reset") {
        let mut events = monitor.events.lock();
        if a.len() == 2 {
            let n = events.len();
            events.clear();
            return Reply::Int(n as i64);
        }
        let mut n = 0;
        for e in &a[2..] {
            if events.remove(String::from_utf8_lossy(e).as_ref()).is_some() {
                n += 1;
            }
        }
        return Reply::Int(n);
    }
    if eq_ic(sub, "doctor") && a.len() == 2 {
        return Reply::Verbatim("txt".into(), Bytes::from(doctor(server)));
    }
    if eq_ic(sub, "graph") && a.len() == 3 {
        let events = monitor.events.lock();
        let name = String::from_utf8_lossy(&a[2]).into_owned();
        return match events.get(&name) {
            Some(s) if !s.samples.is_empty() => Reply::Verbatim("txt".into(), Bytes::from(graph(&name, s))),
            _ => Reply::err(format!("ERR No samples available for event '{name}'")),
        };
    }
    if eq_ic(sub, "histogram") {
        return histogram_reply(server, &a[2..]);
    }
    if eq_ic(sub, "help") && a.len() == 2 {
        return help();
    }
    if ["latest", "history", "doctor", "graph", "help"].iter().any(|s| eq_ic(sub, s)) {
        return engine::cmd::arity_error(&format!("latency|{}", String::from_utf8_lossy(sub).to_lowercase()));
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try LATENCY HELP.", String::from_utf8_lossy(sub)))
}

fn help() -> Reply {
    let lines = [
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect())
}

/// LATENCY HISTOGRAM [command ...]: `{name: {calls, histogram_usec: {bound: cumulative}}}` for every
/// (sub)command with recordings, or for the named ones (a container name covers its subcommands).
fn histogram_reply(server: &Server, names: &[Bytes]) -> Reply {
    let table = crate::stats::table();
    let slots: Vec<usize> = if names.is_empty() {
        (0..table.len()).collect()
    } else {
        let mut v = Vec::new();
        for n in names {
            for i in table.matching(n) {
                if !v.contains(&i) {
                    v.push(i);
                }
            }
        }
        v
    };
    let mut out = Vec::new();
    for i in slots {
        let Some(h) = server.obs.histogram(i) else { continue };
        let cdf = h.cdf();
        if cdf.is_empty() {
            continue;
        }
        let calls = server.obs.calls(i);
        let buckets = cdf.into_iter().map(|(b, c)| (Reply::Int(b as i64), Reply::Int(c as i64))).collect();
        out.push((
            Reply::bulk(table.name(i).to_string()),
            Reply::Map(vec![
                (Reply::bulk("calls"), Reply::Int(calls as i64)),
                (Reply::bulk("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    }
    Reply::Map(out)
}

/// LATENCY DOCTOR: the per-event summary and the advice that applies to the events seen.
fn doctor(server: &Server) -> String {
    let threshold = server.obs.latency_threshold_ms.load(Ordering::Relaxed);
    let events = server.obs.latency.events.lock();
    if events.is_empty() {
        if threshold == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
    }
    let mut s = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    let now = unix_ms() / 1000;
    let mut commands_seen = false;
    for (n, (name, series)) in events.iter().enumerate() {
        let count = series.samples.len().max(1) as u64;
        let sum: u64 = series.samples.iter().map(|x| x.1).sum();
        let avg = sum / count;
        let mad = series.samples.iter().map(|x| x.1.abs_diff(avg)).sum::<u64>() / count;
        let oldest = series.samples.front().map_or(now, |x| x.0);
        let period = (now - oldest).max(1) as f64 / count as f64;
        let _ = writeln!(
            s,
            "{}. {name}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, period {period:.2} sec). Worst all time event {}ms.",
            n + 1,
            series.max
        );
        commands_seen |= name == "command" || name == "fast-command";
    }
    s.push_str("\nI have a few advices for you:\n\n");
    if commands_seen {
        let slowlog = server.obs.slowlog_threshold_us.load(Ordering::Relaxed);
        if slowlog < 0 {
            let _ = writeln!(s, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.", threshold * 1000);
        } else if slowlog as u64 / 1000 > threshold {
            let _ = writeln!(s, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.", threshold * 1000);
        }
        s.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        s.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    s
}

/// LATENCY GRAPH: a header like Redis's and one column per sample, scaled between the lowest and highest
/// sample over four rows, with the sample's age underneath.
fn graph(name: &str, series: &EventSeries) -> String {
    let low = series.samples.iter().map(|x| x.1).min().unwrap_or(0);
    let high = series.samples.iter().map(|x| x.1).max().unwrap_or(0);
    let mut s = format!("{name} - high {high} ms, low {low} ms (all time high {} ms)\n", series.max);
    s.push_str(&"-".repeat(80));
    s.push('\n');
    let rows = 4u64;
    let level = |v: u64| if high == low { rows } else { 1 + (v - low) * (rows - 1) / (high - low) };
    for row in (1..=rows).rev() {
        let line: String = series
            .samples
            .iter()
            .map(|&(_, v)| match level(v) {
                1 if row == 1 => '_',
                l if l == row => '#',
                l if l > row => '|',
                _ if row == 1 => '_',
                _ => ' ',
            })
            .collect();
        s.push_str(line.trim_end());
        s.push('\n');
    }
    let now = unix_ms() / 1000;
    let ages: Vec<String> = series.samples.iter().map(|&(t, _)| age_label(now - t)).collect();
    let width = ages.iter().map(|a| a.len()).max().unwrap_or(0);
    for i in 0..width {
        let line: String = ages.iter().map(|a| a.chars().nth(i).unwrap_or(' ')).collect();
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

fn age_label(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_redis_bucket_bounds() {
        // Redis printed p50=9.023 for one 9 µs call and p50=123.391 for one 123 µs call.
        let h = Histogram::new();
        h.record(9_000);
        assert_eq!(h.percentile(50.0), 9_023);
        let h = Histogram::new();
        h.record(123_000);
        assert_eq!(h.percentiles(&[50.0, 99.0, 99.9]), vec![123_391; 3]);
        // Two GETs of 2 µs and 41 µs: p50=2.007, p99=41.215.
        let h = Histogram::new();
        h.record(2_000);
        h.record(41_000);
        assert_eq!(h.percentiles(&[50.0, 99.0]), vec![2_007, 41_215]);
        assert_eq!(h.total(), 2);
        h.reset();
        assert_eq!(h.total(), 0);
    }

    #[test]
    fn cdf_uses_redis_bucket_labels() {
        // INFO (7 calls) in Redis: 16:3, 33:5, 132:6, 264:7.
        let h = Histogram::new();
        for us in [10, 12, 14, 20, 30, 100, 200] {
            h.record(us * 1000);
        }
        assert_eq!(h.cdf(), vec![(16, 3), (33, 5), (132, 6), (264, 7)]);
        let h = Histogram::new();
        h.record(1000);
        h.record(3000);
        assert_eq!(h.cdf(), vec![(1, 1), (4, 2)]);
        // Clamped at one second.
        let h = Histogram::new();
        h.record(5_000_000_000);
        assert_eq!(h.cdf().last().map(|x| x.1), Some(1));
    }

    #[test]
    fn index_round_trip() {
        for v in [1u64, 2, 255, 256, 257, 1023, 1024, 65_536, 999_999_999, 1_000_000_000] {
            let i = index_of(v);
            assert!(value_at(i) <= v && v <= highest_equivalent(value_at(i)), "{v}");
        }
        assert!(index_of(HIST_MAX_NS) < COUNTS_LEN);
    }

    #[test]
    fn monitor_keeps_one_sample_per_second_and_the_max() {
        let m = Monitor::default();
        m.add_sample("command", 20);
        m.add_sample("command", 50);
        m.add_sample("command", 30);
        let ev = m.events.lock();
        let s = &ev["command"];
        assert!(s.samples.len() <= 2);
        assert_eq!(s.max, 50);
    }
}
