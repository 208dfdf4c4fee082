//! A seeded generator of one long mixed command stream for the differential test: all five types, absolute
//! far-future expiry times (so replies do not depend on the clock), multi-key commands whose keys sit on
//! different shards, transactions (with WATCH, DISCARD and EXECABORT), database switches and deliberate
//! errors. Commands whose replies Redis leaves in an unspecified order carry a [`Norm`] that sorts them;
//! commands with random results (RANDOMKEY, SPOP/SRANDMEMBER with a small count ...) are not generated.

/// How a reply is normalised before comparison.
#[derive(Clone, Debug)]
pub enum Norm {
    Exact,
    /// The array's elements in sorted order (set members, hash fields).
    Sort,
    /// The flat array of pairs, sorted by pair (HGETALL, ... WITHVALUES).
    SortPairs,
    /// Non-negative integers become one value (TTL/PTTL count down while the stream runs).
    Ttl,
    /// EXEC: each element by its queued command's rule.
    Exec(Vec<Norm>),
}

pub struct Cmd {
    pub args: Vec<Vec<u8>>,
    pub norm: Norm,
}

/// 2100-01-01 in milliseconds: expiry times from here on never pass during a test.
const FAR: u64 = 4_102_444_800_000;

const WORDS: &[&str] = &["a", "b", "c", "foo", "bar", "hello", "x y", "", "ümlaut", "10", "-5", "3.5", "0x1", " 7"];

/// Whether transactions may queue blocking commands (BLPOP, BZPOPMIN ...), which answer at once inside MULTI.
/// Off while Moon answers them with "not available in this version" (`protocol::blocking_commands` tracks
/// that), so the missing feature does not drown every other difference; turn on when they land.
const BLOCKING_IN_MULTI: bool = false;

pub struct Gen {
    rng: fastrand::Rng,
    out: Vec<Cmd>,
    /// Upper-case command names never to generate (to look past a known difference).
    skip: Vec<String>,
}

impl Gen {
    pub fn new(seed: u64, skip: &[String]) -> Gen {
        let skip = skip.iter().map(|s| s.to_ascii_uppercase()).collect();
        Gen { rng: fastrand::Rng::with_seed(seed), out: Vec::new(), skip }
    }

    /// At least `n` commands (a transaction or SELECT block may run a few over).
    pub fn stream(mut self, n: usize) -> Vec<Cmd> {
        while self.out.len() < n {
            match self.rng.u32(0..100) {
                0..=5 => self.transaction(),
                6 => self.select_block(),
                _ => {
                    let c = self.command();
                    self.out.push(c);
                }
            }
        }
        self.sweep();
        self.out
    }

    /// Touches every key the stream can create in databases 0 and 1, so keys that expired (SET with a PXAT
    /// in the past keeps the key until it is accessed or reclaimed) are gone on both servers before DBSIZE
    /// and the final DEBUG DIGEST, which would otherwise depend on when active expiry ran.
    fn sweep(&mut self) {
        let mut all = vec!["EXISTS".to_string()];
        for fam in ["str", "list", "hash", "set", "zset", "none", "lex"] {
            all.extend((0..12).map(|i| format!("{fam}:{i}")));
        }
        for db in ["1", "0"] {
            self.out.push(Self::push(vec!["SELECT".into(), db.into()]));
            self.out.push(Self::push(all.clone()));
            self.out.push(Self::push(vec!["DBSIZE".into()]));
        }
    }

    fn pct(&mut self, p: u32) -> bool {
        self.rng.u32(0..100) < p
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.usize(0..items.len())]
    }

    /// A key of the given family; sometimes any family's key (WRONGTYPE on purpose) or a missing one.
    fn key(&mut self, family: &str) -> String {
        let fam = match self.rng.u32(0..100) {
            0..=9 => self.pick(&["str", "list", "hash", "set", "zset"]),
            10..=12 => "none",
            _ => family,
        };
        format!("{fam}:{}", self.rng.u32(0..12))
    }

    fn keys(&mut self, family: &str, max: usize) -> Vec<String> {
        let n = self.rng.usize(1..=max);
        (0..n).map(|_| self.key(family)).collect()
    }

    fn value(&mut self) -> String {
        match self.rng.u32(0..100) {
            0..=34 => self.rng.i64(-100..1000).to_string(),
            35..=39 => self.pick(&["9223372036854775807", "-9223372036854775808", "9223372036854775806"]).into(),
            40..=69 => self.pick(WORDS).into(),
            70..=79 => format!("{}.{}", self.rng.i32(-50..50), self.rng.u32(0..100)),
            80..=89 => "v".repeat(self.rng.usize(1..20)),
            _ => {
                let c = self.rng.alphanumeric();
                c.to_string().repeat(self.rng.usize(60..300))
            }
        }
    }

    fn member(&mut self) -> String {
        if self.pct(50) {
            self.rng.u32(0..40).to_string()
        } else {
            format!("m{}", self.rng.u32(0..30))
        }
    }

    fn field(&mut self) -> String {
        format!("f{}", self.rng.u32(0..25))
    }

    fn score(&mut self) -> String {
        match self.rng.u32(0..100) {
            0..=49 => self.rng.i32(-10..10).to_string(),
            50..=79 => format!("{}.5", self.rng.i32(-10..10)),
            80..=89 => self.pick(&["0.1", "0.2", "1e3", "-0", "3.14159", "1.7976931348623157e308"]).into(),
            90..=95 => self.pick(&["inf", "-inf", "+inf"]).into(),
            _ => self.pick(&["nan", "abc", "1.5.5"]).into(),
        }
    }

    fn range_bound(&mut self) -> String {
        match self.rng.u32(0..10) {
            0 => "-inf".into(),
            1 => "+inf".into(),
            2..=4 => format!("({}", self.rng.i32(-10..10)),
            _ => self.rng.i32(-10..10).to_string(),
        }
    }

    /// A sorted set whose members all have score 0, so lexicographic ranges are well defined (Redis leaves
    /// them unspecified when scores differ); sometimes another type's key or a missing one.
    fn lex_key(&mut self) -> String {
        match self.rng.u32(0..100) {
            0..=7 => format!("{}:{}", self.pick(&["str", "list", "hash", "set"]), self.rng.u32(0..12)),
            8..=10 => format!("none:{}", self.rng.u32(0..12)),
            _ => format!("lex:{}", self.rng.u32(0..6)),
        }
    }

    fn lex_bound(&mut self) -> String {
        match self.rng.u32(0..10) {
            0 => "-".into(),
            1 => "+".into(),
            2..=5 => format!("[{}", self.member()),
            6..=8 => format!("({}", self.member()),
            _ => "bad".into(),
        }
    }

    fn index(&mut self) -> String {
        self.rng.i32(-8..8).to_string()
    }

    fn far(&mut self) -> u64 {
        FAR + self.rng.u64(0..1_000_000_000)
    }

    fn push(args: Vec<String>) -> Cmd {
        Cmd { args: args.into_iter().map(String::into_bytes).collect(), norm: Norm::Exact }
    }

    fn with(args: Vec<String>, norm: Norm) -> Cmd {
        Cmd { args: args.into_iter().map(String::into_bytes).collect(), norm }
    }

    /// One random command (never MULTI/EXEC/SELECT), none of the skipped ones.
    fn command(&mut self) -> Cmd {
        loop {
            let c = self.any_command();
            let name = String::from_utf8_lossy(&c.args[0]).to_ascii_uppercase();
            if !self.skip.contains(&name) {
                return c;
            }
        }
    }

    fn any_command(&mut self) -> Cmd {
        match self.rng.u32(0..100) {
            0..=19 => self.string_cmd(),
            20..=35 => self.list_cmd(),
            36..=49 => self.hash_cmd(),
            50..=64 => self.set_cmd(),
            65..=82 => self.zset_cmd(),
            83..=95 => self.key_cmd(),
            _ => self.error_cmd(),
        }
    }

    fn string_cmd(&mut self) -> Cmd {
        let k = self.key("str");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u32(0..22) {
            0..=3 => {
                let mut a = s(&["SET", &k]);
                a.push(self.value());
                if self.pct(20) {
                    a.push(self.pick(&["NX", "XX"]).into());
                }
                if self.pct(15) {
                    a.push("GET".into());
                }
                match self.rng.u32(0..10) {
                    0 => a.extend(["PXAT".into(), self.far().to_string()]),
                    1 => a.extend(["EXAT".into(), (self.far() / 1000).to_string()]),
                    2 => a.push("KEEPTTL".into()),
                    3 if self.pct(20) => a.extend(["PXAT".into(), self.rng.u32(1..1000).to_string()]),
                    _ => {}
                }
                Self::push(a)
            }
            4..=5 => Self::push(s(&["GET", &k])),
            6 => Self::push(vec!["GETSET".into(), k, self.value()]),
            7 => Self::push(s(&["GETDEL", &k])),
            8 => {
                let mut a = s(&["GETEX", &k]);
                match self.rng.u32(0..3) {
                    0 => a.extend(["PXAT".into(), self.far().to_string()]),
                    1 => a.push("PERSIST".into()),
                    _ => {}
                }
                Self::push(a)
            }
            9 => {
                let mut a = vec!["MGET".to_string()];
                a.extend(self.keys("str", 6));
                Self::push(a)
            }
            10 | 11 => {
                let mut a = vec![self.pick(&["MSET", "MSET", "MSETNX"]).to_string()];
                for _ in 0..self.rng.usize(1..6) {
                    a.push(self.key("str"));
                    a.push(self.value());
                }
                Self::push(a)
            }
            12 => Self::push(vec!["APPEND".into(), k, self.value()]),
            13 => Self::push(s(&["STRLEN", &k])),
            14 => Self::push(vec!["GETRANGE".into(), k, self.index(), self.index()]),
            15 => Self::push(vec!["SETRANGE".into(), k, self.rng.u32(0..20).to_string(), self.value()]),
            16 => Self::push(s(&[self.pick(&["INCR", "DECR"]), &k])),
            17 => Self::push(vec![self.pick(&["INCRBY", "DECRBY"]).into(), k, self.value()]),
            18 => Self::push(vec!["INCRBYFLOAT".into(), k, self.value()]),
            19 => Self::push(vec!["SETNX".into(), k, self.value()]),
            20 => {
                let mut a = vec!["LCS".into(), k, self.key("str")];
                match self.rng.u32(0..3) {
                    0 => a.push("LEN".into()),
                    1 => a.extend(["IDX".into(), "MINMATCHLEN".into(), "1".into(), "WITHMATCHLEN".into()]),
                    _ => {}
                }
                Self::push(a)
            }
            _ => Self::push(vec![
                self.pick(&["SETEX", "PSETEX"]).into(),
                k,
                self.pick(&["0", "-5", "x"]).into(),
                "v".into(),
            ]),
        }
    }

    fn list_cmd(&mut self) -> Cmd {
        let k = self.key("list");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let end = |g: &mut Gen| g.pick(&["LEFT", "RIGHT"]).to_string();
        match self.rng.u32(0..20) {
            0..=4 => {
                let mut a = vec![self.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]).into(), k];
                for _ in 0..self.rng.usize(1..6) {
                    a.push(self.member());
                }
                Self::push(a)
            }
            5 | 6 => {
                let mut a = s(&[self.pick(&["LPOP", "RPOP"]), &k]);
                if self.pct(40) {
                    a.push(self.rng.i32(-1..5).to_string());
                }
                Self::push(a)
            }
            7 => Self::push(s(&["LLEN", &k])),
            8 | 9 => Self::push(vec!["LRANGE".into(), k, self.index(), self.index()]),
            10 => Self::push(vec!["LINDEX".into(), k, self.index()]),
            11 => Self::push(vec!["LSET".into(), k, self.index(), self.member()]),
            12 => Self::push(vec!["LREM".into(), k, self.rng.i32(-2..3).to_string(), self.member()]),
            13 => Self::push(vec!["LTRIM".into(), k, self.index(), self.index()]),
            14 => Self::push(vec![
                "LINSERT".into(),
                k,
                self.pick(&["BEFORE", "AFTER"]).into(),
                self.member(),
                self.member(),
            ]),
            15 => {
                let mut a = vec!["LPOS".into(), k, self.member()];
                if self.pct(40) {
                    a.extend(["RANK".into(), self.rng.i32(-3..3).to_string()]);
                }
                if self.pct(40) {
                    a.extend(["COUNT".into(), self.rng.u32(0..4).to_string()]);
                }
                if self.pct(20) {
                    a.extend(["MAXLEN".into(), self.rng.u32(0..5).to_string()]);
                }
                Self::push(a)
            }
            16 | 17 => {
                let dst = self.key("list");
                Self::push(vec!["LMOVE".into(), k, dst, end(self), end(self)])
            }
            18 => Self::push(vec!["RPOPLPUSH".into(), k, self.key("list")]),
            _ => {
                let keys = self.keys("list", 3);
                let mut a = vec!["LMPOP".into(), keys.len().to_string()];
                a.extend(keys);
                a.push(end(self));
                if self.pct(50) {
                    a.extend(["COUNT".into(), self.rng.u32(1..4).to_string()]);
                }
                Self::push(a)
            }
        }
    }

    fn hash_cmd(&mut self) -> Cmd {
        let k = self.key("hash");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u32(0..19) {
            0..=3 => {
                let mut a = vec![self.pick(&["HSET", "HSET", "HMSET"]).into(), k];
                let big = self.pct(3);
                for _ in 0..if big { 150 } else { self.rng.usize(1..5) } {
                    a.push(self.field());
                    a.push(self.value());
                }
                if big {
                    for i in 0..140 {
                        a.push(format!("bulk{i}"));
                        a.push(i.to_string());
                    }
                }
                Self::push(a)
            }
            4 => Self::push(vec!["HSETNX".into(), k, self.field(), self.value()]),
            5 | 6 => Self::push(vec!["HGET".into(), k, self.field()]),
            7 => {
                let mut a = s(&["HMGET", &k]);
                for _ in 0..self.rng.usize(1..5) {
                    a.push(self.field());
                }
                Self::push(a)
            }
            8 => {
                let mut a = s(&["HDEL", &k]);
                for _ in 0..self.rng.usize(1..4) {
                    a.push(self.field());
                }
                Self::push(a)
            }
            9 => Self::push(s(&["HLEN", &k])),
            10 => Self::push(vec!["HSTRLEN".into(), k, self.field()]),
            11 => Self::push(vec!["HEXISTS".into(), k, self.field()]),
            12 => Self::with(s(&["HGETALL", &k]), Norm::SortPairs),
            13 => Self::with(s(&[self.pick(&["HKEYS", "HVALS"]), &k]), Norm::Sort),
            14 | 15 => Self::push(vec!["HINCRBY".into(), k, self.field(), self.value()]),
            16 => Self::push(vec!["HINCRBYFLOAT".into(), k, self.field(), self.value()]),
            17 => Self::with(s(&["HRANDFIELD", &k, "10000"]), Norm::Sort),
            _ => Self::with(s(&["HRANDFIELD", &k, "10000", "WITHVALUES"]), Norm::SortPairs),
        }
    }

    fn set_cmd(&mut self) -> Cmd {
        let k = self.key("set");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u32(0..20) {
            0..=4 => {
                let mut a = s(&["SADD", &k]);
                if self.pct(3) {
                    // Enough integers to leave the intset encoding.
                    a.extend((0..600).map(|i| (i * 7).to_string()));
                } else {
                    for _ in 0..self.rng.usize(1..6) {
                        a.push(self.member());
                    }
                }
                Self::push(a)
            }
            5 => {
                let mut a = s(&["SREM", &k]);
                for _ in 0..self.rng.usize(1..4) {
                    a.push(self.member());
                }
                Self::push(a)
            }
            6 => Self::with(s(&["SMEMBERS", &k]), Norm::Sort),
            7 => Self::push(vec!["SISMEMBER".into(), k, self.member()]),
            8 => Self::push(vec!["SMISMEMBER".into(), k, self.member(), self.member()]),
            9 => Self::push(s(&["SCARD", &k])),
            10 if self.pct(20) => Self::with(s(&["SPOP", &k, "100000"]), Norm::Sort),
            10 | 11 => Self::with(s(&["SRANDMEMBER", &k, "100000"]), Norm::Sort),
            12 | 13 => Self::push(vec!["SMOVE".into(), k, self.key("set"), self.member()]),
            14 | 15 => {
                let mut a = vec![self.pick(&["SINTER", "SUNION", "SDIFF"]).to_string()];
                a.extend(self.keys("set", 4));
                Self::with(a, Norm::Sort)
            }
            16 => {
                let keys = self.keys("set", 4);
                let mut a = vec!["SINTERCARD".into(), keys.len().to_string()];
                a.extend(keys);
                if self.pct(50) {
                    a.extend(["LIMIT".into(), self.rng.u32(0..4).to_string()]);
                }
                Self::push(a)
            }
            _ => {
                let mut a = vec![self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]).into(), self.key("set")];
                a.extend(self.keys("set", 4));
                Self::push(a)
            }
        }
    }

    fn zset_cmd(&mut self) -> Cmd {
        let k = self.key("zset");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u32(0..33) {
            32 => {
                let mut a = vec!["ZADD".to_string(), self.lex_key()];
                for _ in 0..self.rng.usize(1..6) {
                    a.push("0".into());
                    a.push(self.member());
                }
                Self::push(a)
            }
            0..=5 => {
                let mut a = s(&["ZADD", &k]);
                if self.pct(20) {
                    a.push(self.pick(&["NX", "XX"]).into());
                }
                if self.pct(15) {
                    a.push(self.pick(&["GT", "LT"]).into());
                }
                if self.pct(20) {
                    a.push("CH".into());
                }
                if self.pct(10) {
                    a.push("INCR".into());
                    a.push(self.score());
                    a.push(self.member());
                } else if self.pct(3) {
                    for i in 0..200 {
                        a.push((i % 17).to_string());
                        a.push(format!("many{i}"));
                    }
                } else {
                    for _ in 0..self.rng.usize(1..5) {
                        a.push(self.score());
                        a.push(self.member());
                    }
                }
                Self::push(a)
            }
            6 | 7 => Self::push(vec!["ZINCRBY".into(), k, self.score(), self.member()]),
            8 => Self::push(vec!["ZREM".into(), k, self.member(), self.member()]),
            9 => Self::push(vec!["ZSCORE".into(), k, self.member()]),
            10 => Self::push(vec!["ZMSCORE".into(), k, self.member(), self.member()]),
            11 => Self::push(s(&["ZCARD", &k])),
            12 => Self::push(vec!["ZCOUNT".into(), k, self.range_bound(), self.range_bound()]),
            13 => Self::push(vec!["ZLEXCOUNT".into(), self.lex_key(), self.lex_bound(), self.lex_bound()]),
            14 | 15 => {
                let mut a = s(&["ZRANGE", &k]);
                match self.rng.u32(0..3) {
                    0 => {
                        a.extend([self.range_bound(), self.range_bound(), "BYSCORE".into()]);
                    }
                    1 => {
                        a[1] = self.lex_key();
                        a.extend([self.lex_bound(), self.lex_bound(), "BYLEX".into()]);
                    }
                    _ => a.extend([self.index(), self.index()]),
                }
                if self.pct(30) {
                    a.push("REV".into());
                }
                if self.pct(25) {
                    a.extend(["LIMIT".into(), self.rng.i32(-1..3).to_string(), self.rng.i32(-1..4).to_string()]);
                }
                if self.pct(50) {
                    a.push("WITHSCORES".into());
                }
                Self::push(a)
            }
            16 => {
                let cmd = self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]);
                let mut a = vec![cmd.into(), k, self.range_bound(), self.range_bound()];
                if self.pct(50) {
                    a.push("WITHSCORES".into());
                }
                if self.pct(30) {
                    a.extend(["LIMIT".into(), self.rng.u32(0..3).to_string(), self.rng.i32(-1..3).to_string()]);
                }
                Self::push(a)
            }
            17 => {
                let cmd = self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]);
                Self::push(vec![cmd.into(), self.lex_key(), self.lex_bound(), self.lex_bound()])
            }
            18 => {
                let mut a = vec!["ZREVRANGE".into(), k, self.index(), self.index()];
                if self.pct(50) {
                    a.push("WITHSCORES".into());
                }
                Self::push(a)
            }
            19 => {
                let mut a = vec![self.pick(&["ZRANK", "ZREVRANK"]).into(), k, self.member()];
                if self.pct(10) {
                    a.push("WITHSCORE".into()); // a 7.2 option: 7.0 answers a syntax error
                }
                Self::push(a)
            }
            20 => {
                let mut a = s(&[self.pick(&["ZPOPMIN", "ZPOPMAX"]), &k]);
                if self.pct(50) {
                    a.push(self.rng.i32(-1..4).to_string());
                }
                Self::push(a)
            }
            21 => {
                let keys = self.keys("zset", 3);
                let mut a = vec!["ZMPOP".into(), keys.len().to_string()];
                a.extend(keys);
                a.push(self.pick(&["MIN", "MAX"]).into());
                if self.pct(50) {
                    a.extend(["COUNT".into(), self.rng.u32(1..4).to_string()]);
                }
                Self::push(a)
            }
            22 => Self::push(vec!["ZRANGESTORE".into(), self.key("zset"), k, self.index(), self.index()]),
            23..=25 => {
                let cmd = self.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
                let dst = self.key("zset");
                let mut srcs = self.keys("zset", 3);
                if self.pct(20) {
                    srcs.push(self.key("set")); // sets count as zsets with score 1
                }
                let mut a = vec![cmd.into(), dst, srcs.len().to_string()];
                let n = srcs.len();
                a.extend(srcs);
                if cmd != "ZDIFFSTORE" {
                    if self.pct(40) {
                        a.push("WEIGHTS".into());
                        for _ in 0..n {
                            a.push(self.pick(&["1", "2", "-1", "0.5", "0"]).into());
                        }
                    }
                    if self.pct(40) {
                        a.extend(["AGGREGATE".into(), self.pick(&["SUM", "MIN", "MAX"]).into()]);
                    }
                }
                Self::push(a)
            }
            26 | 27 => {
                let cmd = self.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
                let srcs = self.keys("zset", 3);
                let mut a = vec![cmd.into(), srcs.len().to_string()];
                a.extend(srcs);
                if self.pct(50) {
                    a.push("WITHSCORES".into());
                }
                Self::push(a)
            }
            28 => {
                let srcs = self.keys("zset", 3);
                let mut a = vec!["ZINTERCARD".into(), srcs.len().to_string()];
                a.extend(srcs);
                Self::push(a)
            }
            29 => Self::push(vec!["ZREMRANGEBYRANK".into(), k, self.index(), self.index()]),
            30 => {
                if self.pct(50) {
                    Self::push(vec!["ZREMRANGEBYSCORE".into(), k, self.range_bound(), self.range_bound()])
                } else {
                    Self::push(vec!["ZREMRANGEBYLEX".into(), self.lex_key(), self.lex_bound(), self.lex_bound()])
                }
            }
            _ => {
                if self.pct(50) {
                    Self::with(s(&["ZRANDMEMBER", &k, "100000"]), Norm::Sort)
                } else {
                    Self::with(s(&["ZRANDMEMBER", &k, "100000", "WITHSCORES"]), Norm::SortPairs)
                }
            }
        }
    }

    fn any_key(&mut self) -> String {
        let fam = self.pick(&["str", "list", "hash", "set", "zset"]);
        self.key(fam)
    }

    fn key_cmd(&mut self) -> Cmd {
        let k = self.any_key();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u32(0..24) {
            0 | 1 => {
                let mut a = vec![self.pick(&["DEL", "UNLINK"]).to_string()];
                for _ in 0..self.rng.usize(1..4) {
                    a.push(self.any_key());
                }
                Self::push(a)
            }
            2 | 3 => {
                let mut a = vec![self.pick(&["EXISTS", "TOUCH"]).to_string()];
                for _ in 0..self.rng.usize(1..5) {
                    a.push(self.any_key());
                }
                Self::push(a)
            }
            4 => Self::push(s(&["TYPE", &k])),
            5 | 6 => {
                let dst = self.any_key();
                Self::push(vec![self.pick(&["RENAME", "RENAMENX"]).into(), k, dst])
            }
            7 => {
                let mut a = vec!["COPY".into(), k, self.any_key()];
                if self.pct(30) {
                    a.extend(["DB".into(), "1".into()]);
                }
                if self.pct(40) {
                    a.push("REPLACE".into());
                }
                Self::push(a)
            }
            8 => Self::push(s(&["MOVE", &k, "1"])),
            9 | 10 => {
                let (cmd, t) = if self.pct(50) { ("PEXPIREAT", self.far()) } else { ("EXPIREAT", self.far() / 1000) };
                let mut a = vec![cmd.into(), k, t.to_string()];
                if self.pct(30) {
                    a.push(self.pick(&["NX", "XX", "GT", "LT"]).into());
                }
                Self::push(a)
            }
            11 => Self::push(vec!["PEXPIREAT".into(), k, self.rng.u32(1..1_000_000).to_string()]),
            12 => Self::push(s(&["PERSIST", &k])),
            13 | 14 => Self::push(s(&[self.pick(&["EXPIRETIME", "PEXPIRETIME"]), &k])),
            15 => Self::with(s(&[self.pick(&["TTL", "PTTL"]), &k]), Norm::Ttl),
            // Not DBSIZE: Redis counts keys that expired but were not yet reclaimed, so it depends on timing.
            16 => Self::push(s(&["TYPE", &k])),
            17 => Self::with(s(&["KEYS", self.pick(&["str:1*", "*:[0-3]", "set:?", "h*", "*"])]), Norm::Sort),
            18 => Self::push(vec![self.pick(&["EXPIRE", "PEXPIRE"]).into(), k, self.pick(&["-1", "0", "x"]).into()]),
            19 => Self::push(vec!["EXPIRE".into(), k, "100".into(), self.pick(&["NX XX", "GT LT", "BAD"]).into()]),
            20 => Self::push(s(&["OBJECT", "FREQ", &k])),
            21 => Self::push(s(&["ECHO", &k])),
            22 => Self::push(s(&["PING"])),
            _ => Self::push(s(&["EXISTS", &k, &k])),
        }
    }

    fn error_cmd(&mut self) -> Cmd {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u32(0..12) {
            0 => Self::push(s(&["GET"])),
            1 => Self::push(s(&["SET", "str:1"])),
            2 => Self::push(s(&["NOSUCHCMD", "a", "b"])),
            3 => Self::push(s(&["SET", "str:1", "v", "NX", "XX"])),
            4 => Self::push(s(&["SET", "str:1", "v", "PX", "0"])),
            5 => Self::push(s(&["ZADD", "zset:1", "NX", "XX", "1", "m"])),
            6 => Self::push(s(&["ZADD", "zset:1", "GT", "LT", "NX", "1", "m"])),
            7 => Self::push(s(&["LPOS", "list:1", "x", "RANK", "0"])),
            8 => Self::push(s(&["HSET", "hash:1", "f"])),
            9 => Self::push(s(&["ZUNIONSTORE", "zset:1", "0", "zset:2"])),
            10 => Self::push(s(&["SINTERCARD", "0", "set:1"])),
            _ => Self::push(s(&["LMPOP", "2", "list:1", "MIDDLE"])),
        }
    }

    /// MULTI ... EXEC (sometimes DISCARD, sometimes aborted by a queuing error, sometimes after a WATCH whose
    /// key this connection then writes, which aborts it too).
    fn transaction(&mut self) {
        if self.pct(20) {
            let k = self.any_key();
            self.out.push(Self::push(vec!["WATCH".into(), k.clone()]));
            if self.pct(50) {
                self.out.push(Self::push(vec!["DEL".into(), k]));
            }
        }
        self.out.push(Self::push(vec!["MULTI".into()]));
        let mut norms = Vec::new();
        for _ in 0..self.rng.usize(1..7) {
            let c = if BLOCKING_IN_MULTI && self.pct(12) { self.blocking_cmd() } else { self.command() };
            norms.push(c.norm.clone());
            self.out.push(c);
        }
        if self.pct(5) {
            self.out.push(Self::push(vec!["MULTI".into()]));
        }
        if self.pct(3) {
            self.out.push(Self::push(vec!["WATCH".into(), "x".into()]));
        }
        let end = if self.pct(10) { "DISCARD" } else { "EXEC" };
        self.out.push(Cmd { args: vec![end.as_bytes().to_vec()], norm: Norm::Exec(norms) });
    }

    /// Blocking commands never block inside MULTI: they answer at once (nil when there is nothing).
    fn blocking_cmd(&mut self) -> Cmd {
        match self.rng.u32(0..6) {
            0 => {
                Self::push(vec![self.pick(&["BLPOP", "BRPOP"]).into(), self.key("list"), self.key("list"), "0".into()])
            }
            1 => Self::push(vec!["BRPOPLPUSH".into(), self.key("list"), self.key("list"), "0".into()]),
            2 => Self::push(vec![
                "BLMOVE".into(),
                self.key("list"),
                self.key("list"),
                "LEFT".into(),
                "RIGHT".into(),
                "0".into(),
            ]),
            3 => Self::push(vec!["BLMPOP".into(), "0".into(), "1".into(), self.key("list"), "RIGHT".into()]),
            4 => Self::push(vec![self.pick(&["BZPOPMIN", "BZPOPMAX"]).into(), self.key("zset"), "0".into()]),
            _ => Self::push(vec!["BZMPOP".into(), "0".into(), "1".into(), self.key("zset"), "MAX".into()]),
        }
    }

    /// SELECT 1, a few commands there (including FLUSHDB and SWAPDB now and then), SELECT 0.
    fn select_block(&mut self) {
        self.out.push(Self::push(vec!["SELECT".into(), "1".into()]));
        for _ in 0..self.rng.usize(1..5) {
            let c = match self.rng.u32(0..30) {
                0 => Self::push(vec!["FLUSHDB".into()]),
                1 => Self::push(vec!["SWAPDB".into(), "0".into(), "1".into()]),
                2 => Self::push(vec!["MOVE".into(), self.any_key(), "0".into()]),
                _ => self.command(),
            };
            self.out.push(c);
        }
        self.out.push(Self::push(vec!["SELECT".into(), "0".into()]));
    }
}
