#!/usr/bin/env bash
# Prints cargo's target directory for this workspace, as cargo itself resolves it
# (CARGO_TARGET_DIR, .cargo/config's build.target-dir, else ./target): the release binaries
# are in "$(scripts/target-dir.sh)/release". Used by the Makefile and scripts/quickstart.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
meta="$("${CARGO:-cargo}" metadata --format-version 1 --no-deps)"
dir="$(sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' <<<"$meta")"
if [ -z "$dir" ]; then
  echo "target-dir.sh: cargo metadata named no target_directory" >&2
  exit 1
fi
printf '%s\n' "$dir"
