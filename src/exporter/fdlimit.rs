//! The open-file limit: serve raises its soft limit to the hard limit at start (every
//! connection, TLS check and file check needs a descriptor) and caps connections at half of
//! what it got, so a connection flood cannot take the descriptors the checks need.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The soft limit before and after raising it, and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit.
pub fn raise() -> Result<Raised, nix::Error> {
    let (before, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if before < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (now, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(Raised { before, now, hard })
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.now > self.before {
            write!(
                f,
                "open-file limit raised from {} to {}",
                self.before, self.now
            )
        } else {
            write!(
                f,
                "open-file limit {} (the hard limit is {})",
                self.now, self.hard
            )
        }
    }
}

/// The connection cap for `wanted` under a soft limit of `nofile`: at most half of it, so
/// the other half stays for checks, the listener and the runtime.
pub fn connection_cap(wanted: usize, nofile: u64) -> usize {
    let half = usize::try_from(nofile / 2).unwrap_or(usize::MAX);
    wanted.min(half).max(1)
}

/// `open-file limit 1024` as it is now, for error messages.
pub fn describe() -> String {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => format!("open-file limit {soft}"),
        Err(e) => format!("open-file limit unknown: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_descriptors_to_the_checks() {
        assert_eq!(connection_cap(512, 1_048_576), 512);
        assert_eq!(connection_cap(512, 256), 128);
        assert_eq!(connection_cap(512, 0), 1);
    }

    #[test]
    fn says_whether_it_raised() {
        let r = Raised {
            before: 1024,
            now: 4096,
            hard: 4096,
        };
        assert_eq!(r.to_string(), "open-file limit raised from 1024 to 4096");
        let r = Raised {
            before: 4096,
            now: 4096,
            hard: 4096,
        };
        assert_eq!(
            r.to_string(),
            "open-file limit 4096 (the hard limit is 4096)"
        );
    }
}
