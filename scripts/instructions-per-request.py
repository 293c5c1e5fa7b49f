#!/usr/bin/env python3
"""Instructions the server executes per request, counted by callgrind: repeatable where rates are
not (this 2-core machine is noisy, and wrk shares its cores with the server).

    scripts/instructions-per-request.py BINARY DATA_DIR [REQUESTS]

DATA_DIR is a directory `registry-bench http-populate` filled (it holds `verify-paths.txt`),
already projected (start the server on it once). The server runs under
`valgrind --tool=callgrind --instr-atstart=no`; 4,000 scans of 2,000 tokens warm its caches
uncounted; then REQUESTS (10,000) warm verifies of random ones of those tokens and, as the
reference measured in the same run, REQUESTS `GET /healthz`, each counted alone. Requests go one
at a time over one keep-alive connection, so what is counted is the server's own work per
request (and its background threads', a few hundred instructions per request).

Under valgrind the CPU has no SHA-NI or AVX-512: SHA-256 and Ed25519 run their portable code,
so their share is larger than on the machine itself.
"""
import http.client, os, random, re, signal, socket, subprocess, sys, tempfile, time

binary, data_dir = sys.argv[1], sys.argv[2]
requests = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
out = tempfile.mkdtemp(prefix="callgrind-")
server = subprocess.Popen(
    ["valgrind", "--tool=callgrind", "--instr-atstart=no",
     f"--callgrind-out-file={out}/out", binary, "--data-dir", data_dir,
     "serve", "--listen", f"127.0.0.1:{port}", "--verify-rate-limit", "0"],
    stdout=subprocess.DEVNULL, stderr=open(f"{out}/server.log", "w"))


def connect():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


for _ in range(600):
    try:
        c = connect()
        c.request("GET", "/readyz")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.5)
else:
    sys.exit("the server did not become ready")

with open(os.path.join(data_dir, "verify-paths.txt")) as f:
    paths = [next(f).strip() for _ in range(2000)]


def run(chosen):
    c = connect()
    for path in chosen:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == 200, (path, r.status)


def control(*args):
    subprocess.run(["callgrind_control", *args, str(server.pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


run([paths[i % len(paths)] for i in range(4000)])
rnd = random.Random(7)
phases = {
    "warm verify": [rnd.choice(paths) for _ in range(requests)],
    "/healthz (reference)": ["/healthz"] * requests,
}
counted = {}
for number, (name, chosen) in enumerate(phases.items(), start=1):
    control("-z")
    control("-i", "on")
    run(chosen)
    control("-i", "off")
    control("-d", f"phase{number}")
    dump = os.path.join(out, f"out.{number}")
    for _ in range(120):
        totals = re.search(r"^totals: (\d+)", open(dump).read(), re.M) if os.path.exists(dump) else None
        if totals:
            break
        time.sleep(0.5)
    else:
        sys.exit(f"callgrind wrote no {dump}")
    counted[name] = int(totals.group(1)) / requests
server.send_signal(signal.SIGTERM)
server.wait()
for name, per in counted.items():
    print(f"{name}: {per:,.0f} instructions per request")
print(f"ratio: {counted['warm verify'] / counted['/healthz (reference)']:.3f}")
print(f"callgrind dumps in {out} (callgrind_annotate --inclusive=yes FILE)")
