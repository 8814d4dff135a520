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

# 6. The suite: the lab's rendered suite with this run's nginx and haproxy ports. While the lab
#    template does not carry the frontend checks and the plan yet, they are appended here.
suite="$run/quickstart.yaml"
sed -e "s|^  app_a_addr: .*|  app_a_addr: \"127.0.0.1:$app_port\"|" \
    -e "s|^  edge_addr: .*|  edge_addr: \"127.0.0.1:$edge_port\"|" "$lab/lab.yaml" >"$suite"
if ! grep -q '^plan:' "$suite"; then
  cat >>"$suite" <<CHECKS

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
  cat >>"$suite" <<'PLAN'

plan:
  state_dir: ${lab_dir}/rotate
  wait: 30s
  interval: 1s
  steps:
    - name: admin-client
      description: admin client cert first, so `vault status` stays possible
      gate: admin-client
      actions:
        - issue: { mount: pki-prod, role: admin-client, cn: vault-admin-lab, ttl: 720h, key: "${lab_dir}/vault/tls-admin/admin.key", cert: "${lab_dir}/vault/tls-admin/admin.crt", ca: "${lab_dir}/vault/tls-admin/issuing_ca.pem" }
    - name: server-tls
      description: Vault server TLS, then Vault reloads its listener (SIGHUP)
      gate: server-tls
      trust_first:
        bundles: ["${lab_dir}/vault/ca_chain.pem", "${lab_dir}/app-a/vault/ca/ca.pem", "${lab_dir}/app-b/vault/ca/ca.pem", "${lab_dir}/proxy/trust/ca_chain.pem"]
      actions:
        - issue: { mount: pki-prod, role: vault-server, cn: "${sni}", alt_names: [localhost], ip_sans: [127.0.0.1], ttl: 720h, key: "${lab_dir}/vault/tls/server.key", cert: "${lab_dir}/vault/tls/server.crt", chain: "${lab_dir}/vault/tls/fullchain.crt", ca_chain: "${lab_dir}/vault/tls/ca_chain.pem" }
      reload:
        - { pid_file: "${lab_dir}/lab.pid", signal: HUP }
    - name: agents
      description: agent mTLS certs and their cert-auth mappings (debug-policy removed)
      gate: agents
      actions:
        - issue: { mount: pki-prod, role: agent-app-a, cn: agent-app-a.lab.rotcheck.test, ttl: 168h, key: "${lab_dir}/app-a/vault/mtls/agent.key", cert: "${lab_dir}/app-a/vault/mtls/agent.crt", ca_chain: "${lab_dir}/app-a/vault/ca/ca.pem" }
        - cert_role: { name: agent-app-a, ca_file: "${lab_dir}/vault/tls-admin/issuing_ca.pem", allowed_cn: ["agent-app-a.*"], policies: [app-a-issue], remove_policy: [debug-policy] }
        - issue: { mount: pki-prod, role: agent-app-b, cn: agent-app-b.lab.rotcheck.test, ttl: 168h, csr: true, key: "${lab_dir}/app-b/vault/mtls/agent.key", cert: "${lab_dir}/app-b/vault/mtls/agent.crt", ca_chain: "${lab_dir}/app-b/vault/ca/ca.pem" }
        - cert_role: { name: agent-app-b, ca_file: "${lab_dir}/vault/tls-admin/issuing_ca.pem", allowed_cn: ["agent-app-b.*"], policies: [app-b-issue], remove_policy: [debug-policy] }
    - name: app-leaf
      description: app leaf certs under per-app roles that allow only their domains; nginx reloads
      gate: app-leaf
      actions:
        - pki_role: { mount: pki-prod, name: nginx-app-a, allowed_domains: ["${app_a_name}"], allow_bare_domains: true, allow_subdomains: true, server_flag: true, ttl: 720h, max_ttl: 720h }
        - issue: { mount: pki-prod, role: nginx-app-a, cn: "${app_a_name}", alt_names: ["www.${app_a_name}"], ttl: 720h, key: "${lab_dir}/app-a/tls/app-a.key", cert: "${lab_dir}/app-a/tls/app-a.crt", chain: "${lab_dir}/app-a/tls/app-a.fullchain.pem" }
        - pki_role: { mount: pki-prod, name: nginx-app-b, allowed_domains: ["${app_b_name}"], allow_bare_domains: true, allow_subdomains: true, server_flag: true, ttl: 720h, max_ttl: 720h }
        - issue: { mount: pki-prod, role: nginx-app-b, cn: "${app_b_name}", alt_names: ["www.${app_b_name}"], ttl: 720h, key: "${lab_dir}/app-b/tls/app-b.key", cert: "${lab_dir}/app-b/tls/app-b.crt", chain: "${lab_dir}/app-b/tls/app-b.fullchain.pem" }
      reload:
        - { pid_file: "${lab_dir}/nginx/nginx.pid", signal: HUP }
    - name: proxy-trust
      description: refresh the edge proxy's CA chain; haproxy reloads
      gate: proxy-trust
      actions:
        - trust: { mount: pki-prod, out: "${lab_dir}/proxy/trust/ca_chain.pem", keep: true }
      reload:
        - { pid_file: "${lab_dir}/haproxy/haproxy.pid", signal: USR2 }
    - name: restarts
      description: restart what must pick up new material (only when this run changed something)
      gate: restarts
      wait: 60s
      reload_when: run_changed
      reload:
        - { pid_file: "${lab_dir}/lab.pid", signal: HUP }
        - { pid_file: "${lab_dir}/haproxy/haproxy.pid", signal: USR2 }
    - name: final
      description: final healthcheck — seal status and an SNI handshake
      gate: final
PLAN
fi
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
