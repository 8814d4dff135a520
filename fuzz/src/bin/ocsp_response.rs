//! cargo-afl binary for the `ocsp_response` target (see `rotcheck_fuzz::targets::ocsp_response`).

fn main() {
    afl::fuzz!(|data: &[u8]| rotcheck_fuzz::targets::ocsp_response::run(data));
}
