#!/bin/sh
# Benchmark of `rotcheck serve` (not a test): 1,000 TLS checks (half against the lab's Vault
# listener, half against a leaf-only TLS listener, all on 127.0.0.1), 30 s interval, default
# concurrency. Prints the first-round time, the /metrics size, the median and p90 latency of
# 50 sequential /metrics requests, and the resident memory (VmRSS) of the serve process.
# Goal: RSS under 30 MB, median /metrics under 20 ms. Uses a release build.
set -eu
cd "$(dirname "$0")/.."
cargo test --release --test exporter -- --ignored --nocapture --exact bench_serve_1000_checks 2>&1 \
    | grep -E '^bench:|panicked|error' || true
