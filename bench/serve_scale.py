#!/usr/bin/env python3
"""`rotcheck serve` at fleet scale (not a test): one serve process over N checks.

Suites (each run separately, one serve process each):
  * files: N `files` checks of one certificate file each (root -> intermediate -> leaf,
    `expect: {chain: valid, expiry: ...}`, CA file: root + intermediate);
  * tls: N `tls` checks spread over 16 nginx TLS listeners on 127.0.0.1 (full chain,
    `expect: {chain: valid, names, expiry}`).
For each: the first round (start to /ready 200), /metrics size raw and gzipped, the number of
series, median and p90 latency of SCRAPES sequential /metrics requests without and with
`Accept-Encoding: gzip` and serve's CPU time (user + system, /proc/PID/stat) per scrape in
each series (`scrape_cpu_ms`: it includes the background checks that ran meanwhile;
`idle_cpu_ms_per_s` is serve's CPU per second before the scrapes, and `scrape_cpu_net_ms`
the CPU per scrape less that rate over the scrape's mean wall time), and the resident memory (VmRSS, and the peak VmHWM) of the process.
With --prometheus, a real Prometheus (scrape_interval 15s, scrape_timeout 10s) scrapes the
exporter once and its `up`, `scrape_samples_scraped` and `scrape_duration_seconds` are
printed; the run fails when the scrape fails or its sample count differs from the series
count of /metrics or from the documented count per check (docs/metrics.md).

With --probe-flood N, N /probe requests of random checks follow (16 at a time) and the RSS
is printed after each quarter of them.

Usage: bench/serve_scale.py [--n 1000,10000] [--suites files,tls] [--scrapes 50]
                            [--rotcheck target/release/rotcheck] [--prometheus]
                            [--probe-flood 20000] [--env MALLOC_ARENA_MAX=2]
Needs: nginx and openssl (tls), python3-cryptography (files), prometheus (--prometheus).
"""
import argparse, gzip, http.client, json, os, re, shutil, statistics, subprocess, sys
import tempfile, threading, time, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import files_bench  # noqa: E402  (the PKI of the files benchmark)
import tls_bench  # noqa: E402  (the PKI and nginx of the TLS benchmark)

LISTENERS = 16
# Series per check documented in docs/metrics.md for these two suites (all passing), and the
# exporter's own series (reload gauges, build info). None: not documented (an older build).
PER_CHECK = {"files": 12, "tls": 24}
EXPORTER_SERIES = 3


def files_suite(d, n):
    files_bench.make_pki(d, n)
    lines = ["suite: bench\ndefaults: { interval: 60s, timeout: 10s }\nchecks:"]
    for i in range(n):
        lines.append(f"  - name: f{i:05d}\n    expect: {{ chain: valid, expiry: {{ warn: 10%, crit: 5% }} }}\n"
                     f"    files:\n      - {{path: certs/c{i:05d}.pem, kind: cert, ca_file: ca.pem}}")
    return write(d, "files.yaml", lines), None


def tls_suite(d, n):
    tls_bench.make_pki(d, LISTENERS)
    ports = tls_bench.free_ports(LISTENERS)
    nginx = tls_bench.start_nginx(d, ports)
    name = tls_bench.NAME
    lines = ["suite: bench\ndefaults: { interval: 60s, timeout: 10s }\nchecks:"]
    for i in range(n):
        lines.append(f"  - name: t{i:05d}\n    tls: {{ addr: \"127.0.0.1:{ports[i % LISTENERS]}\", "
                     f"server_name: {name}, ca_file: root.pem }}\n"
                     f"    expect: {{ chain: valid, names: [{name}], expiry: {{ warn: 10%, crit: 5% }} }}")
    return write(d, "tls.yaml", lines), nginx


def write(d, name, lines):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_serve(binary, suite, env=()):
    p = subprocess.Popen([binary, "serve", "-c", suite, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, **dict(e.split("=", 1) for e in env)})
    for line in p.stderr:
        m = re.search(r"on https?://(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            host, port = m.group(1).rsplit(":", 1)
            return p, (host, int(port))
    sys.exit("serve did not start")


def get(addr, path, headers=None):
    c = http.client.HTTPConnection(*addr, timeout=60)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def wait_ready(addr, limit=600):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if get(addr, "/ready")[0] == 200:
            return time.perf_counter() - t0
        time.sleep(0.05)
    sys.exit("serve never became ready")


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """The process's user + system CPU time so far (/proc/PID/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrapes(addr, n, headers, pid):
    """Median and p90 wall time of n sequential scrapes, the serve process's CPU time per
    scrape (including its background checks meanwhile), the last headers and body."""
    took = []
    cpu0 = cpu_seconds(pid)
    for _ in range(n):
        t0 = time.perf_counter()
        status, h, body = get(addr, "/metrics", headers)
        took.append(time.perf_counter() - t0)
        if status != 200:
            sys.exit(f"/metrics answered {status}")
    cpu = (cpu_seconds(pid) - cpu0) / n
    mean = sum(took) / n
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.9)], (cpu, mean), h, body


def series(text):
    return sum(1 for l in text.splitlines() if l and not l.startswith("#"))


def measure(a, kind, n, suite, binary):
    t0 = time.perf_counter()
    serve, addr = start_serve(binary, suite, a.env)
    try:
        wait_ready(addr)
        first = time.perf_counter() - t0  # from the process start
        time.sleep(2)
        idle = cpu_seconds(serve.pid)
        time.sleep(2)
        idle = (cpu_seconds(serve.pid) - idle) / 2
        med, p90, cpu, _, raw = scrapes(addr, a.scrapes, {}, serve.pid)
        gmed, gp90, gcpu, gh, gbody = scrapes(addr, a.scrapes, {"Accept-Encoding": "gzip"}, serve.pid)
        served_gzip = {k.lower(): v for k, v in gh.items()}.get("content-encoding") == "gzip"
        gz = len(gbody) if served_gzip else len(gzip.compress(raw, 6))
        text = raw.decode()
        count = series(text)
        row = {"suite": kind, "checks": n, "first_round_s": round(first, 2),
               "rss_mib": round(proc_kib(serve.pid, "VmRSS") / 1024, 1),
               "peak_rss_mib": round(proc_kib(serve.pid, "VmHWM") / 1024, 1),
               "series": count, "series_per_check": round((count - EXPORTER_SERIES) / n, 2),
               "bytes_raw": len(raw), "bytes_gzip": gz, "gzip_by_server": served_gzip,
               "gzip_share": round(gz / len(raw), 4),
               "scrape_ms_median": round(med * 1e3, 1), "scrape_ms_p90": round(p90 * 1e3, 1),
               "scrape_cpu_ms": round(cpu[0] * 1e3, 1),
               "scrape_cpu_net_ms": round((cpu[0] - idle * cpu[1]) * 1e3, 1),
               "gzip_scrape_ms_median": round(gmed * 1e3, 1), "gzip_scrape_ms_p90": round(gp90 * 1e3, 1),
               "gzip_scrape_cpu_ms": round(gcpu[0] * 1e3, 1),
               "gzip_scrape_cpu_net_ms": round((gcpu[0] - idle * gcpu[1]) * 1e3, 1), "idle_cpu_ms_per_s": round(idle * 1e3, 1),
               "load_average_1m": os.getloadavg()[0]}
        if a.prometheus:
            row.update(prometheus_scrape(a, addr, count, kind, n))
        if a.probe_flood:
            row.update(probe_flood(addr, serve.pid, kind, n, a.probe_flood))
        return row
    finally:
        serve.terminate()
        serve.wait()


def probe_flood(addr, pid, kind, n, total, workers=16):
    """`total` /probe requests of random checks, `workers` at a time; RSS after each quarter."""
    import concurrent.futures, random
    prefix = "f" if kind == "files" else "t"
    codes, rss = {}, []
    def one(_):
        return get(addr, f"/probe?check={prefix}{random.randrange(n):05d}")[0]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for q in range(4):
            for c in ex.map(one, range(total // 4)):
                codes[c] = codes.get(c, 0) + 1
            rss.append(round(proc_kib(pid, "VmRSS") / 1024, 1))
    return {"probes": total, "probe_codes": codes, "probe_s": round(time.perf_counter() - t0, 1),
            "rss_mib_after_each_quarter": rss}


def prometheus_scrape(a, addr, count, kind, n):
    """One scrape by a real Prometheus with scrape_timeout 10s; its sample count must match."""
    with tempfile.TemporaryDirectory() as d:
        port = tls_bench.free_ports(1)[0]
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"global: {{ scrape_interval: 15s, scrape_timeout: 10s }}\nscrape_configs:\n"
                    f"  - job_name: rotcheck\n    static_configs: [{{ targets: ['{addr[0]}:{addr[1]}'] }}]\n")
        p = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
                              f"--web.listen-address=127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return wait_scrape(port, count, kind, n)
        finally:
            p.terminate()
            p.wait()


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
    try:
        r = json.load(urllib.request.urlopen(url, timeout=10))
    except OSError:
        return None
    res = r.get("data", {}).get("result", [])
    return float(res[0]["value"][1]) if res else None


def wait_scrape(port, count, kind, n):
    end = time.time() + 120
    while time.time() < end:
        up = query(port, 'up{job="rotcheck"}')
        if up is not None:
            samples = query(port, 'scrape_samples_scraped{job="rotcheck"}')
            took = query(port, 'scrape_duration_seconds{job="rotcheck"}')
            want = PER_CHECK.get(kind)
            documented = None if want is None else want * n + EXPORTER_SERIES
            ok = up == 1 and samples == count and documented in (None, samples)
            if not ok:
                sys.exit(f"prometheus: up {up}, scrape_samples_scraped {samples}, /metrics series "
                         f"{count}, documented {documented}")
            return {"prom_up": up, "prom_samples": int(samples), "prom_documented": documented,
                    "prom_scrape_s": round(took, 3)}
        time.sleep(1)
    sys.exit("prometheus never scraped rotcheck")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="1000,10000")
    ap.add_argument("--suites", default="files,tls")
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--rotcheck", default="target/release/rotcheck")
    ap.add_argument("--prometheus", action="store_true")
    ap.add_argument("--probe-flood", type=int, default=0, help="this many /probe requests after the scrapes")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="set in serve's environment (e.g. MALLOC_ARENA_MAX=2); repeatable")
    a = ap.parse_args()
    for tool in ["openssl", "nginx"] + (["prometheus"] if a.prometheus else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found; apt-get install {tool}")
    binary = os.path.abspath(a.rotcheck)
    make = {"files": files_suite, "tls": tls_suite}
    for kind in a.suites.split(","):
        for n in (int(x) for x in a.n.split(",")):
            with tempfile.TemporaryDirectory() as d:
                suite, helper = make[kind](d, n)
                try:
                    print(json.dumps(measure(a, kind, n, suite, binary)), flush=True)
                finally:
                    if helper:
                        helper.terminate()
                        helper.wait()


if __name__ == "__main__":
    main()
