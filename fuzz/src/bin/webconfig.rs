//! cargo-afl binary for the `webconfig` target (see `rotcheck_fuzz::targets::webconfig`).

fn main() {
    // Write the scratch PEM files once, before the fork server starts.
    let _ = rotcheck_fuzz::scratch::web_config_path();
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::webconfig::run(data));
}
