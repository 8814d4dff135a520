#!/usr/bin/env python3
"""Files at scale: `rotcheck gate` over N certificate files with chain validation vs
`openssl verify` on the same files.

Generates a root CA, an intermediate and N distinct ECDSA P-256 leaves (one PEM file each,
leaf only; the CA file holds the root and the intermediate), then in each round times:
  * rotcheck, one check: `gate` on a suite with one `files` check of N `kind: cert` entries,
    `expect: {chain: valid}` (every selected client, the default), expiry;
  * rotcheck, many checks: the same N entries as N/100 `files` checks of 100 entries;
  * openssl: one `openssl verify -CAfile root.pem -untrusted int.pem` over the N files.
Wall time (and the children's CPU time) per run; medians over ROUNDS are printed.

With --baseline OTHER, every round also runs OTHER (an earlier build) on the same suites:
a same-run A/B.

With --dir DIR, the certificates and suites are written to DIR (kept, and reused when DIR
already holds N of them); with --generate-only, nothing is timed: the suites DIR/one.yaml and
DIR/many.yaml are left for a profiler (valgrind --tool=callgrind rotcheck gate -c DIR/one.yaml).

Usage: bench/files_bench.py [--n 10000] [--rounds 5] [--rotcheck target/release/rotcheck]
                            [--baseline PATH] [--dir DIR [--generate-only]]
Needs: openssl and python3-cryptography (Debian packages).
"""
import argparse, datetime, os, resource, shutil, statistics, subprocess, sys, tempfile, time

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    sys.exit("python3-cryptography not found; apt-get install python3-cryptography")

NAME = "bench.rotcheck.test"
PER_CHECK = 100


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(subject, key, issuer, issuer_key, ca, serial):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                        critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                            critical=True)
    else:
        b = (b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                             critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
             .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False))
    return b.sign(issuer_key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_pki(d, n):
    """Root, intermediate and N leaves; one leaf key signs every leaf (keys are not judged)."""
    root_key, int_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = issue(name("bench-root"), root_key, name("bench-root"), root_key, True, 1)
    inter = issue(name("bench-intermediate"), int_key, root.subject, root_key, True, 2)
    write(d, "root.pem", pem(root))
    write(d, "int.pem", pem(inter))
    write(d, "ca.pem", pem(root) + pem(inter))
    os.makedirs(os.path.join(d, "certs"))
    for i in range(n):
        leaf = issue(name(f"{NAME} {i}"), leaf_key, inter.subject, int_key, False, 1000 + i)
        write(d, f"certs/c{i:05d}.pem", pem(leaf))


def write(d, rel, text):
    with open(os.path.join(d, rel), "w") as f:
        f.write(text)


def entry(d, i):
    return f"      - {{path: {d}/certs/c{i:05d}.pem, kind: cert, ca_file: {d}/ca.pem}}"


def write_suite(d, n, per_check, file_name):
    lines = ["suite: files-bench\ndefaults: { timeout: 60s }\nchecks:"]
    for start in range(0, n, per_check):
        lines.append(f"  - name: f{start:05d}\n    expect: {{ chain: valid }}\n    files:")
        lines.extend(entry(d, i) for i in range(start, min(n, start + per_check)))
    path = os.path.join(d, file_name)
    write(d, file_name, "\n".join(lines) + "\n")
    return path


def timed(args, ok=(0,)):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode not in ok:
        sys.exit(f"{args[0]} failed (exit {r.returncode}): {r.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rotcheck", default="target/release/rotcheck")
    ap.add_argument("--baseline", help="an earlier rotcheck binary to compare in the same run")
    ap.add_argument("--dir", help="write (or reuse) the certificates and suites here")
    ap.add_argument("--generate-only", action="store_true", help="with --dir: time nothing")
    a = ap.parse_args()
    if a.generate_only and not a.dir:
        sys.exit("--generate-only needs --dir DIR")
    if not shutil.which("openssl"):
        sys.exit("openssl not found; apt-get install openssl")
    if a.dir:
        prepare(a, os.path.abspath(a.dir))
        return
    with tempfile.TemporaryDirectory() as d:
        generate(d, a.n)
        run(a, d)


def generate(d, n):
    t0 = time.perf_counter()
    make_pki(d, n)
    print(f"generated {n} certificates in {time.perf_counter() - t0:.1f} s")


def prepare(a, d):
    """Certificates in a kept directory: generated unless the N of them are there already."""
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(os.path.join(d, "certs", f"c{a.n - 1:05d}.pem")):
        shutil.rmtree(os.path.join(d, "certs"), ignore_errors=True)
        generate(d, a.n)
    if a.generate_only:
        write_suite(d, a.n, a.n, "one.yaml")
        write_suite(d, a.n, PER_CHECK, "many.yaml")
        print(f"suites: {d}/one.yaml, {d}/many.yaml")
        return
    run(a, d)


def run(a, d):
    suites = {"one check": write_suite(d, a.n, a.n, "one.yaml"),
              f"{a.n // PER_CHECK} checks": write_suite(d, a.n, PER_CHECK, "many.yaml")}
    tools = {"rotcheck": os.path.abspath(a.rotcheck)}
    if a.baseline:
        tools["baseline"] = os.path.abspath(a.baseline)
    files = [os.path.join(d, "certs", f"c{i:05d}.pem") for i in range(a.n)]
    verify = ["openssl", "verify", "-CAfile", f"{d}/root.pem", "-untrusted", f"{d}/int.pem"] + files
    jobs = {f"{t} gate, {s}": [b, "gate", "-c", p] for t, b in tools.items() for s, p in suites.items()}
    jobs["openssl verify"] = verify
    for args in jobs.values():  # warm-up: page cache, binaries
        timed(args)
    samples = {k: [] for k in jobs}
    for _ in range(a.rounds):
        for k, args in jobs.items():
            samples[k].append(timed(args))
    print(f"files: {a.n}, rounds: {a.rounds} (medians; CPU = user+system of the process)")
    for k, s in samples.items():
        wall = statistics.median(w for w, _ in s)
        cpu = statistics.median(c for _, c in s)
        print(f"{k:<28}: wall {wall:.3f} s, CPU {cpu:.3f} s")


if __name__ == "__main__":
    main()
