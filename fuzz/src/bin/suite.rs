//! cargo-afl binary for the `suite` target (see `rotcheck_fuzz::targets::suite`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::suite::run(data));
}
