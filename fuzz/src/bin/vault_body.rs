//! cargo-afl binary for the `vault_body` target (see `rotcheck_fuzz::targets::vault_body`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::vault_body::run(data));
}
