//! One writer connection's stream of writes, the thread that sends it, and the check that what a restarted
//! server holds is a prefix of it.
//!
//! Step `i` (from 1) of stream `t` is, by `i % 4`: `INCR` of the counter, `RPUSH` of `i` to the list, `SET`
//! of the numbered key `s<t>:str:<i>` to `i`, or an `MSET` of two keys to `i`. The counter, the list and the
//! two MSET keys sit on four different shards (with 4 shards), and the numbered keys spread over all, so a
//! stream crosses shards all the time. Every reply is checked against the model as it arrives (an INCR
//! returns the number of INCR steps so far, an RPUSH the list's length), so a lost or repeated write shows
//! at once, not only after a restart.
//!
//! After a restart, [`survivors`] reads the server back and finds the `m` such that the data is exactly steps
//! `1..=m`; anything else (a gap, a later step without an earlier one, a value no step wrote) is an error.

use moon_tests::{keys_on_distinct_shards, RawConn, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The keys of stream `t`.
pub struct Keys {
    pub t: usize,
    counter: String,
    list: String,
    pair: [String; 2],
}

impl Keys {
    pub fn new(t: usize) -> Keys {
        let k = keys_on_distinct_shards(&format!("s{t}"), 4);
        Keys { t, counter: k[0].clone(), list: k[1].clone(), pair: [k[2].clone(), k[3].clone()] }
    }

    fn numbered(&self, i: u64) -> String {
        format!("s{}:str:{i}", self.t)
    }

    /// Step `i`'s command.
    pub fn command(&self, i: u64) -> Vec<String> {
        let v = i.to_string();
        match i % 4 {
            0 => vec!["INCR".into(), self.counter.clone()],
            1 => vec!["RPUSH".into(), self.list.clone(), v],
            2 => vec!["SET".into(), self.numbered(i), v],
            _ => vec!["MSET".into(), self.pair[0].clone(), v.clone(), self.pair[1].clone(), v],
        }
    }

    /// The reply step `i` gets when steps `1..i` are exactly what the server holds.
    pub fn reply(i: u64) -> Value {
        match i % 4 {
            0 => Value::Int((i / 4) as i64),
            1 => Value::Int(i.div_ceil(4) as i64),
            _ => Value::simple("OK"),
        }
    }
}

/// Steps `1..=m` hold: how many keys they leave.
pub fn key_count(m: u64) -> u64 {
    let numbered = (m + 2) / 4;
    u64::from(m >= 4) + u64::from(m >= 1) + numbered + 2 * u64::from(m >= 3)
}

/// What a writer thread shares with the test while it runs.
#[derive(Default)]
pub struct Progress {
    /// The last step whose reply arrived (every earlier one's did too).
    pub acked: AtomicU64,
    /// The last step written to the socket.
    pub sent: AtomicU64,
    /// When replies arrived: (the last step of a batch, the time its reply came).
    pub times: Mutex<Vec<(u64, Instant)>>,
}

impl Progress {
    /// When the reply of the first acknowledged step after `m` arrived (how old the oldest lost reply is).
    pub fn acked_after(&self, m: u64) -> Option<Instant> {
        let times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        times.iter().find(|&&(step, _)| step > m).map(|&(_, t)| t)
    }
}

/// How a writer thread ended.
pub struct Ended {
    /// A reply that differed from the model (the test fails with it).
    pub wrong: Option<String>,
}

/// Sends steps `from..` in batches of `depth` (pipelined) until the connection dies or `stop` is set,
/// recording progress after every reply.
pub fn write(
    port: u16,
    keys: Arc<Keys>,
    from: u64,
    depth: usize,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> Ended {
    let Ok(mut c) = RawConn::try_connect(port) else { return Ended { wrong: None } };
    let mut next = from;
    while !stop.load(Ordering::Relaxed) {
        let mut bytes = Vec::new();
        for i in next..next + depth as u64 {
            moon_tests::resp::encode_into(&mut bytes, &keys.command(i));
        }
        progress.sent.store(next + depth as u64 - 1, Ordering::SeqCst);
        if c.try_send(&bytes).is_err() {
            break;
        }
        for i in next..next + depth as u64 {
            let Ok(reply) = c.try_read() else { return Ended { wrong: None } };
            let want = Keys::reply(i);
            if reply != want {
                let wrong =
                    format!("stream {} step {i} {:?}: reply {reply:?}, expected {want:?}", keys.t, keys.command(i));
                return Ended { wrong: Some(wrong) };
            }
            progress.acked.store(i, Ordering::SeqCst);
        }
        progress.times.lock().unwrap_or_else(|e| e.into_inner()).push((next + depth as u64 - 1, Instant::now()));
        next += depth as u64;
    }
    Ended { wrong: None }
}

fn as_step(v: &Value, what: &str) -> Result<Option<u64>, String> {
    match v {
        Value::NilBulk => Ok(None),
        Value::Bulk(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{what} holds {v:?}, not a step number")),
        _ => Err(format!("{what}: unexpected reply {v:?}")),
    }
}

/// Reads stream `keys` back from a server after steps up to `sent` were sent and finds the `m` such that the
/// server holds exactly the effects of steps `1..=m`. An error describes the first thing that is not a prefix.
pub fn survivors(c: &mut RawConn, keys: &Keys, sent: u64) -> Result<u64, String> {
    let t = keys.t;
    let counter = as_step(&c.cmd(&["GET", &keys.counter]), "the counter")?.unwrap_or(0);
    let list: Vec<u64> = match c.cmd(&["LRANGE", &keys.list, "0", "-1"]) {
        Value::Array(items) => {
            items.iter().map(|v| as_step(v, "a list element").map(|s| s.unwrap_or(0))).collect::<Result<_, _>>()?
        }
        other => return Err(format!("LRANGE: {other:?}")),
    };
    let pair = c.cmd(&["MGET", &keys.pair[0], &keys.pair[1]]);
    let pair = match pair.array() {
        [a, b] => (as_step(a, "the MSET pair")?, as_step(b, "the MSET pair")?),
        _ => return Err(format!("MGET: {pair:?}")),
    };
    let mut numbered = Vec::new();
    let candidates: Vec<u64> = (1..=sent).filter(|i| i % 4 == 2).collect();
    for chunk in candidates.chunks(500) {
        let mut cmd = vec!["MGET".to_string()];
        cmd.extend(chunk.iter().map(|&i| keys.numbered(i)));
        let reply = c.cmd(&cmd);
        for (&i, v) in chunk.iter().zip(reply.array()) {
            if let Some(s) = as_step(v, &keys.numbered(i))? {
                if s != i {
                    return Err(format!("stream {t}: {} holds {s}", keys.numbered(i)));
                }
                numbered.push(i);
            }
        }
    }
    let m =
        [4 * counter, list.last().copied().unwrap_or(0), numbered.last().copied().unwrap_or(0), pair.0.unwrap_or(0)]
            .into_iter()
            .max()
            .unwrap_or(0);
    let describe = || {
        format!(
            "stream {t}: counter {counter}, list of {} ending {:?}, {} numbered keys (last {:?}), pair {pair:?}; \
             latest step found {m}, sent {sent}",
            list.len(),
            list.last(),
            numbered.len(),
            numbered.last()
        )
    };
    if m > sent {
        return Err(format!("a step that was never sent is there: {}", describe()));
    }
    if counter != m / 4 {
        return Err(format!("the counter is not the prefix's: {}", describe()));
    }
    let want_list: Vec<u64> = (1..=m).filter(|i| i % 4 == 1).collect();
    if list != want_list {
        return Err(format!("the list is not the prefix's: {}", describe()));
    }
    let want_numbered: Vec<u64> = (1..=m).filter(|i| i % 4 == 2).collect();
    if numbered != want_numbered {
        let missing: Vec<u64> = want_numbered.iter().copied().filter(|i| !numbered.contains(i)).take(5).collect();
        return Err(format!("numbered keys are not the prefix's (missing {missing:?}...): {}", describe()));
    }
    let want_pair = (1..=m).rev().find(|i| i % 4 == 3);
    if pair != (want_pair, want_pair) {
        return Err(format!("the MSET pair is not the prefix's ({want_pair:?} expected): {}", describe()));
    }
    Ok(m)
}
