//! cargo-afl binary for the `jwks` target (see `rotcheck_fuzz::targets::jwks`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::jwks::run(data));
}
