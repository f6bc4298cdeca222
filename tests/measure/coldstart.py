#!/usr/bin/env python3
"""Cold start of the Lambda binaries against a fake Lambda Runtime API (stdlib only).

Run by tests/measure.sh; usable alone:

    python3 tests/measure/coldstart.py --bin-dir target/release --events events --runs 20

For each function it spawns the release binary N times (plus one warm-up run that is
not counted) with the environment Lambda gives a provided.al2023 function and a full,
valid lti-lambda configuration whose AWS endpoint is 127.0.0.1:9 (refused: nothing
leaves the machine, and nothing waits on a network timeout). It records:

  ready      spawn -> the binary's first GET /2018-06-01/runtime/invocation/next, i.e.
             what the function does at cold start (config, SDK clients, handler) plus
             exec and the dynamic loader. This is the figure Lambda bills as Init.
  response   spawn -> the binary POSTs its response to the one event handed to it:
             a cold invocation end to end, minus API Gateway.
  handler    the event handed over -> the response posted (the invoke phase alone).
  CPU        CPU time of all threads from spawn to ready (schedstat): what the init
             costs in CPU, which is what a 256 MB function (a fraction of a vCPU) is
             short of.
  rss        VmRSS when ready, VmHWM after the response (peak), in MiB.
  log        bytes the process wrote to stdout/stderr during the run (what CloudWatch
             would ingest from the function itself; Lambda's platform lines come on top).

The fake Runtime API answers the first /next with the event, accepts the response (or
error), and holds any later /next until the run ends; then the process is killed.
LTI_BASE_URL defaults to the host the events/ files are addressed to (events/README.md),
so that the login event's target_link_uri is on the tool and the login reaches the
store. AWS_MAX_ATTEMPTS=1 makes a handler that needs DynamoDB or KMS fail at once (connection
refused) instead of backing off through the SDK's retries: those invocations answer
503, which still exercises parsing, routing, the error page and the runtime client.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FUNCTIONS = ["login", "launch", "jwks", "services"]

# The event each function gets, and what to expect from it with AWS unreachable.
EVENTS = {
    "login": ("login-get.json", "DynamoDB unreachable: 503"),
    "launch": ("launch-post.json", "rejected before or at DynamoDB"),
    "jwks": ("jwks-get.json", "KMS unreachable: 503"),
    "services": ("config-get.json", "no AWS call: 200"),
}

ADMIN_TOKEN = "local-admin-token-0123456789abcdef0123456789abcdef"
# events/README.md: the events are addressed to this tool host, so a login's
# target_link_uri is on the tool only when LTI_BASE_URL is this.
EVENTS_BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
# The TLS clients (the AWS SDK's and reqwest's) each load the system's root certificates
# at cold start: the bundle file, then every hashed file of the certificate directory.
# Debian-like hosts have ~150 of those; Amazon Linux 2023 (provided.al2023) keeps its
# roots in a bundle (/etc/pki/tls/certs/ca-bundle.crt). By default the harness points
# SSL_CERT_FILE at this machine's bundle and SSL_CERT_DIR at an empty directory to
# match; --system-certs measures this machine's layout instead (a few ms more per
# TLS client).
CA_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
              "/etc/ssl/cert.pem"]
API = "/2018-06-01/runtime"
RESPONSE_PATH = re.compile(rf"^{API}/invocation/([^/]+)/(response|error)$")


class Run:
    """What one spawned process did, as seen by the fake Runtime API."""

    def __init__(self, name: str, event: bytes | None, number: int):
        self.name = name
        self.event = event
        self.request_id = f"measure-{name}-{number}"
        self.lock = threading.Lock()
        self.next_calls = 0
        self.t_ready: int | None = None
        self.t_event_sent: int | None = None
        self.t_response: int | None = None
        self.outcome: str | None = None  # "response", "error", "init-error"
        self.status: int | None = None
        self.ready = threading.Event()
        self.done = threading.Event()
        self.release = threading.Event()


class RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    current: Run | None = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RuntimeApi

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, code: int, body: bytes, headers: dict[str, str] | None = None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):  # noqa: N802
        now = time.monotonic_ns()
        run = self.server.current
        if self.path != f"{API}/invocation/next" or run is None:
            self._reply(404, b'{"errorMessage":"unknown path"}')
            return
        with run.lock:
            run.next_calls += 1
            first = run.next_calls == 1
            if first:
                run.t_ready = now
        if first:
            run.ready.set()
        if first and run.event is not None:
            deadline = int(time.time() * 1000) + 10_000
            self._reply(
                200,
                run.event,
                {
                    "Lambda-Runtime-Aws-Request-Id": run.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": (
                        f"arn:aws:lambda:us-east-1:123456789012:function:lti-{run.name}"
                    ),
                    "Lambda-Runtime-Trace-Id": (
                        "Root=1-692312b2-000000000000000000000001;Parent=0000000000000001;Sampled=0"
                    ),
                },
            )
            run.t_event_sent = time.monotonic_ns()
            return
        # Ready-only runs, and the /next that follows the response: hold it until the
        # run ends (the process is killed first), then drop the connection.
        run.release.wait(timeout=120)
        self.close_connection = True

    def do_POST(self):  # noqa: N802
        now = time.monotonic_ns()
        body = self._body()
        run = self.server.current
        match = RESPONSE_PATH.match(self.path)
        if run is not None and (match or self.path == f"{API}/init/error"):
            outcome = "init-error" if not match else match.group(2)
            status = None
            if outcome == "response":
                try:
                    status = int(json.loads(body).get("statusCode"))
                except (ValueError, TypeError, AttributeError):
                    status = None
            with run.lock:
                if run.t_response is None:
                    run.t_response = now
                    run.outcome = outcome
                    run.status = status
            run.done.set()
            self._reply(202, b'{"status":"OK"}')
            return
        self._reply(404, b'{"errorMessage":"unknown path"}')


def proc_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ms(pid: int) -> float | None:
    """CPU time of all the process's threads so far (schedstat, ns resolution)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e6


LIVE: set[subprocess.Popen] = set()


def kill(p: subprocess.Popen):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    LIVE.discard(p)


def kill_all(*_):
    for p in list(LIVE):
        kill(p)
    if _:
        sys.exit(130)


def environment(name: str, port: int, home: str, bin_dir: str, base_url: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": home,
        # What Lambda sets for a provided.al2023 function.
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": f"lti-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/lti-{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2025/11/23/[1]measure",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "_HANDLER": "bootstrap",
        "LAMBDA_TASK_ROOT": bin_dir,
        "LAMBDA_RUNTIME_DIR": bin_dir,
        # Keep the SDK on this machine: refused endpoint, an empty HOME (no ~/.aws, as
        # in Lambda), no IMDS.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        # A full, valid lti-lambda configuration (what template.yaml sets, and more).
        "LTI_BASE_URL": base_url,
        "LTI_APP_LANDING_URL": "https://app.example/landing",
        "LTI_TABLE_NAME": "t",
        "LTI_KMS_KEY_ID": "alias/k",
        "LTI_ADMIN_TOKEN": ADMIN_TOKEN,
        "RUST_LOG": "info",
    }


def one_run(server: RuntimeApi, name: str, binary: str, env: dict, event: bytes | None,
            number: int, log_path: str, timeout: float) -> dict:
    run = Run(name, event, number)
    server.current = run
    with open(log_path, "wb") as log:
        t0 = time.monotonic_ns()
        p = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        LIVE.add(p)
        result: dict = {"ok": False}
        try:
            end = time.monotonic() + timeout
            while not run.ready.wait(0.002):
                if p.poll() is not None or time.monotonic() > end:
                    result["error"] = f"no /next (exit code {p.poll()})"
                    return result
            result["ready_ms"] = (run.t_ready - t0) / 1e6
            result["cpu_ready_ms"] = cpu_ms(p.pid)
            result["rss_ready_kib"] = proc_kib(p.pid, "VmRSS")
            if event is not None:
                while not run.done.wait(0.002):
                    if p.poll() is not None or time.monotonic() > end:
                        result["error"] = f"no response (exit code {p.poll()})"
                        return result
                result["response_ms"] = (run.t_response - t0) / 1e6
                result["handler_ms"] = (run.t_response - run.t_event_sent) / 1e6
                result["outcome"] = run.outcome
                result["status"] = run.status
                # Let the log line of the response reach the file before measuring.
                for _ in range(50):
                    if run.next_calls >= 2 or p.poll() is not None:
                        break
                    time.sleep(0.002)
            result["hwm_kib"] = proc_kib(p.pid, "VmHWM")
            result["ok"] = True
            return result
        finally:
            kill(p)
            run.release.set()
            server.current = None
            result["log_bytes"] = os.path.getsize(log_path)


def stats(values: list[float]) -> tuple[float, float, float]:
    s = sorted(values)
    p90 = s[max(0, math.ceil(0.9 * len(s)) - 1)]
    return s[0], statistics.median(s), p90


def fmt3(t: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in t)


def read_sizes(path: str | None) -> dict[str, dict[str, str]]:
    sizes: dict[str, dict[str, str]] = {}
    if not path or not os.path.exists(path):
        return sizes
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                sizes.setdefault(parts[0], {})[parts[1]] = parts[2]
    return sizes


def mb(value: str | None) -> str:
    if not value:
        return "-"
    return f"{int(value) / 1e6:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--events", default="events")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--no-invoke", action="store_true", help="measure ready only")
    ap.add_argument("--sizes", help="TSV (function, key, bytes) from measure.sh, for the final table")
    ap.add_argument("--notes", help="file with lines to print under the table")
    ap.add_argument("--base-url", default=EVENTS_BASE_URL,
                    help="LTI_BASE_URL; the default is the host the events/ files are addressed to")
    ap.add_argument("--system-certs", action="store_true",
                    help="let the binaries find CA certificates as this machine lays them out "
                         "(default: one bundle file and no hashed directory, as on AL2023)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="set (or, with an empty value, remove) a variable of the functions")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, kill_all)
    names = [n for n in args.functions.split(",") if n]
    bin_dir = os.path.abspath(args.bin_dir)
    for n in names:
        if not os.access(os.path.join(bin_dir, n), os.X_OK):
            print(f"missing binary {bin_dir}/{n}: build it first", file=sys.stderr)
            return 2

    server = RuntimeApi(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {}
    failures: dict[str, list[str]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="lti-measure-") as tmp:
            home = os.path.join(tmp, "home")
            os.mkdir(home)
            empty_cert_dir = os.path.join(tmp, "no-cert-dir")
            os.mkdir(empty_cert_dir)
            bundle = next((b for b in CA_BUNDLES if os.path.isfile(b)), None)
            for name in names:
                binary = os.path.join(bin_dir, name)
                env = environment(name, port, home, bin_dir, args.base_url)
                if not args.system_certs and bundle:
                    env["SSL_CERT_FILE"] = bundle
                    env["SSL_CERT_DIR"] = empty_cert_dir
                for kv in args.env:
                    key, _, value = kv.partition("=")
                    if value:
                        env[key] = value
                    else:
                        env.pop(key, None)
                event = None
                if not args.no_invoke:
                    with open(os.path.join(args.events, EVENTS[name][0]), "rb") as f:
                        event = f.read()
                print(f"  {name}: {args.runs} cold starts (+1 warm-up)"
                      + ("" if event is None else f", each handed {EVENTS[name][0]}"), flush=True)
                runs = []
                for i in range(args.runs + 1):
                    log_path = os.path.join(tmp, f"{name}-{i}.log")
                    r = one_run(server, name, binary, env, event, i, log_path, args.timeout)
                    if not r["ok"]:
                        with open(log_path, "rb") as f:
                            tail = f.read()[-2000:].decode(errors="replace")
                        failures.setdefault(name, []).append(f"run {i}: {r.get('error')}\n{tail}")
                        continue
                    if args.verbose:
                        print(f"    run {i}: {json.dumps(r)}")
                    if i > 0:
                        runs.append(r)
                    if i == 0 and event is not None:
                        with open(log_path, "rb") as f:
                            r0_log = f.read().decode(errors="replace").strip().splitlines()
                        if r0_log:
                            print(f"    its log, first run: {r0_log[-1][:160]}")
                results[name] = runs
    finally:
        kill_all()
        server.shutdown()
    load_after = os.getloadavg()

    sizes = read_sizes(args.sizes)
    rows = []
    header = ["function", "x86_64 MB", "zip MB", "arm64 MB", "zip MB",
              "ready ms min/med/p90", "CPU ms to ready", "1st response ms min/med/p90", "handler ms med",
              "status", "RSS MiB ready/peak", "log B/inv"]
    for name in names:
        runs = results.get(name, [])
        s = sizes.get(name, {})
        row = [name, mb(s.get("x86_64")), mb(s.get("x86_64_zip")), mb(s.get("arm64")), mb(s.get("arm64_zip"))]
        if runs:
            row.append(fmt3(stats([r["ready_ms"] for r in runs])))
            cpu = [r["cpu_ready_ms"] for r in runs if r.get("cpu_ready_ms") is not None]
            row.append(f"{statistics.median(cpu):.1f}" if cpu else "-")
            if "response_ms" in runs[0]:
                row.append(fmt3(stats([r["response_ms"] for r in runs])))
                row.append(f"{statistics.median([r['handler_ms'] for r in runs]):.1f}")
                codes = sorted({str(r.get("status") or r.get("outcome")) for r in runs})
                row.append(",".join(codes))
            else:
                row += ["-", "-", "-"]
            rss = statistics.median([(r["rss_ready_kib"] or 0) / 1024 for r in runs])
            hwm = statistics.median([(r["hwm_kib"] or 0) / 1024 for r in runs])
            row.append(f"{rss:.1f} / {hwm:.1f}")
            row.append(f"{int(statistics.median([r['log_bytes'] for r in runs]))}")
        else:
            row += ["failed"] + ["-"] * 6
        rows.append(row)

    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    print()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print()
    print(f"runs per function: {args.runs} (after 1 warm-up); load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs "
          f"({socket.gethostname()})")
    print(f"LTI_BASE_URL={args.base_url}; AWS endpoint http://127.0.0.1:9 (refused), AWS_MAX_ATTEMPTS=1; "
          + ("CA certificates as this machine has them" if args.system_certs
             else "CA certificates: one bundle, no hashed directory (as on AL2023)"))
    print("targets: binary <= 10 MB, ready <= 30 ms. Events: "
          + "; ".join(f"{n} {EVENTS[n][0]} ({EVENTS[n][1]})" for n in names))
    if args.notes and os.path.exists(args.notes):
        with open(args.notes) as f:
            for note in f.read().strip().splitlines():
                print(note)
    for name, msgs in failures.items():
        print(f"\n{name}: {len(msgs)} failed run(s); first:\n{msgs[0]}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        kill_all()
        sys.exit(130)
