//! cargo-afl binary for the `certs` target (see `rotcheck_fuzz::targets::certs`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::certs::run(data));
}
