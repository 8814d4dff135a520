#!/usr/bin/env bash
# Coverage-guided fuzzing of rotcheck's parsers with cargo-afl (AFL++): builds the targets of
# fuzz/, writes the seed corpora, runs each target for a bounded time, prints execs/s and total
# execs per target, and exits 1 when any target found a crash or a hang.
#
#   scripts/fuzz.sh                 # every target, 20 s each (CI)
#   scripts/fuzz.sh 3600            # every target, one hour each (local)
#   scripts/fuzz.sh 600 suite certs # chosen targets only
#
# Outputs live in fuzz/out/ (ignored by git): runs/<target>/ is AFL's output of the last run,
# findings/<target>/ keeps every crash and hang input ever found, and the queue of each run
# seeds the next one. See docs/fuzzing.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

secs="${1:-20}"
[ $# -gt 0 ] && shift
all=(suite certs webconfig probe_query vault_body state_file ocsp_response jwks)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
case "$secs" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

out="${FUZZ_OUT:-$root/fuzz/out}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
bin="$CARGO_TARGET_DIR/release"
exec_timeout_ms="${FUZZ_EXEC_TIMEOUT_MS:-5000}"
mem_mb="${FUZZ_MEM_MB:-2048}"

if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-afl is missing; install it: cargo install cargo-afl && cargo afl config --build" >&2
  exit 2
fi

(cd "$root/fuzz" && cargo afl build --release --bins)
mkdir -p "$out/tmp" "$out/runs"
rm -rf "$out/seeds"
"$bin/seeds" "$root" "$out/seeds"

export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FAST_CAL=1 AFL_QUIET=1
# The web-config target writes its scratch PEM files under TMPDIR.
export TMPDIR="$out/tmp"

# Seeds plus the queue of the previous run of the target.
prepare_input() {
  local t="$1" in="$out/in/$1"
  rm -rf "$in"
  mkdir -p "$in"
  cp "$out/seeds/$t/"* "$in/"
  if [ -d "$out/runs/$t/default/queue" ]; then
    find "$out/runs/$t/default/queue" -maxdepth 1 -type f -name 'id:*' -exec cp {} "$in/" \;
  fi
}

stat_of() { sed -n "s/^$2 *: *//p" "$1" | head -n1; }

# Copies new crash and hang inputs to findings/<target>/ and prints their count.
keep_findings() {
  local t="$1" kind n=0
  for kind in crashes hangs; do
    local dir="$out/runs/$t/default/$kind"
    [ -d "$dir" ] || continue
    mkdir -p "$out/findings/$t/$kind"
    while IFS= read -r -d '' f; do
      cp "$f" "$out/findings/$t/$kind/"
      n=$((n + 1))
    done < <(find "$dir" -maxdepth 1 -type f -name 'id:*' -print0)
  done
  echo "$n"
}

failed=0
summary=()
for t in "${targets[@]}"; do
  if [ ! -x "$bin/$t" ]; then
    echo "fuzz.sh: unknown target '$t'; targets: ${all[*]}" >&2
    exit 2
  fi
  prepare_input "$t"
  rm -rf "$out/runs/$t"
  echo "== $t: ${secs}s"
  cargo afl fuzz -i "$out/in/$t" -o "$out/runs/$t" -x "$root/fuzz/dict/rotcheck.dict" \
    -t "${exec_timeout_ms}+" -m "$mem_mb" -V "$secs" -- "$bin/$t" >"$out/runs-$t.log" 2>&1 || {
    echo "fuzz.sh: afl-fuzz failed for $t; see $out/runs-$t.log" >&2
    tail -n 20 "$out/runs-$t.log" >&2
    exit 2
  }
  if [ "$t" = webconfig ]; then rm -rf "$out/tmp/rotcheck-fuzz-"*; fi
  stats="$out/runs/$t/default/fuzzer_stats"
  crashes="$(stat_of "$stats" saved_crashes)"
  hangs="$(stat_of "$stats" saved_hangs)"
  found="$(keep_findings "$t")"
  line="$(printf '%-12s run_time %6ss  execs %12s  execs/s %9s  corpus %6s  edges %9s  crashes %s  hangs %s' \
    "$t" "$(stat_of "$stats" run_time)" "$(stat_of "$stats" execs_done)" \
    "$(stat_of "$stats" execs_per_sec)" "$(stat_of "$stats" corpus_count)" \
    "$(stat_of "$stats" bitmap_cvg)" "${crashes:-?}" "${hangs:-?}")"
  echo "$line"
  summary+=("$line")
  if [ "${crashes:-1}" != 0 ] || [ "${hangs:-1}" != 0 ] || [ "$found" != 0 ]; then
    echo "   findings kept in $out/findings/$t/" >&2
    failed=1
  fi
done

echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
  echo "fuzz.sh: crashes or hangs found; replay one with: $bin/TARGET < INPUT" >&2
  exit 1
fi
