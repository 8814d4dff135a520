#!/usr/bin/env bash
# rotcheck quick start: one command on a fresh Debian machine runs the whole seven-step
# rotation plan against the lab — the lab Vault (an API emulator over real mTLS), a real nginx
# as the app frontend whose leaf is rotated and reloaded, and a real haproxy as the edge proxy
# that verifies nginx with the refreshed CA chain file — printing each step with its gate
# result and the final healthcheck, then leaves `rotcheck serve` running on the lab suite.
#
#   ./scripts/quickstart.sh          set up (if needed), rotate, serve
#   ./scripts/quickstart.sh stop     stop what a previous run started (lab, nginx, haproxy, serve)
#
# Everything lives under ./lab-run/ (gitignored); nginx and haproxy under lab-run/lab/ so the
# suite names their pid files as ${lab_dir}/nginx/nginx.pid and ${lab_dir}/haproxy/haproxy.pid.
# Ports: the lab picks a free one; nginx, haproxy and the exporter use QS_APP_PORT (18443),
# QS_EDGE_PORT (18080) and QS_METRICS_PORT (9847), or the next free port above each.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
run="$root/lab-run"
lab="$run/lab"

say() { printf '\n==> %s\n' "$*"; }

# Stops the processes a previous run started, by the pids it recorded.
stop_all() {
  [ -d "$run" ] || return 0
  for f in "$run/serve.pid" "$lab/haproxy/haproxy.pid" "$lab/nginx/nginx.pid" "$lab/lab.pid"; do
    [ -f "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  sleep 0.5
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  echo "stopped; remove $run to start from scratch"
  exit 0
fi

# 1. Peers: nginx, haproxy (and curl for the edge check, openssl for RSA keys) from Debian.
need=()
want() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || need+=("$2"); }
want nginx nginx
want haproxy haproxy
want curl curl
want openssl openssl
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# 2. Build.
say "building rotcheck and the lab (release)"
cargo build --release --locked -p rotcheck -p rotcheck-lab
bin="$root/target/release"

# 3. A fresh lab.
stop_all
rm -rf "$run"
mkdir -p "$run"

free_port() {
  local p="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
app_port="$(free_port "${QS_APP_PORT:-18443}")"
edge_port="$(free_port "${QS_EDGE_PORT:-18080}")"
[ "$edge_port" != "$app_port" ] || edge_port="$(free_port $((app_port + 1)))"
metrics_port="$(free_port "${QS_METRICS_PORT:-9847}")"

say "starting the lab Vault"
# --drift: agent-app-a's cert-auth mapping still carries debug-policy; the plan removes it.
"$bin/rotcheck-lab" up --dir "$lab" --drift >"$run/lab.log" 2>&1 &
for _ in $(seq 100); do [ -s "$lab/lab.pid" ] && [ -s "$lab/lab.yaml" ] && break; sleep 0.1; done
[ -s "$lab/lab.yaml" ] || { cat "$run/lab.log"; echo "the lab did not start" >&2; exit 1; }
echo "lab Vault at $(head -1 "$run/lab.log") (files in $lab)"
mkdir -p "$lab/nginx" "$lab/haproxy"

# 4. nginx: the app-a frontend, serving the leaf the plan rotates.
cat >"$lab/nginx/nginx.conf" <<EOF
daemon on;
pid $lab/nginx/nginx.pid;
error_log $lab/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $lab/nginx/tmp-body;
  proxy_temp_path $lab/nginx/tmp-proxy;
  fastcgi_temp_path $lab/nginx/tmp-fastcgi;
  uwsgi_temp_path $lab/nginx/tmp-uwsgi;
  scgi_temp_path $lab/nginx/tmp-scgi;
  server {
    listen 127.0.0.1:$app_port ssl;
    server_name app-a.lab.rotcheck.test;
    ssl_certificate $lab/app-a/tls/app-a.fullchain.pem;
    ssl_certificate_key $lab/app-a/tls/app-a.key;
    location / { return 200 "app-a ok\n"; }
  }
}
EOF
# 5. haproxy: the edge proxy, verifying nginx with the proxy trust file the plan refreshes.
cat >"$lab/haproxy/haproxy.cfg" <<EOF
global
  master-worker
  pidfile $lab/haproxy/haproxy.pid
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend edge
  bind 127.0.0.1:$edge_port
  default_backend app_a
backend app_a
  server app-a 127.0.0.1:$app_port ssl verify required ca-file $lab/proxy/trust/ca_chain.pem sni str(app-a.lab.rotcheck.test) verifyhost app-a.lab.rotcheck.test
EOF
say "starting nginx (127.0.0.1:$app_port) and haproxy (127.0.0.1:$edge_port)"
nginx -c "$lab/nginx/nginx.conf"
haproxy -D -f "$lab/haproxy/haproxy.cfg" 2>/dev/null

# 6. The suite: the lab's rendered suite (with its seven-step plan) plus checks of this run's
#    nginx frontend and haproxy edge.
suite="$run/quickstart.yaml"
sed -e "s|^  app_a_addr: .*|  app_a_addr: \"127.0.0.1:$app_port\"|" \
    -e "s|^  edge_addr: .*|  edge_addr: \"127.0.0.1:$edge_port\"|" "$lab/lab.yaml" >"$suite"
# The frontend checks go at the end of the checks list, just before the plan.
cat >"$run/frontend-checks.yaml" <<CHECKS

  # Added by scripts/quickstart.sh: the nginx frontend and the haproxy edge.
  - name: app-a-frontend
    stage: app-leaf
    tags: [app-a, frontend]
    tls:
      addr: 127.0.0.1:$app_port
      server_name: app-a.lab.rotcheck.test
      ca_file: $lab/vault/ca_chain.pem
    expect:
      chain: valid
      serves_file: $lab/app-a/tls/app-a.fullchain.pem
  - name: edge-proxy
    stage: proxy-trust
    tags: [proxy]
    command: [curl, -sS, --max-time, "3", "http://127.0.0.1:$edge_port/"]
    expect: { exit: 0, stdout_contains: "app-a ok" }
CHECKS
awk -v f="$run/frontend-checks.yaml" '/^plan:/ { while ((getline l < f) > 0) print l; print "" } { print }' \
  "$suite" >"$suite.tmp" && mv "$suite.tmp" "$suite"
"$bin/rotcheck" lint -c "$suite"

# 7. The rotation: --force re-issues even the lab's brand-new certificates, so every step
#    visibly rotates; a second `rotcheck rotate plan -c SUITE` changes nothing.
say "rotating: rotcheck rotate plan -c $suite --force"
status=0
"$bin/rotcheck" rotate plan -c "$suite" --force || status=$?

# 8. The exporter on the lab suite.
"$bin/rotcheck" serve -c "$suite" --listen "127.0.0.1:$metrics_port" >"$run/serve.log" 2>&1 &
echo $! >"$run/serve.pid"
say "rotcheck serve is running: http://127.0.0.1:$metrics_port/metrics (log: $run/serve.log)"
cat <<EOF

  gate again:        $bin/rotcheck gate -c $suite
  re-run the plan:   $bin/rotcheck rotate plan -c $suite     (changes nothing now)
  audit log:         $lab/rotate/audit.jsonl
  stop everything:   ./scripts/quickstart.sh stop
EOF
exit "$status"
