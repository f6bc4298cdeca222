#!/usr/bin/env python3
"""Scans log files for secrets: the last step of tests/run.sh (issue 14, item 5).

    tests/logscan.py [--known FILE] PATH...   # files, or directories (every *.log under them)
    tests/logscan.py --self-test              # proves the scan finds each kind (tests/logscan/)

Reports every finding as `file:line: kind: prefix… (N chars)`, never the secret itself,
then one summary line `logscan: files=F lines=L findings=K`. Exit status: 0 when
nothing was found, 1 on any finding, 2 when nothing could be scanned (a scan of no
file proves nothing) or on a usage error.

What counts as a secret (each rule below says why it is one, and what is excluded):
- a JWT of any kind: id_tokens, the tool's app tokens, client assertions, deep-linking
  JWTs, JWT access tokens; also percent-encoded or inside JSON strings. The payload is
  decoded only to name the kind of token in the report;
- the tool's service keys (`lsk_<id>_<secret>`, shared/core/src/services/keys.rs; the
  dev server's `lsk_dev_<secret>`) and the demo platform's access tokens
  (`demo-at-<random>`, shared/devkit/src/platform/services.rs);
- the state cookie (`__Host-lti-state-<state>`, shared/core/src/login.rs): its name
  carries the state itself;
- `Cookie:` / `Set-Cookie:` headers with a value, `Authorization: Bearer|Basic <value>`,
  `x-api-key: <value>`, and the values of parameters that carry tokens
  (`id_token=`, `"access_token": "…"`, `lti_storage_proof=`, …);
- known values with no fixed format (admin tokens, a chosen service key): given by
  `--known FILE`, one `NAME=value` a line, as tests/run.sh writes it.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import typing as t
import urllib.parse
from pathlib import Path

# A JWT (JWS compact form): base64url header, payload, signature. Every JOSE header is a
# JSON object, so its base64url starts with `eyJ` (`{"`). The header alone (`alg`,
# `kid`, `typ`) is public: a finding needs a payload of some length after the first dot.
# A JWE (5 parts) starts the same way and is found by the same pattern. The signature
# may be empty (an unsecured `alg: none` token still carries its claims).
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*")
# The tool's service keys: `lsk_<id>_<secret>`, the id 12 base64url characters with
# `-` and `_` replaced by `x`, or `dev` for the dev server's own key; the secret 43
# base64url characters. The README's placeholders (`lsk_<id>_<secret>`, `lsk_dev_…`)
# do not match.
SERVICE_KEY = re.compile(r"lsk_[A-Za-z0-9]+_[A-Za-z0-9_-]{16,}")
# The demo platform's access tokens: `demo-at-` and 24 random bytes, base64url.
DEMO_ACCESS_TOKEN = re.compile(r"demo-at-[A-Za-z0-9_-]{16,}")
# The state cookie: its name is the prefix and the state itself, its value
# `<issued_at_ms>.<state>`. Even the name alone gives the state away.
STATE_COOKIE = re.compile(r"__Host-lti-state-[A-Za-z0-9_-]{8,}")
# In this rule and the two after it, a quote may be escaped (`\"`): a JSON document
# logged as a string inside another JSON line.
# A Cookie or Set-Cookie header with a value, as a raw header (`Cookie: a=b`), in a
# Debug-printed header map (`"cookie": "a=b"`) or a JSON object. An expired cookie
# (`name=; Expires=…`, empty value) carries nothing and is not a finding; nor is the
# word in prose ("the cookie: none was sent" has no `name=value`).
COOKIE_HEADER = re.compile(
    r"""(?i)\b(set-cookie|cookie)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?\s*([!#$%&'*+.^`|~\w-]+)=([^;\s"',]+)"""
)
# Authorization with credentials. The README's placeholder `Bearer <token>` does not
# match (no token characters).
AUTHORIZATION = re.compile(
    r"""(?i)\b(?:proxy-)?authorization(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?\s*(bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})"""
)
# Parameters and JSON members that carry a token; their values are secrets whatever
# their format (the interop platform's and pylti1p3's tokens have none). At least 16
# token characters, so prose ("the JWT: signature invalid") and placeholders
# (`<token>`, `…`) are not findings.
PARAMETER = re.compile(
    r"""(?i)["']?\b(id_token|access_token|refresh_token|client_assertion|jwt|"""
    r"""lti_storage_proof|x-api-key|api_key|client_secret|admin_token|service_key)"""
    r"""(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?\s*([A-Za-z0-9._~+/=%-]{16,})"""
)

# Not a rule: the OIDC authorization request's `state`, `nonce`, `login_hint` and
# `lti_message_hint` are front-channel values (in the browser's address bar, in every
# platform's access log: the interop platform's werkzeug log has them). What binds a
# state to the browser is the state cookie or the storage proof, both found above.

# Terminal colours (the dev server's tracing output, werkzeug's): removed before the
# rules run, so `\x1b[3maccess_token\x1b[0m\x1b[2m=\x1b[0m"…"` reads `access_token="…"`.
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

MIN_KNOWN_LEN = 8


class Finding(t.NamedTuple):
    path: str
    line: int
    kind: str
    value: str

    def report(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {redact(self.value)}"


def redact(value: str) -> str:
    """The first characters only (at most 8, and at most a quarter of the value),
    and the length: enough to tell two findings apart, never enough to use."""
    keep = min(8, len(value) // 4)
    return f"{value[:keep]!r}… ({len(value)} chars)"


def b64url_json(part: str) -> t.Optional[t.Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"


def jwt_kind(token: str) -> str:
    """What kind of JWT `token` is, from its claims (the report names it; every kind is
    a finding)."""
    parts = token.split(".")
    claims = b64url_json(parts[1]) if len(parts) > 1 else None
    if not isinstance(claims, dict):
        return "JWT (payload not JSON, encrypted or truncated)"
    message_type = claims.get(LTI + "message_type")
    if message_type == DEEP_LINKING_RESPONSE:
        return "JWT deep-linking response"
    if message_type:
        return f"JWT id_token ({message_type})"
    if "lti" in claims:
        return "JWT app token"
    if claims.get("iss") and claims.get("iss") == claims.get("sub") and "jti" in claims:
        return "JWT client assertion"
    if "scope" in claims:
        return "JWT access token"
    return "JWT"


def variants(line: str) -> t.List[str]:
    """The line, and the line percent-decoded once and twice (a JWT in a URL may have
    its dots encoded, a cookie header in a query string its `=` and `;`)."""
    out = [ANSI.sub("", line)]
    for _ in range(2):
        decoded = urllib.parse.unquote_plus(out[-1])
        if decoded == out[-1]:
            break
        out.append(decoded)
    return out


def scan_line(line: str, known: t.Sequence[t.Tuple[str, str]]) -> t.List[t.Tuple[str, str]]:
    """(kind, value) of every secret in `line`, each value once."""
    found: t.Dict[str, str] = {}

    def add(kind: str, value: str) -> None:
        # A value already found by a more specific rule is reported once, under it.
        if not any(value in v or v in value for v in found):
            found[value] = kind

    for text in variants(line):
        for name, value in known:
            if value in text:
                add(f"known secret {name}", value)
        for m in JWT.finditer(text):
            add(jwt_kind(m.group(0)), m.group(0))
        for m in SERVICE_KEY.finditer(text):
            add("service key", m.group(0))
        for m in DEMO_ACCESS_TOKEN.finditer(text):
            add("demo platform access token", m.group(0))
        for m in STATE_COOKIE.finditer(text):
            add("state cookie (its name carries the state)", m.group(0))
        for m in COOKIE_HEADER.finditer(text):
            add(f"{m.group(1).lower()} header with a value", m.group(2) + "=" + m.group(3))
        for m in AUTHORIZATION.finditer(text):
            add(f"authorization header ({m.group(1).lower()})", m.group(2))
        for m in PARAMETER.finditer(text):
            add(f"{m.group(1).lower()} value", m.group(2))
    return [(kind, value) for value, kind in found.items()]


def log_files(paths: t.Sequence[str]) -> t.List[Path]:
    files: t.List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.log") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return files


def read_known(path: t.Optional[str]) -> t.List[t.Tuple[str, str]]:
    known: t.List[t.Tuple[str, str]] = []
    if not path:
        return known
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        name, sep, value = raw.partition("=")
        if not sep or not name:
            raise ValueError(f"{path}:{n}: expected NAME=value")
        if len(value) < MIN_KNOWN_LEN:
            # A short value would match ordinary text: a secret that short is a bug of
            # its own, say so rather than scan for it.
            raise ValueError(f"{path}:{n}: {name} is shorter than {MIN_KNOWN_LEN} characters")
        known.append((name, value))
    return known


def scan(paths: t.Sequence[str], known_file: t.Optional[str] = None) -> t.Tuple[int, int, t.List[Finding]]:
    known = read_known(known_file)
    files = log_files(paths)
    lines = 0
    findings: t.List[Finding] = []
    for f in files:
        with open(f, "r", encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                lines += 1
                for kind, value in scan_line(line, known):
                    findings.append(Finding(str(f), n, kind, value))
    return len(files), lines, findings


def main(argv: t.Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Scan log files for secrets (0 allowed).")
    parser.add_argument("paths", nargs="*", help="log files, or directories to scan for *.log")
    parser.add_argument("--known", help="a file of NAME=value lines: secrets with no fixed format")
    parser.add_argument("--self-test", action="store_true", help="prove the scan finds each kind")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.paths:
        parser.error("give the log files or directories to scan")
    try:
        files, lines, findings = scan(args.paths, args.known)
    except (OSError, ValueError) as e:
        print(f"logscan: {e}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding.report())
    print(f"logscan: files={files} lines={lines} findings={len(findings)}")
    if files == 0:
        print("logscan: no *.log file to scan: a scan of nothing proves nothing", file=sys.stderr)
        return 2
    return 1 if findings else 0


# --- self-test ---------------------------------------------------------------------
FIXTURES = Path(__file__).resolve().parent / "logscan"

# Every kind the planted fixture holds, with how many lines it is on: each must be found,
# and nothing else.
PLANTED = {
    "JWT id_token (LtiResourceLinkRequest)": 3,  # plain, percent-encoded, in JSON
    "JWT app token": 1,
    "JWT client assertion": 1,
    "JWT deep-linking response": 1,
    "JWT access token": 1,
    "service key": 2,  # lsk_<id>_<secret> and the dev server's lsk_dev_<secret>
    "demo platform access token": 1,
    "access_token value": 3,  # no format: a token answer, coloured tracing, JSON in JSON
    "known secret LTI_E2E_ADMIN_TOKEN": 1,
    "known secret LTI_DEV_ADMIN_TOKEN": 1,
    "cookie header with a value": 2,  # raw header, Debug-printed header map
    "set-cookie header with a value": 1,
    "state cookie (its name carries the state)": 1,
    "authorization header (bearer)": 1,
    "authorization header (basic)": 1,
    "x-api-key value": 1,
    "lti_storage_proof value": 1,
}


def self_test() -> int:
    """The scan run as tests/run.sh runs it, on tests/logscan/: the planted fixture must
    give exactly the planted findings (and exit 1) without printing any planted
    secret; the clean one, realistic lines that only look like secrets, must pass."""
    known = str(FIXTURES / "known-secrets")
    errors: t.List[str] = []

    def run(fixture: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, __file__, "--known", known, str(FIXTURES / fixture)],
            capture_output=True, text=True, check=False,
        )

    planted = run("planted.log")
    counts: t.Dict[str, int] = {}
    for report in planted.stdout.splitlines()[:-1]:
        # `file:line: kind: 'prefix'… (N chars)`; no kind has ": " in it.
        kind = report.split(": ")[1]
        counts[kind] = counts.get(kind, 0) + 1
    if planted.returncode != 1:
        errors.append(f"planted.log: exit status {planted.returncode}, want 1")
    for kind in sorted(set(PLANTED) | set(counts)):
        if counts.get(kind, 0) != PLANTED.get(kind, 0):
            errors.append(f"planted.log: {kind}: found {counts.get(kind, 0)}, want {PLANTED.get(kind, 0)}")
    # The report must not give away what it found: no planted value in the output.
    _, _, findings = scan([str(FIXTURES / "planted.log")], known)
    for f in findings:
        if len(f.value) >= MIN_KNOWN_LEN and f.value in planted.stdout + planted.stderr:
            errors.append(f"planted.log:{f.line}: the report prints the {f.kind} itself")

    clean = run("clean.log")
    if clean.returncode != 0:
        errors.append(f"clean.log: exit status {clean.returncode}, want 0:\n{clean.stdout}{clean.stderr}")

    empty = subprocess.run([sys.executable, __file__, str(FIXTURES / "known-secrets-dir-does-not-exist")],
                           capture_output=True, text=True, check=False)
    if empty.returncode != 2:
        errors.append(f"a missing path: exit status {empty.returncode}, want 2")

    for e in errors:
        print(f"logscan self-test: FAILED: {e}")
    if errors:
        print("logscan self-test: the scanner's report on planted.log was:\n" + planted.stdout)
        return 1
    print(f"logscan self-test: ok ({sum(PLANTED.values())} planted secrets of {len(PLANTED)} kinds found, "
          f"{planted.stdout.splitlines()[-1].split(' ', 1)[1]}; clean fixture: "
          f"{clean.stdout.splitlines()[-1].split(' ', 1)[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
