//! Redis-style log lines: `pid:role dd Mon yyyy hh:mm:ss.mmm <level-char> message`, to stdout or `logfile`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Log levels, most verbose first (Redis's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Verbose = 1,
    Notice = 2,
    Warning = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Notice as u8);
static SINK: OnceLock<Mutex<Option<std::fs::File>>> = OnceLock::new();

/// Sets the minimum level and the destination (None = stdout).
pub fn init(level: Level, logfile: Option<&Path>) -> std::io::Result<()> {
    set_level(level);
    let file = match logfile {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let _ = SINK.set(Mutex::new(file));
    Ok(())
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes one line if `level` is enabled.
pub fn log(level: Level, msg: &str) {
    if (level as u8) < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mark = match level {
        Level::Debug => '.',
        Level::Verbose => '-',
        Level::Notice => '*',
        Level::Warning => '#',
    };
    let line = format!(
        "{}:M {:02} {} {} {:02}:{:02}:{:02}.{:03} {} {}\n",
        std::process::id(),
        d,
        MONTHS[(m - 1) as usize],
        y,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        now.subsec_millis(),
        mark,
        msg
    );
    match SINK.get() {
        Some(sink) => {
            let mut guard = sink.lock();
            match guard.as_mut() {
                Some(f) => {
                    let _ = f.write_all(line.as_bytes());
                }
                None => {
                    let _ = std::io::stdout().write_all(line.as_bytes());
                }
            }
        }
        None => {
            let _ = std::io::stdout().write_all(line.as_bytes());
        }
    }
}

#[macro_export]
macro_rules! notice { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Notice, &format!($($t)*)) } }
#[macro_export]
macro_rules! warning { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, &format!($($t)*)) } }
#[macro_export]
macro_rules! verbose { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Verbose, &format!($($t)*)) } }

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_781), (2026, 11, 24));
    }
}
