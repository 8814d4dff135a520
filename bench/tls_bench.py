#!/usr/bin/env python3
"""CPU per full TLS check: one `rotcheck gate` over N nginx listeners vs blackbox_exporter.

Starts one nginx with N TLS listeners on loopback, each with its own leaf (root ->
intermediate -> leaf, full chain),
then in the same run:
  * rotcheck: `gate` over a suite of N tls checks (connect, SNI handshake, chain to the root,
    names, expiry); CPU = the child's user+system time from getrusage, divided by N;
  * blackbox_exporter: the tcp prober with `tls: true`, the same CA and server name, probed
    once per listener through /probe; CPU = the exporter's utime+stime delta from /proc.
Each side runs ROUNDS times; medians are reported: CPU per check, the wall time of all N
checks, and the wall time of a 15-check suite (15 probes for blackbox), side by side.

With --baseline OTHER, every round also runs OTHER (an earlier build) right after rotcheck on
the same listeners, and the medians of both and their ratio are printed: a same-run A/B.

With --setup-only DIR, only the PKI, nginx and the suites (DIR/suite.yaml, DIR/small.yaml)
are made, and nginx runs until interrupted (Ctrl-C or SIGTERM): for profiling one gate by
hand, e.g.
  valgrind --tool=callgrind target/release/rotcheck gate -c DIR/suite.yaml --format json

Usage: bench/tls_bench.py [--n 300] [--rounds 5] [--rotcheck target/release/rotcheck]
                          [--baseline PATH] [--protocols TLSv1.3] [--setup-only DIR]
Needs: nginx, openssl, prometheus-blackbox-exporter (Debian packages).
"""
import argparse, concurrent.futures, os, resource, shutil, signal, socket, statistics, subprocess
import sys, tempfile, time, urllib.request

NAME = "bench.rotcheck.test"


def sh(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d, n):
    """Root CA, intermediate CA and N distinct ECDSA P-256 leaves for NAME, with openssl.

    Every listener gets its own leaf so no tool can reuse a verdict across listeners."""
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("[ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
                f"[leaf]\nbasicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n"
                f"extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{NAME}\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    for k in ("root", "int"):
        sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{k}.key", cwd=d)
    sh("openssl", "req", "-x509", "-new", "-key", "root.key", "-subj", "/CN=bench-root", "-days", "3650",
       "-extensions", "ca", "-config", ext, "-out", "root.pem", cwd=d)
    sign(d, ext, "int", "/CN=bench-intermediate", "root", "ca")
    intermediate = open(os.path.join(d, "int.pem")).read()
    for i in range(n):
        leaf = f"leaf{i}"
        sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{leaf}.key", cwd=d)
        sign(d, ext, leaf, f"/CN={NAME}/OU=listener {i}", "int", "leaf")
        with open(os.path.join(d, f"{leaf}.fullchain.pem"), "w") as f:
            f.write(open(os.path.join(d, f"{leaf}.pem")).read() + intermediate)


def sign(d, ext, name, subj, issuer, extn):
    sh("openssl", "req", "-new", "-key", f"{name}.key", "-subj", subj, "-out", f"{name}.csr",
       "-config", ext, cwd=d)
    sh("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
       "-CAcreateserial", "-days", "365", "-extfile", ext, "-extensions", extn, "-out", f"{name}.pem", cwd=d)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def start_nginx(d, ports, protocols=None):
    only = f"ssl_protocols {protocols};" if protocols else ""
    servers = "\n".join(f"""  server {{
    listen 127.0.0.1:{p} ssl;{only}
    server_name {NAME};
    ssl_certificate {d}/leaf{i}.fullchain.pem;
    ssl_certificate_key {d}/leaf{i}.key;
    return 204;
  }}""" for i, p in enumerate(ports))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  ssl_session_tickets off;
  ssl_session_cache off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
{servers}
}}
""")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    p = subprocess.Popen(["nginx", "-p", d, "-c", conf, "-g", "daemon off;"])
    wait_port(ports[-1])
    return p


def wait_port(port, deadline=15):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never opened")


def write_suite(d, ports, name="suite.yaml"):
    lines = [f"suite: bench\ndefaults: {{ timeout: 10s }}\nchecks:"]
    for i, p in enumerate(ports):
        lines.append(f"  - name: l{i:04d}\n    tls: {{ addr: \"127.0.0.1:{p}\", server_name: {NAME}, ca_file: {d}/root.pem }}\n"
                     f"    expect: {{ chain: valid, names: [{NAME}], expiry: {{ warn: 10%, crit: 5% }} }}")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def rotcheck_round(binary, suite, n):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([binary, "gate", "-c", suite, "--format", "json"], stdout=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"rotcheck gate failed (exit {r.returncode}); the bench needs every check to pass")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / n, wall


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_blackbox(d, port):
    cfg = os.path.join(d, "blackbox.yml")
    with open(cfg, "w") as f:
        f.write(f"modules:\n  tls:\n    prober: tcp\n    timeout: 10s\n    tcp:\n      tls: true\n"
                f"      tls_config:\n        ca_file: {d}/root.pem\n        server_name: {NAME}\n")
    p = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={cfg}",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def blackbox_round(bb, bb_port, ports, workers=16):
    """CPU per probe of the exporter process, and the wall time of probing all `ports`."""
    def probe(p):
        url = f"http://127.0.0.1:{bb_port}/probe?module=tls&target=127.0.0.1:{p}"
        body = urllib.request.urlopen(url, timeout=30).read().decode()
        return "probe_success 1" in body
    before = proc_cpu(bb.pid)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        ok = list(ex.map(probe, ports))
    wall = time.perf_counter() - t0
    if not all(ok):
        sys.exit(f"blackbox: {ok.count(False)} probes failed; the bench needs every probe to pass")
    return (proc_cpu(bb.pid) - before) / len(ports), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rotcheck", default="target/release/rotcheck")
    ap.add_argument("--baseline", help="an earlier rotcheck binary to compare in the same run")
    ap.add_argument("--protocols", help='nginx ssl_protocols, e.g. "TLSv1.3" (default: nginx\'s own)')
    ap.add_argument("--setup-only", metavar="DIR",
                    help="make the listeners and suites in DIR, keep nginx running until Ctrl-C")
    a = ap.parse_args()
    if a.setup_only:
        return setup_only(a)
    for tool in ("nginx", "openssl", "prometheus-blackbox-exporter"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found; apt-get install nginx openssl prometheus-blackbox-exporter")
    binary = os.path.abspath(a.rotcheck)
    with tempfile.TemporaryDirectory() as d:
        make_pki(d, a.n)
        ports = free_ports(a.n + 1)
        bb_port, ports = ports[0], ports[1:]
        nginx = start_nginx(d, ports, a.protocols)
        bb = start_blackbox(d, bb_port)
        try:
            run(a, d, binary, ports, bb, bb_port)
        finally:
            for p in (nginx, bb):
                p.terminate()
                p.wait()


def setup_only(a):
    """The bench's listeners and suites in a directory that stays, nginx until interrupted."""
    d = os.path.abspath(a.setup_only)
    os.makedirs(d, exist_ok=True)
    make_pki(d, a.n)
    ports = free_ports(a.n)
    nginx = start_nginx(d, ports, a.protocols)
    print(f"{write_suite(d, ports)}\n{write_suite(d, ports[:15], 'small.yaml')}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        nginx.wait()
    except KeyboardInterrupt:
        pass
    finally:
        nginx.terminate()
        nginx.wait()


def run(a, d, binary, ports, bb, bb_port):
    suite = write_suite(d, ports)
    small = write_suite(d, ports[:15], "small.yaml")
    tools = {"rotcheck gate": binary}
    if a.baseline:
        tools["baseline gate"] = os.path.abspath(a.baseline)
    blackbox_round(bb, bb_port, ports)  # warm-up: page cache, connections
    for b in tools.values():
        rotcheck_round(b, suite, a.n)
    load = os.getloadavg()[0]
    cpu = {k: [] for k in [*tools, "blackbox"]}
    wall, wall15 = {k: [] for k in cpu}, {k: [] for k in cpu}
    for _ in range(a.rounds):
        for k, b in tools.items():
            c, w = rotcheck_round(b, suite, a.n)
            cpu[k].append(c)
            wall[k].append(w)
            wall15[k].append(rotcheck_round(b, small, 15)[1])
        c, w = blackbox_round(bb, bb_port, ports)
        cpu["blackbox"].append(c)
        wall["blackbox"].append(w)
        wall15["blackbox"].append(blackbox_round(bb, bb_port, ports[:15])[1])
    report(a, cpu, wall, wall15, load)


def report(a, cpu, wall, wall15, load):
    med = statistics.median
    print(f"listeners: {a.n}, rounds: {a.rounds} (medians), cores: {os.cpu_count()}, "
          f"load average (1 min) before/after: {load:.2f}/{os.getloadavg()[0]:.2f}")
    print(f"{'':<16}{'CPU per check':>15}{f'wall, {a.n} checks':>20}{'wall, 15 checks':>18}")
    for k in cpu:
        print(f"{k:<16}{med(cpu[k]) * 1e3:>12.3f} ms{med(wall[k]):>18.3f} s"
              f"{med(wall15[k]) * 1e3:>15.1f} ms")
    print("rotcheck: the whole gate process, start-up included; blackbox: the exporter process's CPU,"
          " probes sent 16 at a time")
    r, b = med(cpu["rotcheck gate"]), med(cpu["blackbox"])
    print(f"ratio rotcheck/blackbox: CPU {r / b:.2f}x, wall {a.n}: "
          f"{med(wall['rotcheck gate']) / med(wall['blackbox']):.2f}x")
    if "baseline gate" in cpu:
        m = med(cpu["baseline gate"])
        w = med(wall["rotcheck gate"]) / med(wall["baseline gate"])
        print(f"rotcheck/baseline: wall {a.n}: {w:.2f}x, CPU {r / m:.3f}x (rounds: "
              f"{', '.join(f'{x * 1e3:.3f}/{y * 1e3:.3f}' for x, y in zip(cpu['rotcheck gate'], cpu['baseline gate']))})")


if __name__ == "__main__":
    main()
