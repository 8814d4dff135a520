//! `gate --wait` progress: one line per attempt for stderr, so a rotation script's log shows
//! what it waited for: `wait: attempt 2 after 4.1s of 1m 30s: 1 check still failing:
//! vault-listener (refused)`.

use crate::engine::Attempt;

/// Most failing checks named on one line; the rest are counted.
pub const MAX_NAMED: usize = 5;

/// The line for one attempt (without the `rotcheck: ` prefix or newline), redacted.
pub fn line(a: &Attempt) -> String {
    let took = format!("{:.1}s", a.elapsed.as_secs_f64());
    let of = crate::human::duration(a.wait);
    let head = format!("wait: attempt {} after {took} of {of}", a.number);
    let line = match a.failing.len() {
        0 => format!("{head}: every check passes"),
        n => format!("{head}: {n} {} still failing: {}", checks(n), named(a)),
    };
    crate::redact::redact(&clean(&line))
}

fn checks(n: usize) -> &'static str {
    if n == 1 {
        "check"
    } else {
        "checks"
    }
}

/// `a (exit), b (refused) and 3 more`.
fn named(a: &Attempt) -> String {
    let shown: Vec<String> = a
        .failing
        .iter()
        .take(MAX_NAMED)
        .map(|(name, reason)| format!("{name} ({reason})"))
        .collect();
    let mut s = shown.join(", ");
    if a.failing.len() > MAX_NAMED {
        s.push_str(&format!(" and {} more", a.failing.len() - MAX_NAMED));
    }
    s
}

/// One line: control characters in a check name become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn attempt(failing: usize) -> Attempt {
        Attempt {
            number: 3,
            elapsed: Duration::from_millis(4100),
            wait: Duration::from_secs(90),
            failing: (0..failing)
                .map(|i| (format!("c{i}"), "refused".to_string()))
                .collect(),
        }
    }

    #[test]
    fn names_at_most_five_failing_checks() {
        let l = line(&attempt(1));
        assert!(l.starts_with("wait: attempt 3 after 4.1s of 1m"), "{l}");
        assert!(l.ends_with(": 1 check still failing: c0 (refused)"), "{l}");
        let l = line(&attempt(7));
        assert!(l.contains("7 checks still failing: c0 (refused), "), "{l}");
        assert!(l.ends_with("c4 (refused) and 2 more"), "{l}");
        assert!(line(&attempt(0)).ends_with(": every check passes"));
    }
}
