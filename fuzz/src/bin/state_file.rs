//! cargo-afl binary for the `state_file` target (see `rotcheck_fuzz::targets::state_file`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::state_file::run(data));
}
