#!/bin/sh
# Benchmark of `rotcheck serve` at scale (not a test): builds the release binary, then runs
# bench/serve_scale.py — 1,000 and 10,000 `files` checks (one certificate each) and `tls`
# checks against 16 local nginx listeners; first round, RSS, series, /metrics bytes raw and
# gzipped, median and p90 scrape latency, and one scrape by a real Prometheus
# (scrape_timeout 10s) whose sample count must match the documented count per check.
# Extra arguments go to serve_scale.py (e.g. --n 1000 --suites files).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin rotcheck
python3 bench/serve_scale.py --prometheus "$@"
