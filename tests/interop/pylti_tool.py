#!/usr/bin/env python3
"""A tiny LTI 1.3 *tool* built on the PyPI library ``pylti1p3`` (Flask).

Used for the reverse check: a platform (ours, or the interop platform) must
be able to launch into an implementation nobody on the team wrote.

    python pylti_tool.py --port P --platform-issuer ISS --client-id CID \
        --deployment-id DID --auth-url URL --jwks-url URL [--token-url URL]

It mirrors our tool's routes, so a platform configured for
``{tool}/lti/login`` + ``{tool}/lti/launch`` works against either:

  GET|POST /lti/login              OIDC login initiation (pylti1p3 FlaskOIDCLogin)
  POST     /lti/launch             validates the launch (pylti1p3
                                   FlaskMessageLaunch); 200 JSON of the
                                   validated launch, or 4xx JSON
                                   {"ok": false, "error", "error_type"}
  GET      /.well-known/jwks.json  this tool's JWKS (key made at start)
  GET      /.last-launch           JSON of the last validated launch
  GET      /health                 "ok"

Besides pylti1p3's checks it adds a few it skips (each reported with
error_type "InteropCheck"): aud must contain the client_id (and azp must be
the client_id when aud is an array), a nonce is accepted once only, iat may
be at most 6 minutes old (and not in the future), exp is required, roles must
be an array and a context claim must have an id, the target_link_uri of the
login and of the id_token must be on this tool.
"""
from __future__ import annotations

import argparse
import secrets
import sys
import threading
import time
import typing as t

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request, session
from werkzeug.serving import make_server

from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.tool_config import ToolConfDict


LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEEWAY = 60
MAX_TOKEN_AGE = 300 + LEEWAY


class InteropCheck(Exception):
    pass


class State:
    base_url = ""
    client_id = ""
    issuer = ""
    tool_conf: ToolConfDict
    last_launch: t.Optional[t.Dict[str, t.Any]] = None
    lock = threading.Lock()


app = Flask(__name__)
# pylti1p3 keeps nonces in the Flask session (a signed cookie); give it a
# name that will not collide with other servers' cookies on 127.0.0.1
app.config.update(SESSION_COOKIE_NAME="pylti_session", SECRET_KEY=secrets.token_hex(32))


def _error(exc: Exception, status: int = 400) -> Response:
    resp = jsonify({"ok": False, "error": str(exc), "error_type": type(exc).__name__})
    resp.status_code = status
    return resp


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/.well-known/jwks.json")
def jwks() -> Response:
    return jsonify(State.tool_conf.get_jwks(iss=State.issuer, client_id=State.client_id))


@app.route("/lti/login", methods=["GET", "POST"])
def login() -> t.Any:
    params = request.args if request.method == "GET" else request.form
    target = params.get("target_link_uri")
    if target and not (target == State.base_url or target.startswith(State.base_url + "/")):
        return _error(InteropCheck(f"target_link_uri {target!r} is not on this tool"))
    try:
        oidc = FlaskOIDCLogin(FlaskRequest(), State.tool_conf)
        return oidc.redirect(f"{State.base_url}/lti/launch")
    except (OIDCException, LtiException) as exc:
        return _error(exc)


def _extra_checks(claims: t.Dict[str, t.Any]) -> None:
    aud = claims.get("aud")
    if isinstance(aud, list):
        if State.client_id not in aud:
            raise InteropCheck("aud does not contain the client_id")
        if len(aud) > 1 and claims.get("azp") != State.client_id:
            raise InteropCheck("aud has several values and azp is not the client_id")
    elif aud != State.client_id:
        raise InteropCheck("aud is not the client_id")
    if "azp" in claims and claims["azp"] != State.client_id:
        raise InteropCheck("azp is not the client_id")
    # pylti1p3 (PyJWT defaults) accepts a token without exp (OIDC Core 2: REQUIRED)
    if not isinstance(claims.get("exp"), (int, float)):
        raise InteropCheck("exp is missing")
    # nor does it check the shape of roles (LTI 1.3 5.3.7: an array) or that a
    # context claim has its id (5.4.1: REQUIRED)
    if not isinstance(claims.get(LTI + "roles"), list):
        raise InteropCheck("roles is not an array")
    ctx = claims.get(LTI + "context")
    if ctx is not None and not (isinstance(ctx, dict) and ctx.get("id")):
        raise InteropCheck("context has no id")
    # pylti1p3 bounds neither iat's age nor target_link_uri
    iat = claims.get("iat")
    now = time.time()
    if not isinstance(iat, (int, float)) or iat < now - MAX_TOKEN_AGE or iat > now + LEEWAY:
        raise InteropCheck("iat is missing, too old or in the future")
    target = claims.get(LTI + "target_link_uri")
    if not isinstance(target, str) or not (
        target == State.base_url or target.startswith(State.base_url + "/")
    ):
        raise InteropCheck(f"target_link_uri {target!r} is not on this tool")
    # pylti1p3 checks the nonce is in the session but never removes it
    key = "lti1p3-nonce-" + str(claims.get("nonce"))
    if session.pop(key, None) is None:
        raise InteropCheck("nonce already used")


@app.post("/lti/launch")
def launch() -> Response:
    try:
        message_launch = FlaskMessageLaunch(FlaskRequest(), State.tool_conf)
        claims = message_launch.get_launch_data()  # runs validate()
        _extra_checks(claims)
    except (LtiException, InteropCheck) as exc:
        return _error(exc)
    except Exception as exc:  # pylti1p3 lets some decoding errors escape
        return _error(exc)
    result = {
        "ok": True,
        "launch_id": message_launch.get_launch_id(),
        "message_type": claims.get(LTI + "message_type"),
        "is_resource_launch": message_launch.is_resource_launch(),
        "access": {
            "student": message_launch.check_student_access(),
            "teacher": message_launch.check_teacher_access(),
            "staff": message_launch.check_staff_access(),
        },
        "has_ags": message_launch.has_ags(),
        "has_nrps": message_launch.has_nrps(),
        "claims": claims,
    }
    with State.lock:
        State.last_launch = result
    return jsonify(result)


@app.get("/.last-launch")
def last_launch() -> Response:
    with State.lock:
        if State.last_launch is None:
            return _error(LookupError("no launch yet"), 404)
        return jsonify(State.last_launch)


def main(argv: t.Optional[t.List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description="pylti1p3 interop tool")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--platform-issuer", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--deployment-id", required=True, action="append",
                    help="may be repeated")
    ap.add_argument("--auth-url", required=True, help="platform OIDC auth endpoint")
    ap.add_argument("--jwks-url", required=True, help="platform JWKS")
    ap.add_argument("--token-url", help="platform token endpoint (default: unused placeholder)")
    args = ap.parse_args(argv)

    State.base_url = f"http://127.0.0.1:{args.port}"
    State.client_id = args.client_id
    State.issuer = args.platform_issuer
    State.tool_conf = ToolConfDict(
        {
            args.platform_issuer: [
                {
                    "default": True,
                    "client_id": args.client_id,
                    "auth_login_url": args.auth_url,
                    "auth_token_url": args.token_url or args.auth_url,
                    "key_set_url": args.jwks_url,
                    "deployment_ids": list(args.deployment_id),
                }
            ]
        }
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    State.tool_conf.set_private_key(args.platform_issuer, private_pem, client_id=args.client_id)
    State.tool_conf.set_public_key(args.platform_issuer, public_pem, client_id=args.client_id)

    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(f"pylti_tool ready on {State.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
