//! "Did you mean `chain`?": the closest allowed word to a misspelt key, by edit distance
//! (optimal string alignment: insertions, deletions, substitutions and adjacent swaps).

/// The candidate closest to `word`, when it is close enough to be a likely typo: at most
/// one edit per three characters (at least one), and a single best candidate.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    let mut tie = false;
    for &c in candidates {
        let d = distance(word, c);
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tie = true,
            _ => {
                best = Some((d, c));
                tie = false;
            }
        }
    }
    let (d, c) = best?;
    (d <= limit && d > 0 && !tie).then_some(c)
}

/// Appends "; did you mean `x`?" to a serde "unknown field/variant" message when one of the
/// listed alternatives is a likely typo of the unknown word.
pub fn add_hint(message: &str) -> String {
    match hint(message) {
        Some(h) => format!("{message}; did you mean `{h}`?"),
        None => message.to_string(),
    }
}

fn hint(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let words: Vec<&str> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty())
        .collect();
    suggest(word, &words)
}

/// Optimal string alignment distance between two strings, by characters.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("chain", "chain"), 0);
        assert_eq!(distance("chian", "chain"), 1);
        assert_eq!(distance("adr", "addr"), 1);
        assert_eq!(distance("chekcs", "checks"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("tcp", "tls"), 2);
    }

    #[test]
    fn suggests_only_likely_typos() {
        let keys = ["chain", "names", "expiry", "issuer_cn", "issuer_dn"];
        assert_eq!(suggest("chian", &keys), Some("chain"));
        assert_eq!(suggest("expirey", &keys), Some("expiry"));
        assert_eq!(suggest("sealed", &keys), None);
        // Equally close to two keys: no guess.
        assert_eq!(suggest("issuer_xn", &keys), None);
        assert_eq!(suggest("tcp", &["tls", "files"]), None);
        assert_eq!(suggest("tsl", &["tls", "files"]), Some("tls"));
    }

    #[test]
    fn hints_serde_messages() {
        let m = "unknown field `adr`, expected one of `addr`, `server_name`, `ca_file`";
        assert_eq!(add_hint(m), format!("{m}; did you mean `addr`?"));
        let m = "unknown field `chekcs`, expected `checks` or `plan`";
        assert!(add_hint(m).ends_with("did you mean `checks`?"));
        let m = "unknown variant `wrn`, expected `fail` or `warn`";
        assert!(add_hint(m).ends_with("did you mean `warn`?"));
        let m = "unknown field `zzzzzz`, expected one of `addr`, `alpn`";
        assert_eq!(add_hint(m), m);
        assert_eq!(add_hint("missing field `addr`"), "missing field `addr`");
    }
}
