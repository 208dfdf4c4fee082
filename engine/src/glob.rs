//! Glob-style pattern matching with Redis's `stringmatchlen` rules (KEYS, SCAN MATCH, PSUBSCRIBE ...):
//! `*` any run, `?` one byte, `[abc]`, `[^abc]`, `[a-z]` classes, and `\` to escape the next byte.

/// Whether `s` matches `pattern`. Runs in O(len(pattern) * len(s)): on a mismatch only the last `*` is
/// retried, which is enough for glob patterns and avoids exponential backtracking on hostile patterns.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < pattern.len() && pattern[pi] == b'*' {
            while pi < pattern.len() && pattern[pi] == b'*' {
                pi += 1;
            }
            if pi == pattern.len() {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi < pattern.len() {
            let (ok, len) = token_matches(&pattern[pi..], s[si], nocase);
            if ok {
                pi += len;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < pattern.len() && pattern[pi] == b'*' {
        pi += 1;
    }
    pi == pattern.len()
}

fn lower(c: u8, nocase: bool) -> u8 {
    if nocase {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// Matches one pattern token (not `*`) at the start of `p` against byte `c`: (matched, token length).
fn token_matches(p: &[u8], c: u8, nocase: bool) -> (bool, usize) {
    let eq = |x: u8| lower(x, nocase) == lower(c, nocase);
    match p[0] {
        b'?' => (true, 1),
        b'\\' if p.len() >= 2 => (eq(p[1]), 2),
        b'[' => {
            let mut i = 1;
            let not = p.get(1) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            loop {
                match p.get(i) {
                    // Unterminated class: Redis treats the end of the pattern as closing it.
                    None => break,
                    Some(b']') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < p.len() => {
                        matched |= eq(p[i + 1]);
                        i += 2;
                    }
                    Some(&lo) if p.get(i + 1) == Some(&b'-') && i + 2 < p.len() => {
                        let (mut a, mut b) = (lower(lo, nocase), lower(p[i + 2], nocase));
                        if a > b {
                            std::mem::swap(&mut a, &mut b);
                        }
                        let cc = lower(c, nocase);
                        matched |= cc >= a && cc <= b;
                        i += 3;
                    }
                    Some(&x) => {
                        matched |= eq(x);
                        i += 1;
                    }
                }
            }
            (matched != not, i)
        }
        x => (eq(x), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_rules() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(!m("a*b", "a"));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!m("*a*a*a*a*a*a*a*a*b", &"a".repeat(3000)));
        assert!(m("*a*b", "xxaxxb"));
        assert!(m("a*", "a"));
        assert!(!m("[abc", "d"));
    }
}
