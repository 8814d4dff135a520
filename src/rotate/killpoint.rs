//! Test-only fault hook: `ROTCHECK_TEST_KILL_AT=POINT[:FILE]` makes the process SIGKILL itself
//! when it reaches the named write point (optionally only for a file of that name), so tests
//! can prove that a crash at any point leaves either the old or the new complete file.
//!
//! The hook exists in debug builds only (the test suite runs those); in release builds
//! [`reached`] does nothing and the variable is never read.
//!
//! Points: `temp-created`, `temp-partial`, `temp-written`, `backup-linked`, `renamed` (per
//! file, in `atomic.rs`) and `state-saved`, `step-applied`, `revocation-served` (in the plan
//! runner: a superseded certificate's successor was recorded served, its revocation not sent).

/// Every point the hook understands, in the order a write reaches them.
pub const POINTS: &[&str] = &[
    "temp-created",
    "temp-partial",
    "temp-written",
    "backup-linked",
    "renamed",
    "state-saved",
    "step-applied",
    "revocation-served",
];

/// The environment variable that arms the hook.
pub const ENV: &str = "ROTCHECK_TEST_KILL_AT";

/// True when the hook is armed (debug builds only).
pub fn armed() -> bool {
    cfg!(debug_assertions) && std::env::var_os(ENV).is_some()
}

/// Does nothing: release builds have no kill hook.
#[cfg(not(debug_assertions))]
pub fn reached(_point: &str, _file: Option<&std::path::Path>) {}

/// Kills the process when the hook names `point` (and `file`'s name, when the hook has one).
#[cfg(debug_assertions)]
pub fn reached(point: &str, file: Option<&std::path::Path>) {
    let Ok(spec) = std::env::var(ENV) else { return };
    if matches(&spec, point, file) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
        // SIGKILL cannot be caught; never continue past an armed point.
        std::process::abort();
    }
}

#[cfg(debug_assertions)]
fn matches(spec: &str, point: &str, file: Option<&std::path::Path>) -> bool {
    let (p, want) = match spec.split_once(':') {
        Some((p, f)) => (p, Some(f)),
        None => (spec, None),
    };
    if p != point {
        return false;
    }
    match want {
        None => true,
        Some(w) => file
            .and_then(|f| f.file_name())
            .is_some_and(|n| n.to_string_lossy() == w),
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn matches_point_and_optional_file() {
        assert!(matches("renamed", "renamed", None));
        assert!(matches("renamed", "renamed", Some(Path::new("/x/a.crt"))));
        assert!(matches(
            "renamed:a.crt",
            "renamed",
            Some(Path::new("/x/a.crt"))
        ));
        assert!(!matches(
            "renamed:a.crt",
            "renamed",
            Some(Path::new("/x/a.key"))
        ));
        assert!(!matches("renamed:a.crt", "renamed", None));
        assert!(!matches("temp-written", "renamed", None));
    }
}
