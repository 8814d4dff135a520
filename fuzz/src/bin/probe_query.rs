//! cargo-afl binary for the `probe_query` target (see `rotcheck_fuzz::targets::probe_query`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::probe_query::run(data));
}
