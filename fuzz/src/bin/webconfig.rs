//! cargo-afl binary for the `webconfig` target (see `rotcheck_fuzz::targets::webconfig`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::webconfig::run(data));
}
