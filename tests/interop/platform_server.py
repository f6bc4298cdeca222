#!/usr/bin/env python3
"""An independent LTI 1.3 *platform* for interoperability tests.

Built on the PyPI library ``lti1p3platform`` (which builds and signs the
id_token, serves the JWKS and validates service client assertions) with a
small Flask glue, plus the checks that library skips (see HARDENING below).

    python platform_server.py --port P --tool-base-url http://127.0.0.1:T

Endpoints (all on http://127.0.0.1:P):

  GET  /health                     "ok"
  GET  /.well-known/jwks.json      platform JWKS (also /jwks)
  GET  /.config                    registration JSON for our tool's
                                   POST /admin/platforms, plus extra fields
  GET  /launch/start?user=learner|instructor|anonymous
                                   302 to the tool's login initiation URL.
                                   Optional: method=post (auto-submit form
                                   instead of a redirect), roles=<comma list>
                                   (overrides; empty = no role), omit=<comma
                                   list of name,email,context,custom,ags,nrps,
                                   launch_presentation>, profile=canvas (the
                                   claims as Canvas sends them), tamper=<name> (see
                                   TAMPERS, STATE_TAMPERS, FORM_TAMPERS:
                                   produce a deliberately bad launch),
                                   message=deep (an LtiDeepLinkingRequest built by
                                   the library's set_dl, with a JSON object as data).
  GET|POST /auth                   OIDC authorization endpoint: answers an
                                   auto-submitting form POST of id_token+state
                                   to the redirect_uri, or 400 JSON
                                   {"error","check","error_description"}.
  POST /token                      OAuth2 client-credentials token endpoint
                                   (JWT bearer client assertion).
  POST /deep-link-return           the deep_link_return_url: form field JWT, an
                                   LtiDeepLinkingResponse verified by the library's
                                   validate_deeplinking_resp and then with PyJWT
                                   against the tool's JWKS (see deep_link_return);
                                   200 JSON {"ok", "items", "claims"} or 400 JSON
                                   {"error","check","error_description"}.
  GET|POST /ags/<ctx>/lineitems    AGS 2.0 on lti1p3platform's AssignmentsGradesService
  GET|PUT|DELETE /ags/<ctx>/lineitems/<id>/lineitem   (handlers over an in-memory
  POST /ags/<ctx>/lineitems/<id>/lineitem/scores       gradebook, hardened: see
  GET  /ags/<ctx>/lineitems/<id>/lineitem/results      "AGS and NRPS" below)
  GET  /nrps/<ctx>/memberships     NRPS 2.0 on NamesRoleProvisioningService: a roster
                                   of 25, 10 a page, Link: <...>; rel=next
  GET  /.gradebook                 line items and every score received, as JSON
  GET  /.services                  token requests answered and every service call
  GET  /.expected/<user>           claims of the last id_token sent for <user>
  GET  /.expected                  {user: claims} for all users
  GET  /.tampers                   list of supported tamper names
"""
from __future__ import annotations

import argparse
import base64
import copy
import functools
import hashlib
import hmac
import html
import json
import secrets
import sys
import threading
import time
import typing as t
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import make_server

from lti1p3platform.exceptions import (
    LineItemNotFoundException,
    LtiDeepLinkingResponseException,
    LtiException,
    MissingRequiredClaim,
    PreflightRequestValidationException,
    UnsupportedGrantType,
)
from lti1p3platform.membership import Context
from lti1p3platform.response import Response as LtiResponse
from lti1p3platform.response import generate_next_link
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import AssignmentsGradesService, NamesRoleProvisioningService
import lti1p3platform.registration as _lti_registration
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LtiRequest
from lti1p3platform.request import TRequest

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HINT_TTL = 300  # seconds a login initiation stays valid
CLOCK_LEEWAY = 60
MAX_ASSERTION_LIFETIME = 3600
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
# what this platform's deep-linking requests accept
DL_ACCEPT_TYPES = ["ltiResourceLink", "link", "html"]
DL_RESPONSE_MAX_LIFETIME = 300  # LTI-CHECKLIST: the response's exp - iat <= 5 min

USERS: t.Dict[str, t.Dict[str, t.Any]] = {
    "learner": {
        "sub": "plat-user-learner-0001",
        "name": "Lena Learner",
        "given_name": "Lena",
        "family_name": "Learner",
        "email": "lena.learner@example.edu",
        "roles": [ROLE + "membership#Learner", ROLE + "institution/person#Student"],
    },
    "instructor": {
        "sub": "plat-user-instructor-0002",
        "name": "Ian Instructor",
        "given_name": "Ian",
        "family_name": "Instructor",
        "email": "ian.instructor@example.edu",
        "roles": [ROLE + "membership#Instructor", ROLE + "institution/person#Faculty"],
    },
    "anonymous": {"sub": "plat-user-anon-0003", "roles": []},
}

CONTEXT = {
    "id": "ctx-interop-101",
    "label": "INTEROP101",
    "title": "Interoperability 101",
    "type": [ROLE + "course#CourseOffering"],
}
RESOURCE_LINK = {
    "id": "rl-interop-quiz-3",
    "title": "Chapter 3 quiz",
    "description": "A quiz launched from the interop platform",
}
CUSTOM = {"chapter": "3", "mode": "quiz"}


# --------------------------------------------------------------------------
# Speed: lti1p3platform parses the platform's PEM private key twice per id_token
# (jwcrypto for the kid, PyJWT to sign), and cryptography checks an RSA private
# key on every load: ~100 ms per launch. Same keys every time, so parse once.
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _private_key(pem: str) -> t.Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


_library_get_jwk = _lti_registration.Registration.get_jwk


@functools.lru_cache(maxsize=16)
def _jwk_of(pem: str) -> str:
    return json.dumps(_library_get_jwk(pem))


def _cached_get_jwk(cls: t.Any, key_pem: str) -> t.Dict[str, t.Any]:
    return t.cast(t.Dict[str, t.Any], json.loads(_jwk_of(key_pem)))


def _cached_jwt_encode(payload: t.Any, key: t.Any, algorithm: str = "HS256",
                       headers: t.Any = None, json_encoder: t.Any = None) -> str:
    if isinstance(key, str) and "PRIVATE KEY" in key:
        key = _private_key(key)
    return jwt.encode(payload, key, algorithm, headers, json_encoder)


_lti_registration.Registration.get_jwk = classmethod(_cached_get_jwk)  # type: ignore[assignment]
_lti_registration.jwt_encode = _cached_jwt_encode  # type: ignore[assignment]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _new_rsa_pem() -> t.Tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    return private_pem, public_pem


class Settings:
    def __init__(self, args: argparse.Namespace) -> None:
        self.port: int = args.port
        self.base_url = f"http://127.0.0.1:{args.port}"
        self.issuer: str = args.issuer or self.base_url
        self.client_id: str = args.client_id
        self.deployment_id: str = args.deployment_id
        tool = args.tool_base_url.rstrip("/")
        self.tool_base_url = tool
        self.tool_login_url: str = args.tool_login_url or f"{tool}/lti/login"
        self.tool_launch_url: str = args.tool_launch_url or f"{tool}/lti/launch"
        self.target_link_uri: str = args.target_link_uri or self.tool_launch_url
        self.tool_jwks_url: str = args.tool_jwks_url or f"{tool}/.well-known/jwks.json"
        # redirect_uris registered for the tool: only these may receive an id_token
        self.redirect_uris: t.List[str] = [self.tool_launch_url] + list(
            args.extra_redirect_uri or []
        )
        self.auth_url = f"{self.base_url}/auth"
        self.token_url = f"{self.base_url}/token"
        self.jwks_url = f"{self.base_url}/.well-known/jwks.json"
        self.private_pem, self.public_pem = _new_rsa_pem()
        # a second key, never published: used by the "other_key" tamper
        self.other_private_pem, _ = _new_rsa_pem()


S: Settings = t.cast(Settings, None)  # set in main()


# --------------------------------------------------------------------------
# lti1p3platform glue: request wrapper, platform config, OIDC login, launch
# --------------------------------------------------------------------------


class FlaskLtiRequest(LtiRequest):
    def build_metadata(self, req: t.Any) -> TRequest:
        return {
            "method": req.method,
            "form_data": req.form.to_dict(),
            "get_data": req.args.to_dict(),
            "headers": req.headers,
            "content_type": req.content_type,
            "path": req.path,
            "json": req.get_json(silent=True),
        }


# The library caches the tool key set inside the Registration forever and its
# config object keeps per-request JWT state, so we build a config per request
# and keep our own (refreshable) cache of the tool's JWKS here.
_tool_keyset_lock = threading.Lock()
_tool_keyset: t.Dict[str, t.Any] = {"value": None}


class PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: t.Any) -> None:
        reg = (
            Registration()
            .set_iss(S.issuer)
            .set_client_id(S.client_id)
            .set_deployment_id(S.deployment_id)
            .set_launch_url(S.target_link_uri)
            .set_oidc_login_url(S.tool_login_url)
            .set_tool_key_set_url(S.tool_jwks_url)
            .set_deeplink_launch_url(S.target_link_uri)
            .set_platform_private_key(S.private_pem)
            .set_platform_public_key(S.public_pem)
        )
        with _tool_keyset_lock:
            if _tool_keyset["value"]:
                reg.set_tool_key_set(_tool_keyset["value"])
        self._registration = reg

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        assert self._registration is not None
        return self._registration

    def remember_tool_keyset(self) -> None:
        assert self._registration is not None
        with _tool_keyset_lock:
            _tool_keyset["value"] = self._registration.get_tool_key_set()

    def forget_tool_keyset(self) -> None:
        assert self._registration is not None
        with _tool_keyset_lock:
            _tool_keyset["value"] = None
        self._registration.set_tool_key_set(None)  # type: ignore[arg-type]


class FlaskOIDCLogin(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: t.Any) -> None:
        self._lti_message_hint = kwargs["lti_message_hint"]

    def get_redirect(self, url: str) -> Response:
        return redirect(url, code=302)


def auto_submit_form(action: str, fields: t.Dict[str, str], title: str) -> str:
    """An HTML page that POSTs ``fields`` to ``action`` as soon as it loads.

    (lti1p3platform's own template is rendered by a Jinja2 environment
    without autoescape, so the tool-supplied redirect_uri would go into the
    page unescaped; we render our own, escaped.)"""
    inputs = "\n".join(
        f'      <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}" />'
        for k, v in fields.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8" /><title>{html.escape(title)}</title></head>
  <body>
    <form method="POST" action="{html.escape(action)}" id="autoform">
{inputs}
      <noscript><button type="submit">Continue</button></noscript>
    </form>
    <script>document.getElementById("autoform").submit();</script>
  </body>
</html>
"""


class FlaskMessageLaunch(LTIAdvantageMessageLaunchAbstract):
    """Launch for one pending login; claims are set in prepare_launch()."""

    def __init__(self, lti_request: LtiRequest, conf: PlatformConf, pending: t.Dict[str, t.Any]):
        super().__init__(lti_request, conf)
        self._pending = pending

    def prepare_launch(self, preflight_response: t.Dict[str, t.Any]) -> None:
        p = self._pending
        user = USERS[p["user"]]
        omit: t.Set[str] = p["omit"]
        roles = p["roles"] if p["roles"] is not None else user["roles"]
        anonymous = p["user"] == "anonymous"
        self.set_user_data(
            user_id=user["sub"],
            lis_roles=list(roles),
            full_name=None if anonymous or "name" in omit else user["name"],
            email_address=None if anonymous or "email" in omit else user["email"],
        )
        if not anonymous and "name" not in omit:
            # the library's set_user_data has no given/family name
            self.set_extra_claims(
                {"given_name": user["given_name"], "family_name": user["family_name"]}
            )
        if p.get("deep"):
            # a deep-linking request has no resource link; its data is opaque to the
            # tool and a JSON object here (once refused by our tool: issue 10)
            self.set_dl(
                f"{S.base_url}/deep-link-return",
                title="Interoperability 101 content",
                description="Pick content for Interoperability 101",
                accept_types=set(DL_ACCEPT_TYPES),
                extra_data=p["deep"]["data"],
            )
        else:
            self.set_resource_link_claim(
                RESOURCE_LINK["id"],
                description=RESOURCE_LINK["description"],
                title=RESOURCE_LINK["title"],
            )
        if "context" not in omit:
            self.set_launch_context_claim(
                CONTEXT["id"],
                context_types=list(CONTEXT["type"]),
                context_title=CONTEXT["title"],
                context_label=CONTEXT["label"],
            )
        if "custom" not in omit:
            self.set_custom_parameters_claim(dict(CUSTOM))
        if "launch_presentation" not in omit:
            self.set_launch_presentation_claim(
                document_target="iframe", return_url=f"{S.base_url}/return"
            )
        ctx = CONTEXT["id"]
        if "ags" not in omit:
            # both URLs set: with lineitem alone the library mutates the scope
            # list while iterating over it (drops every other scope)
            self.set_ags(
                lineitems_url=f"{S.base_url}/ags/{ctx}/lineitems",
                lineitem_url=f"{S.base_url}/ags/{ctx}/lineitems/li-quiz-3/lineitem",
            )
        if "nrps" not in omit:
            self.set_nrps(f"{S.base_url}/nrps/{ctx}/memberships")
        self.set_extra_claims(
            {
                LTI + "tool_platform": {
                    "guid": "interop-platform-" + str(S.port),
                    "name": "lti1p3platform interop platform",
                    "product_family_code": "lti1p3platform",
                    "version": "0.1.8",
                }
            }
        )

    def generate_launch_request(self) -> t.Any:
        data = super().generate_launch_request()
        if self._pending.get("profile") == "canvas":
            data = dict(data)
            header = jwt.get_unverified_header(data["id_token"])
            claims = jwt.decode(data["id_token"], options={"verify_signature": False})
            data["id_token"] = _sign(canvas_like(claims, self._pending["user"]), header)
        tamper = self._pending.get("tamper")
        if tamper:
            data = dict(data)
            data["id_token"], data["state"] = apply_tamper(
                tamper, data["id_token"], data["state"]
            )
        return data

    def render_launch_form(self, launch_data: t.Dict[str, t.Any], **kwargs: t.Any) -> Response:
        fields = {"id_token": launch_data["id_token"]}
        tamper = self._pending.get("tamper")
        if tamper == "no_id_token":
            fields = {}
        elif tamper == "platform_error":
            # an OIDC error response (OIDC Core 3.1.2.6) instead of a token
            fields = {"error": "login_required", "error_description": "The user is not logged in."}
        if launch_data.get("state") is not None:
            fields["state"] = launch_data["state"]
        _record_expected(self._pending["user"], launch_data["id_token"])
        body = auto_submit_form(launch_data["launch_url"], fields, "LTI launch")
        return Response(body, status=200, mimetype="text/html")


# --------------------------------------------------------------------------
# profile=canvas: the claims as Canvas sends them (shape and size), from
# Canvas's documented id_token: its extra sub-object members
# (validation_context, errors), lis, picture, locale, legacy LTI 1.1 ids,
# placement, five AGS scopes, institution + system roles, custom variables.
# --------------------------------------------------------------------------

CANVAS_CUSTOM = {
    "canvas_course_id": "$Canvas.course.id", "canvas_user_id": "$Canvas.user.id",
    "canvas_user_login_id": "$Canvas.user.loginId", "canvas_user_sis_id": "$Canvas.user.sisSourceId",
    "canvas_course_sis_id": "$Canvas.course.sisSourceId", "canvas_section_ids": "$Canvas.course.sectionIds",
    "canvas_enrollment_state": "$Canvas.enrollment.enrollmentState",
    "canvas_assignment_id": "$Canvas.assignment.id", "canvas_assignment_title": "$Canvas.assignment.title",
    "canvas_api_domain": "$Canvas.api.domain", "person_timezone": "$Person.address.timezone",
}


def canvas_like(claims: t.Dict[str, t.Any], user: str) -> t.Dict[str, t.Any]:
    c = copy.deepcopy(claims)
    extra = {"validation_context": None, "errors": {"errors": {}}}
    for name in ("resource_link", "context", "tool_platform", "launch_presentation"):
        if LTI + name in c:
            c[LTI + name].update(extra)
    if LTI + "launch_presentation" in c:
        c[LTI + "launch_presentation"].update(
            locale="en", height=400, width=800,
            return_url=f"{S.base_url}/courses/1234/external_content/success/external_tool_redirect")
    ags = "https://purl.imsglobal.org/spec/lti-ags/"
    if ags + "claim/endpoint" in c:
        c[ags + "claim/endpoint"].update(extra, scope=[
            ags + "scope/lineitem", ags + "scope/lineitem.readonly", ags + "scope/result.readonly",
            ags + "scope/score", "https://canvas.instructure.com/lti-ags/progress/scope/show"])
    nrps = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
    if nrps in c:
        c[nrps].update(extra)
    sourced = hashlib.sha1(f"{user}-{S.port}".encode()).hexdigest()
    if c.get(LTI + "roles"):
        c[LTI + "roles"] = list(c[LTI + "roles"]) + [ROLE + "system/person#User"]
    if LTI + "custom" in c:
        c[LTI + "custom"] = dict(c[LTI + "custom"], **{k: v.replace("$", "sub-") for k, v in CANVAS_CUSTOM.items()})
    c.update({
        "picture": "https://canvas.instructure.com/images/messages/avatar-50.png",
        "locale": "en",
        LTI + "lis": {"person_sourcedid": f"SIS-{user}-0042", "course_offering_sourcedid": "SIS-COURSE-INTEROP-101",
                      **extra},
        LTI + "lti11_legacy_user_id": sourced,
        LTI + "lti1p1": {"user_id": sourced, **extra},
        "errors": {"errors": {}},
        "https://www.instructure.com/placement": "assignment_selection",
    })
    return c


# --------------------------------------------------------------------------
# Tampering: deliberately bad launches for rejection tests
# --------------------------------------------------------------------------


def _sign(claims: t.Dict[str, t.Any], header: t.Dict[str, t.Any], key: str = "") -> str:
    return jwt.encode(claims, _private_key(key or S.private_pem), algorithm="RS256", headers=header)


def _claims_tamper(fn: t.Callable[[t.Dict[str, t.Any]], None]) -> t.Callable[..., str]:
    def run(header: t.Dict[str, t.Any], claims: t.Dict[str, t.Any], token: str) -> str:
        fn(claims)
        return _sign(claims, header)

    return run


def _pop(*names: str) -> t.Callable[[t.Dict[str, t.Any]], None]:
    def fn(c: t.Dict[str, t.Any]) -> None:
        for n in names:
            c.pop(n, None)

    return fn


def _set(name: str, value: t.Any) -> t.Callable[[t.Dict[str, t.Any]], None]:
    def fn(c: t.Dict[str, t.Any]) -> None:
        c[name] = value() if callable(value) else value

    return fn


def _no_resource_link_id(c: t.Dict[str, t.Any]) -> None:
    c.get(LTI + "resource_link", {}).pop("id", None)


def _context_without_id(c: t.Dict[str, t.Any]) -> None:
    c.setdefault(LTI + "context", dict(CONTEXT)).pop("id", None)


def _aud_array(azp: t.Optional[str]) -> t.Callable[[t.Dict[str, t.Any]], None]:
    def fn(c: t.Dict[str, t.Any]) -> None:
        c["aud"] = [S.client_id, "some-other-client"]
        if azp is None:
            c.pop("azp", None)
        else:
            c["azp"] = azp

    return fn


def _times(iat: int, exp: int) -> t.Callable[[t.Dict[str, t.Any]], None]:
    def fn(c: t.Dict[str, t.Any]) -> None:
        now = int(time.time())
        c["iat"], c["exp"] = now + iat, now + exp

    return fn


def _not_lti(c: t.Dict[str, t.Any]) -> None:
    for k in list(c):
        if k.startswith("https://purl.imsglobal.org/"):
            del c[k]


def _alg_none(header: t.Dict[str, t.Any], claims: t.Dict[str, t.Any], token: str) -> str:
    h = dict(header, alg="none")
    return f"{_b64url(json.dumps(h).encode())}.{_b64url(json.dumps(claims).encode())}."


def _alg_hs256(header: t.Dict[str, t.Any], claims: t.Dict[str, t.Any], token: str) -> str:
    # the classic key-confusion attack: HMAC keyed with the public key PEM
    h = dict(header, alg="HS256")
    signing_input = f"{_b64url(json.dumps(h).encode())}.{_b64url(json.dumps(claims).encode())}"
    sig = hmac.new(S.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(sig)}"


def _bad_sig(header: t.Dict[str, t.Any], claims: t.Dict[str, t.Any], token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{_b64url(bytes(raw))}"


TokenTamper = t.Callable[[t.Dict[str, t.Any], t.Dict[str, t.Any], str], str]
TAMPERS: t.Dict[str, TokenTamper] = {
    # header / signature
    "no_kid": lambda h, c, tok: _sign(c, {k: v for k, v in h.items() if k != "kid"}),
    "unknown_kid": lambda h, c, tok: _sign(c, dict(h, kid="kid-nobody-has")),
    "other_key": lambda h, c, tok: _sign(c, h, S.other_private_pem),
    "bad_sig": _bad_sig,
    "alg_none": _alg_none,
    "alg_hs256": _alg_hs256,
    "not_jwt": lambda h, c, tok: "this-is-not-a-jwt",
    "not_lti": _claims_tamper(_not_lti),
    # standard claims
    "wrong_iss": _claims_tamper(_set("iss", "https://unknown-platform.example")),
    "wrong_aud": _claims_tamper(_set("aud", "some-other-client")),
    "aud_array": _claims_tamper(lambda c: _aud_array(azp=S.client_id)(c)),
    "aud_array_no_azp": _claims_tamper(_aud_array(azp=None)),
    "aud_array_wrong_azp": _claims_tamper(_aud_array(azp="some-other-client")),
    "expired": _claims_tamper(_times(iat=-900, exp=-300)),
    "iat_future": _claims_tamper(_times(iat=3600, exp=3900)),
    "iat_past": _claims_tamper(_times(iat=-3600, exp=300)),
    "no_sub": _claims_tamper(_pop("sub")),
    "no_nonce": _claims_tamper(_pop("nonce")),
    "wrong_nonce": _claims_tamper(_set("nonce", lambda: "nonce-" + secrets.token_hex(8))),
    # LTI claims
    "no_version": _claims_tamper(_pop(LTI + "version")),
    "wrong_version": _claims_tamper(_set(LTI + "version", "1.2.0")),
    "no_message_type": _claims_tamper(_pop(LTI + "message_type")),
    "unknown_message_type": _claims_tamper(_set(LTI + "message_type", "LtiUnknownRequest")),
    "no_deployment_id": _claims_tamper(_pop(LTI + "deployment_id")),
    "unknown_deployment_id": _claims_tamper(_set(LTI + "deployment_id", "deployment-nobody-registered")),
    "no_roles": _claims_tamper(_pop(LTI + "roles")),
    "no_resource_link_id": _claims_tamper(_no_resource_link_id),
    "wrong_target_link_uri": _claims_tamper(_set(LTI + "target_link_uri", "https://elsewhere.example/launch")),
    # more standard-claim and claim-shape cases
    "no_iss": _claims_tamper(_pop("iss")),
    "no_aud": _claims_tamper(_pop("aud", "azp")),
    "no_exp": _claims_tamper(_pop("exp")),
    "no_iat": _claims_tamper(_pop("iat")),
    "roles_not_list": _claims_tamper(_set(LTI + "roles", ROLE + "membership#Learner")),
    "context_without_id": _claims_tamper(_context_without_id),
    "deep_linking_without_settings": _claims_tamper(_set(LTI + "message_type", "LtiDeepLinkingRequest")),
}
# tampers of the form posted to the tool rather than of the id_token
STATE_TAMPERS = {"no_state", "wrong_state"}
FORM_TAMPERS = {"no_id_token", "platform_error"}


def apply_tamper(name: str, id_token: str, state: str) -> t.Tuple[str, t.Optional[str]]:
    if name == "no_state":
        return id_token, None
    if name == "wrong_state":
        return id_token, "state-" + secrets.token_hex(12)
    if name in FORM_TAMPERS:
        return id_token, state  # see FlaskMessageLaunch.render_launch_form
    header = jwt.get_unverified_header(id_token)
    claims = jwt.decode(id_token, options={"verify_signature": False})
    return TAMPERS[name](header, claims, id_token), state


# --------------------------------------------------------------------------
# State: pending logins, expected claims, used jtis
# --------------------------------------------------------------------------

_lock = threading.Lock()
_pending: t.Dict[str, t.Dict[str, t.Any]] = {}  # by lti_message_hint
_expected: t.Dict[str, t.Dict[str, t.Any]] = {}  # by user
_used_jti: t.Dict[str, float] = {}  # jti -> exp
_deep_links: t.Dict[str, t.Dict[str, t.Any]] = {}  # data["session"] -> pending request
_dl_nonces: t.Dict[str, float] = {}  # nonces of accepted deep-linking responses -> exp


def _record_expected(user: str, id_token: str) -> None:
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        claims = {"_raw_id_token": id_token}
    with _lock:
        _expected[user] = claims


def bad_request(check: str, description: str, status: int = 400, error: str = "invalid_request") -> Response:
    resp = jsonify({"error": error, "check": check, "error_description": description})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --------------------------------------------------------------------------
# Flask app
# --------------------------------------------------------------------------

app = Flask(__name__)
# JSON answers keep members in their order (/.expected shows the id_token's claims as
# signed: the deep-linking test checks that `data` comes back in the same order).
app.json.sort_keys = False  # type: ignore[attr-defined]


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/.well-known/jwks.json")
@app.get("/jwks")
def jwks() -> Response:
    return jsonify(PlatformConf().get_jwks())


@app.get("/.config")
def config() -> Response:
    return jsonify(
        {
            # the body of our tool's POST /admin/platforms
            "issuer": S.issuer,
            "clientId": S.client_id,
            "name": "lti1p3platform interop platform",
            "authLoginUrl": S.auth_url,
            "authTokenUrl": S.token_url,
            "keysetUrl": S.jwks_url,
            "deploymentId": S.deployment_id,
            # extra facts for tests
            "toolLoginUrl": S.tool_login_url,
            "redirectUris": S.redirect_uris,
            "targetLinkUri": S.target_link_uri,
            "toolJwksUrl": S.tool_jwks_url,
        }
    )


@app.get("/.tampers")
def tampers() -> Response:
    return jsonify(sorted(set(TAMPERS) | STATE_TAMPERS | FORM_TAMPERS))


@app.get("/.expected")
def expected_all() -> Response:
    with _lock:
        return jsonify(copy.deepcopy(_expected))


@app.get("/.expected/<user>")
def expected(user: str) -> Response:
    with _lock:
        claims = copy.deepcopy(_expected.get(user))
    if claims is None:
        return bad_request("user", f"no id_token sent for {user!r} yet", status=404, error="not_found")
    return jsonify(claims)


@app.get("/launch/start")
def launch_start() -> Response:
    user = request.args.get("user", "")
    if user not in USERS:
        return bad_request("user", "user must be one of " + ", ".join(USERS))
    tamper = request.args.get("tamper") or None
    if tamper and tamper not in TAMPERS and tamper not in STATE_TAMPERS | FORM_TAMPERS:
        return bad_request("tamper", f"unknown tamper {tamper!r}")
    roles = None
    if "roles" in request.args:
        roles = [r for r in request.args["roles"].split(",") if r]
    omit = {o for o in request.args.get("omit", "").split(",") if o}
    profile = request.args.get("profile") or None
    if profile not in (None, "canvas"):
        return bad_request("profile", "profile must be canvas")
    method = request.args.get("method", "get").lower()
    message = request.args.get("message") or None
    if message not in (None, "deep"):
        return bad_request("message", "message must be deep")
    deep = None
    if message == "deep":
        data = {
            "session": secrets.token_urlsafe(12),
            "platform": "lti1p3platform interop platform",
            "nested": {"list": [1, "two", None, True], "empty": {}},
        }
        deep = {"data": data}
        with _lock:
            _deep_links[data["session"]] = {"data": data, "user": user, "created": time.time(), "used": False}

    login_hint = f"lh-{user}-{secrets.token_urlsafe(12)}"
    message_hint = f"mh-{secrets.token_urlsafe(18)}"
    with _lock:
        now = time.time()
        for k in [k for k, v in _pending.items() if v["created"] + HINT_TTL < now]:
            del _pending[k]
        _pending[message_hint] = {
            "user": user,
            "login_hint": login_hint,
            "roles": roles,
            "omit": omit,
            "profile": profile,
            "tamper": tamper,
            "deep": deep,
            "created": now,
            "used": False,
        }

    login = FlaskOIDCLogin(FlaskLtiRequest(request), PlatformConf())
    login.set_lti_message_hint(lti_message_hint=message_hint)
    if method == "post":
        url = login.prepare_preflight_url(login_hint)
        parts = urlsplit(url)
        action = parts._replace(query="").geturl()
        body = auto_submit_form(action, dict(parse_qsl(parts.query)), "LTI login")
        return Response(body, status=200, mimetype="text/html")
    return login.initiate_login(login_hint)


def _auth_checks(params: t.Dict[str, str]) -> t.Optional[Response]:
    """The checks lti1p3platform skips (it only asserts nonce, state,
    redirect_uri present and client_id equal)."""
    scope = params.get("scope", "")
    if "openid" not in scope.split():
        return bad_request("scope", f"scope must contain openid, got {scope!r}", error="invalid_scope")
    if params.get("response_type") != "id_token":
        return bad_request("response_type", "response_type must be id_token", error="unsupported_response_type")
    if params.get("response_mode") != "form_post":
        return bad_request("response_mode", "response_mode must be form_post")
    if params.get("prompt") != "none":
        return bad_request("prompt", "prompt must be none")
    if params.get("client_id") != S.client_id:
        return bad_request("client_id", "client_id is not the registered one", error="unauthorized_client")
    if params.get("redirect_uri") not in S.redirect_uris:
        return bad_request("redirect_uri", "redirect_uri is not registered for this tool")
    if not params.get("nonce"):
        return bad_request("nonce", "nonce is required")
    if not params.get("state"):
        return bad_request("state", "state is required")
    return None


@app.route("/auth", methods=["GET", "POST"])
def auth() -> Response:
    lti_request = FlaskLtiRequest(request)
    params = dict(lti_request.get_data or lti_request.form_data)
    failed = _auth_checks(params)
    if failed is not None:
        return failed
    message_hint = params.get("lti_message_hint", "")
    with _lock:
        pending = _pending.get(message_hint)
        if pending is None:
            return bad_request("lti_message_hint", "lti_message_hint is not one this platform sent (or it expired)")
        if pending["used"]:
            return bad_request("lti_message_hint", "lti_message_hint was already used")
        if pending["created"] + HINT_TTL < time.time():
            return bad_request("lti_message_hint", "lti_message_hint expired")
        if params.get("login_hint") != pending["login_hint"]:
            return bad_request("login_hint", "login_hint does not match the one sent with this lti_message_hint")
        pending["used"] = True
        pending = dict(pending)

    launch = FlaskMessageLaunch(lti_request, PlatformConf(), pending)
    try:
        return launch.lti_launch()
    except PreflightRequestValidationException:
        return bad_request("preflight", "lti1p3platform rejected the authentication request")


def _token_error(check: str, description: str, error: str = "invalid_client", status: int = 401) -> Response:
    return bad_request(check, description, status=status, error=error)


@app.post("/token")
def token() -> Response:
    with _lock:
        _services_log["token_requests"] += 1
    form = request.form.to_dict()
    for field in ("grant_type", "client_assertion_type", "client_assertion", "scope"):
        if not form.get(field):
            return _token_error(field, f"{field} is required", "invalid_request", 400)
    if form["grant_type"] != "client_credentials":
        return _token_error("grant_type", "only client_credentials is supported", "unsupported_grant_type", 400)
    if form["client_assertion_type"] != JWT_BEARER:
        return _token_error("client_assertion_type", "client_assertion_type must be jwt-bearer", "invalid_request", 400)
    assertion = form["client_assertion"]

    conf = PlatformConf()
    conf.get_registration()
    # 1. the library: kid+alg present, key found in the tool JWKS, RS256
    #    signature (and exp, but only when present). It skips aud.
    claims: t.Optional[t.Dict[str, t.Any]] = None
    for attempt in range(2):
        try:
            claims = conf.tool_validate_and_decode(assertion)
            conf.remember_tool_keyset()
            break
        except LtiException as exc:
            # the library caches the tool JWKS forever: refetch once on a miss
            if "Unable to find public key" in str(exc) and attempt == 0:
                conf.forget_tool_keyset()
                continue
            return _token_error("assertion", f"client assertion rejected: {exc}")
        except jwt.InvalidTokenError as exc:
            return _token_error("assertion", f"client assertion rejected: {exc}")
    assert claims is not None

    # 2. hardening
    now = time.time()
    if claims.get("iss") != S.client_id or claims.get("sub") != S.client_id:
        return _token_error("iss_sub", "assertion iss and sub must both be the client_id")
    aud = claims.get("aud")
    # exactly the token URL: the string, or a list of that one URL (RFC 7523 3.3)
    if aud != S.token_url and aud != [S.token_url]:
        return _token_error("aud", f"assertion aud must be exactly the token URL {S.token_url}")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        return _token_error("exp", "assertion exp is required")
    if exp + CLOCK_LEEWAY < now:
        return _token_error("exp", "assertion expired")
    if exp > now + MAX_ASSERTION_LIFETIME + CLOCK_LEEWAY:
        return _token_error("exp", "assertion lifetime too long")
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, (int, float)) or iat > now + CLOCK_LEEWAY):
        return _token_error("iat", "assertion iat is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return _token_error("jti", "assertion jti is required")
    with _lock:
        for k in [k for k, v in _used_jti.items() if v + CLOCK_LEEWAY < now]:
            del _used_jti[k]
        if jti in _used_jti:
            return _token_error("jti", "assertion jti was already used (replay)")
        _used_jti[jti] = float(exp)

    # 3. the library issues the access token (filters scopes, signs it)
    try:
        result = conf.get_access_token(form)
    except (MissingRequiredClaim, UnsupportedGrantType, LtiException, jwt.InvalidTokenError) as exc:
        return _token_error("assertion", f"rejected by lti1p3platform: {exc}")
    if not result.get("scope"):
        return _token_error("scope", "none of the requested scopes is offered", "invalid_scope", 400)
    with _lock:
        _services_log["tokens_issued"] += 1
    resp = jsonify(result)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --------------------------------------------------------------------------
# AGS and NRPS: lti1p3platform's service handlers (AssignmentsGradesService,
# NamesRoleProvisioningService) over an in-memory gradebook and roster. The
# library leaves storage to the platform and skips checks; the glue adds them:
#
# - the access token: the library's validate_token raises on a token that is not
#   its JWT (an HTTP 500 from its decorator) and accepts ANY of the service's
#   scopes for every call (a result.readonly token could post scores or create
#   line items) -> the glue verifies the token itself first and requires the
#   scope of the operation (401 invalid_token / 403 insufficient_scope);
# - paging: the page number from the query string is a str, and the library
#   computes `page + 1` for the next link (TypeError on page 2); NRPS writes the
#   next link only when the tool sent `limit`, so a tool that does not is served
#   page 1 alone; query parameters go to the storage methods as **kwargs (an
#   unknown one raises) -> the glue turns page/limit into ints (400 if not
#   numbers), sets a default limit of 10, and passes only the parameters the
#   spec defines;
# - the results' next link is built from the launch's lineitem URL, not the
#   line item asked about -> a service object per line item;
# - scores and line items are not validated ("TODO: validate score") -> the glue
#   checks the media type, userId a member, timestamp, both progress values,
#   scoreGiven with scoreMaximum, label and scoreMaximum > 0; an older score than
#   the user's latest is refused (409), the same one again changes nothing.
# --------------------------------------------------------------------------

AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = AGS_SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = AGS_SCOPE + "lineitem.readonly"
SCOPE_RESULT = AGS_SCOPE + "result.readonly"
SCOPE_SCORE = AGS_SCOPE + "score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
PAGE_SIZE = 10
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


def _roster() -> t.List[t.Dict[str, t.Any]]:
    """25 members: the launch users, then generated ones; full role URIs, some
    short names (as Moodle sends them), a teaching assistant."""
    members: t.List[t.Dict[str, t.Any]] = []
    for key, user in USERS.items():
        member: t.Dict[str, t.Any] = {
            "user_id": user["sub"],
            "roles": [r for r in user["roles"] if r.startswith(ROLE + "membership")],
            "status": "Active",
        }
        if key != "anonymous":
            member.update(name=user["name"], given_name=user["given_name"],
                          family_name=user["family_name"], email=user["email"])
        members.append(member)
    given = ["Ana", "Bo", "Cyd", "Dara", "Eli", "Fen", "Gil", "Hal", "Ines", "Jo", "Kit"]
    family = ["Abara", "Berg", "Costa", "Dunn", "Ekwe", "Frost", "Gale"]
    for i in range(1, 23):
        roles = [ROLE + "membership#Learner"]
        if i % 5 == 0:
            roles = ["Learner"]
        if i == 7:
            roles = [ROLE + "membership#Instructor", ROLE + "membership/Instructor#TeachingAssistant"]
        g, f = given[i % len(given)], family[i % len(family)]
        members.append({
            "user_id": f"plat-student-{i:02d}", "roles": roles,
            "status": "Inactive" if i == 13 else "Active",
            "name": f"{g} {f}", "given_name": g, "family_name": f,
            "email": f"{g.lower()}.{f.lower()}@example.edu",
        })
    return members


ROSTER = _roster()
_line_items: t.Dict[str, t.Dict[str, t.Any]] = {}  # by URL, in creation order
_scores: t.Dict[str, t.List[t.Dict[str, t.Any]]] = {}  # line item URL -> scores received
_services_log: t.Dict[str, t.Any] = {"token_requests": 0, "tokens_issued": 0, "calls": []}
_next_line_item = [0]


def lineitems_url() -> str:
    return f"{S.base_url}/ags/{CONTEXT['id']}/lineitems"


def lineitem_url(key: str) -> str:
    return f"{lineitems_url()}/{key}/lineitem"


def memberships_url() -> str:
    return f"{S.base_url}/nrps/{CONTEXT['id']}/memberships"


def _init_gradebook() -> None:
    url = lineitem_url("li-quiz-3")
    _line_items[url] = {"id": url, "label": RESOURCE_LINK["title"], "scoreMaximum": 10,
                        "resourceLinkId": RESOURCE_LINK["id"], "resourceId": "quiz-3", "tag": "quiz"}
    _scores[url] = []


def _timestamp(value: t.Any) -> t.Optional[float]:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def _number(value: t.Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


class Gradebook(AssignmentsGradesService):
    """The library's AGS handlers over the in-memory gradebook; line item ids are
    their URLs."""

    def __init__(self, lti_request: LtiRequest, conf: "PlatformConf", item_url: t.Optional[str] = None) -> None:
        super().__init__(lti_request, conf, lineitems_url=lineitems_url(), lineitem_url=item_url)

    def find_lineitems(self, page: int = 1, limit: t.Optional[int] = None, line_item_id: t.Optional[str] = None,
                       resource_link_id: t.Optional[str] = None, resource_id: t.Optional[str] = None,
                       tag: t.Optional[str] = None) -> t.Any:
        with _lock:
            items = [dict(i) for i in _line_items.values()
                     if (resource_link_id is None or i.get("resourceLinkId") == resource_link_id)
                     and (resource_id is None or i.get("resourceId") == resource_id)
                     and (tag is None or i.get("tag") == tag)]
        size = limit or PAGE_SIZE
        start = (page - 1) * size
        return {"content": items[start:start + size], "has_next": start + size < len(items)}

    def find_lineitem(self, line_item_id: str) -> t.Any:
        with _lock:
            item = _line_items.get(line_item_id)
        if item is None:
            raise LineItemNotFoundException(line_item_id)
        return dict(item)

    def create_lineitem(self, creation_data: t.Any) -> t.Any:
        with _lock:
            _next_line_item[0] += 1
            url = lineitem_url(f"li-{_next_line_item[0]}")
            item = {k: v for k, v in creation_data.items() if k != "id"}
            item["id"] = url
            _line_items[url] = item
            _scores[url] = []
        return dict(item)

    def update_lineitem(self, update_data: t.Any) -> t.Any:
        with _lock:
            if update_data["id"] not in _line_items:
                raise LineItemNotFoundException(update_data["id"])
            _line_items[update_data["id"]] = dict(update_data)
        return dict(update_data)

    def delete_lineitem(self, line_item_id: str) -> None:
        with _lock:
            if _line_items.pop(line_item_id, None) is None:
                raise LineItemNotFoundException(line_item_id)
            _scores.pop(line_item_id, None)

    def update_score(self, line_item_id: str, score: t.Any) -> UpdateScoreStatus:
        at = _timestamp(score["timestamp"])
        with _lock:
            if line_item_id not in _line_items:
                raise LineItemNotFoundException(line_item_id)
            mine = [s for s in _scores[line_item_id] if s["userId"] == score["userId"]]
            latest = max((_timestamp(s["timestamp"]) or 0 for s in mine), default=None)
            if latest is not None and at is not None and at < latest:
                return UpdateScoreStatus.OLD_TIMESTAMP
            if score in mine:
                return UpdateScoreStatus.SUCCESS  # the same score again: a retry
            _scores[line_item_id].append(dict(score))
            return UpdateScoreStatus.SUCCESS if mine else UpdateScoreStatus.CREATED

    def get_results(self, line_item_id: str, page: int = 1, limit: t.Optional[int] = None,
                    user_id: t.Optional[str] = None) -> t.Any:
        with _lock:
            if line_item_id not in _line_items:
                raise LineItemNotFoundException(line_item_id)
            latest: t.Dict[str, t.Dict[str, t.Any]] = {}
            for s in _scores[line_item_id]:
                if user_id is None or s["userId"] == user_id:
                    latest[s["userId"]] = s  # scores arrive in timestamp order
        results = []
        for uid, s in latest.items():
            r: t.Dict[str, t.Any] = {"id": f"{line_item_id}/results/{uid}", "scoreOf": line_item_id, "userId": uid}
            if "scoreGiven" in s:
                r.update(resultScore=s["scoreGiven"], resultMaximum=s["scoreMaximum"])
            if s.get("comment"):
                r["comment"] = s["comment"]
            results.append(r)
        size = limit or PAGE_SIZE
        start = (page - 1) * size
        return {"content": results[start:start + size], "has_next": start + size < len(results)}


class Roster(NamesRoleProvisioningService):
    def __init__(self, lti_request: LtiRequest, conf: "PlatformConf") -> None:
        super().__init__(lti_request, conf, context_memberships_url=memberships_url())

    def get_context_by_id(self) -> Context:
        return Context(id=CONTEXT["id"], label=CONTEXT["label"], title=CONTEXT["title"])

    def is_resource_link_valid(self, context_id: str, resource_link_id: str) -> bool:
        return context_id == CONTEXT["id"] and resource_link_id == RESOURCE_LINK["id"]

    def get_member_data_page(self, page: int = 1, limit: t.Optional[int] = None, role: t.Optional[str] = None,
                             since: t.Optional[str] = None, rlid: t.Optional[str] = None) -> t.Any:
        def short(r: str) -> str:
            return r.rsplit("#", 1)[-1] if r.startswith(ROLE + "membership") else r

        members = [copy.deepcopy(m) for m in ROSTER
                   if role is None or any(short(r) == short(role) for r in m["roles"])]
        size = limit or PAGE_SIZE
        start = (page - 1) * size
        return {"content": members[start:start + size], "has_next": start + size < len(members)}


def _service_error(status: int, error: str, description: str) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = "Bearer"
    return resp


def _authorized(scopes: t.Sequence[str]) -> t.Optional[Response]:
    """The glue's own check of the access token: signed by this platform, ours,
    unexpired, carrying one of `scopes`. None when the call may go on."""
    with _lock:
        _services_log["calls"].append({"method": request.method, "path": request.full_path.rstrip("?")})
    auth = request.headers.get("Authorization", "").split()
    if len(auth) != 2 or auth[0].lower() != "bearer":
        return _service_error(401, "invalid_token", "an access token from /token is required")
    try:
        claims = jwt.decode(auth[1], S.public_pem, algorithms=["RS256"], options={"require": ["exp", "iss"]})
    except jwt.InvalidTokenError as exc:
        return _service_error(401, "invalid_token", f"the access token is refused: {exc}")
    if claims.get("iss") != S.issuer or claims.get("sub") != S.client_id:
        return _service_error(401, "invalid_token", "the access token is not this platform's for this tool")
    granted = str(claims.get("scopes", "")).split()
    if not any(s in granted for s in scopes):
        return _service_error(403, "insufficient_scope", "the access token lacks " + " or ".join(scopes))
    return None


def _query(allowed: t.Sequence[str]) -> t.Union[t.Dict[str, t.Any], Response]:
    """The query parameters the spec defines, page and limit as ints."""
    params: t.Dict[str, t.Any] = {k: v for k, v in request.args.items() if k in allowed}
    for name, default in (("page", 1), ("limit", PAGE_SIZE)):
        value = params.get(name, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            return _service_error(400, "invalid_request", f"{name} must be a number")
        if number < 1:
            return _service_error(400, "invalid_request", f"{name} must be at least 1")
        params[name] = min(number, 100) if name == "limit" else number
    return params


def _lti_request(get_data: t.Optional[t.Dict[str, t.Any]] = None) -> LtiRequest:
    lti_request = FlaskLtiRequest(request)
    if get_data is not None:
        lti_request.request["get_data"] = get_data
    return lti_request


def _respond(resp: LtiResponse) -> Response:
    """The library's Response as HTTP, as its Django adapter does: a page's content
    as the body, its next page as a Link header (`<...>; rel=next`)."""
    if not 200 <= resp.code < 300:
        return _service_error(resp.code, "invalid_request" if resp.code < 500 else "server_error", resp.message)
    result = resp.result
    next_url = None
    if isinstance(result, dict):
        next_url = result.get("next")
        data = result["content"] if "content" in result else {k: v for k, v in result.items() if k != "next"}
    else:
        data = result
    body = "" if data is None else json.dumps(data)
    out = Response(body, status=resp.code, headers={"Content-Type": resp.media_type} if body else {})
    if next_url:
        out.headers["Link"] = generate_next_link(next_url)
    return out


def _service_conf() -> "PlatformConf":
    conf = PlatformConf()
    conf.get_registration()
    return conf


def _line_item_body(url: t.Optional[str] = None) -> t.Union[t.Dict[str, t.Any], Response]:
    if request.mimetype != MEDIA_LINEITEM:
        return _service_error(415, "invalid_request", f"a line item is sent as {MEDIA_LINEITEM}")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _service_error(400, "invalid_request", "the body must be a JSON object")
    if not isinstance(body.get("label"), str) or not body["label"].strip():
        return _service_error(400, "invalid_request", "label is required")
    if not _number(body.get("scoreMaximum")) or body["scoreMaximum"] <= 0:
        return _service_error(400, "invalid_request", "scoreMaximum must be a number greater than 0")
    if body.get("resourceLinkId") not in (None, RESOURCE_LINK["id"]):
        return _service_error(400, "invalid_request", "resourceLinkId is not a resource link of this context")
    if url is not None and body.get("id") not in (None, url):
        return _service_error(400, "invalid_request", "id must be the line item's URL")
    return body


def _known_context(ctx: str) -> t.Optional[Response]:
    return None if ctx == CONTEXT["id"] else _service_error(404, "not_found", "no such context")


@app.route("/ags/<ctx>/lineitems", methods=["GET", "POST"])
def ags_lineitems(ctx: str) -> Response:
    refused = _known_context(ctx) or _authorized(
        [SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY] if request.method == "GET" else [SCOPE_LINEITEM])
    if refused:
        return refused
    if request.method == "GET":
        params = _query(["page", "limit", "resource_link_id", "resource_id", "tag"])
        if isinstance(params, Response):
            return params
        return _respond(Gradebook(_lti_request(params), _service_conf()).handle_get_lineitems())
    body = _line_item_body()
    if isinstance(body, Response):
        return body
    return _respond(Gradebook(_lti_request(), _service_conf()).handle_create_lineitem())


@app.route("/ags/<ctx>/lineitems/<key>/lineitem", methods=["GET", "PUT", "DELETE"])
def ags_lineitem(ctx: str, key: str) -> Response:
    refused = _known_context(ctx) or _authorized(
        [SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY] if request.method == "GET" else [SCOPE_LINEITEM])
    if refused:
        return refused
    url = lineitem_url(key)
    service = Gradebook(_lti_request(), _service_conf(), url)
    if request.method == "GET":
        return _respond(service.handle_get_lineitem(url))
    if request.method == "DELETE":
        return _respond(service.handle_delete_lineitem(url))
    body = _line_item_body(url)
    if isinstance(body, Response):
        return body
    return _respond(service.handle_update_lineitem(url))


@app.post("/ags/<ctx>/lineitems/<key>/lineitem/scores")
def ags_scores(ctx: str, key: str) -> Response:
    refused = _known_context(ctx) or _authorized([SCOPE_SCORE])
    if refused:
        return refused
    if request.mimetype != MEDIA_SCORE:
        return _service_error(415, "invalid_request", f"a score is sent as {MEDIA_SCORE}")
    score = request.get_json(silent=True)
    if not isinstance(score, dict):
        return _service_error(400, "invalid_request", "the body must be a JSON object")
    if not any(m["user_id"] == score.get("userId") for m in ROSTER):
        return _service_error(400, "invalid_request", "userId is not a member of this context")
    if _timestamp(score.get("timestamp")) is None:
        return _service_error(400, "invalid_request", "timestamp must be an ISO 8601 date-time with a zone")
    if score.get("activityProgress") not in ACTIVITY or score.get("gradingProgress") not in GRADING:
        return _service_error(400, "invalid_request", "activityProgress and gradingProgress must be AGS values")
    if "scoreGiven" in score:
        if not _number(score["scoreGiven"]) or score["scoreGiven"] < 0:
            return _service_error(400, "invalid_request", "scoreGiven must be a number, at least 0")
        if not _number(score.get("scoreMaximum")) or score["scoreMaximum"] <= 0:
            return _service_error(400, "invalid_request", "scoreMaximum (> 0) is required with scoreGiven")
    url = lineitem_url(key)
    resp = Gradebook(_lti_request(), _service_conf(), url).handle_update_score(url)
    if 200 <= resp.code < 300:
        resp.result = None  # the library sets the line item media type on an empty answer
        resp.code = 204 if resp.code == 200 else resp.code
    return _respond(resp)


@app.get("/ags/<ctx>/lineitems/<key>/lineitem/results")
def ags_results(ctx: str, key: str) -> Response:
    refused = _known_context(ctx) or _authorized([SCOPE_RESULT])
    if refused:
        return refused
    params = _query(["page", "limit", "user_id"])
    if isinstance(params, Response):
        return params
    url = lineitem_url(key)
    return _respond(Gradebook(_lti_request(params), _service_conf(), url).handle_get_results(url))


@app.get("/nrps/<ctx>/memberships")
def nrps_memberships(ctx: str) -> Response:
    refused = _known_context(ctx) or _authorized([SCOPE_NRPS])
    if refused:
        return refused
    params = _query(["page", "limit", "role", "rlid"])
    if isinstance(params, Response):
        return params
    return _respond(Roster(_lti_request(params), _service_conf()).handle_get_members())


@app.get("/.gradebook")
def gradebook_json() -> Response:
    with _lock:
        return jsonify({"lineItems": list(_line_items.values()),
                        "scores": copy.deepcopy(_scores), "roster": ROSTER})


@app.get("/.services")
def services_json() -> Response:
    with _lock:
        return jsonify(copy.deepcopy(_services_log))


def _dl_refused(check: str, description: str) -> Response:
    return bad_request(check, description, error="invalid_deep_linking_response")


@app.post("/deep-link-return")
def deep_link_return() -> Response:
    """The deep_link_return_url: verifies the tool's LtiDeepLinkingResponse.

    1. lti1p3platform's own validate_deeplinking_resp: kid and alg present, the key
       found in the tool's JWKS, RS256 signature, exp (only when present), message
       type LtiDeepLinkingResponse, item types among the accepted ones. It checks
       neither iss nor aud (verify_aud is off), nor nonce, deployment or data.
    2. PyJWT against the tool's JWKS fetched over HTTP now, and the rest of the
       checklist: iss = our client_id, aud = our issuer, exp/iat/nonce required,
       exp - iat <= 300, a nonce never seen, our deployment, version 1.3.0, and data
       equal to what one of our pending requests sent (each answered once).
    """
    token = request.form.get("JWT", "")
    if not token or len(request.form.getlist("JWT")) != 1:
        return _dl_refused("JWT", "exactly one JWT form field is required")

    conf = PlatformConf()
    conf.get_registration()
    conf.set_accepted_deeplinking_types(DL_ACCEPT_TYPES)
    items: t.Optional[t.List[t.Dict[str, t.Any]]] = None
    for attempt in range(2):
        try:
            items = conf.validate_deeplinking_resp({"JWT": token})
            conf.remember_tool_keyset()
            break
        except LtiDeepLinkingResponseException as exc:
            return _dl_refused("library", f"lti1p3platform refused the response: {exc}")
        except LtiException as exc:
            # the library caches the tool JWKS forever: refetch once on a miss
            if "Unable to find public key" in str(exc) and attempt == 0:
                conf.forget_tool_keyset()
                continue
            return _dl_refused("signature", f"lti1p3platform refused the response: {exc}")
        except jwt.InvalidTokenError as exc:
            return _dl_refused("signature", f"lti1p3platform refused the response: {exc}")
    assert items is not None

    try:
        key = jwt.PyJWKClient(S.tool_jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=S.issuer,
            issuer=S.client_id,
            leeway=CLOCK_LEEWAY,
            options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
        )
    except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
        return _dl_refused("claims", f"PyJWT refused the response: {type(exc).__name__}: {exc}")
    if not isinstance(claims["aud"], str):
        return _dl_refused("aud", "aud must be our issuer alone")
    if not 0 < claims["exp"] - claims["iat"] <= DL_RESPONSE_MAX_LIFETIME:
        return _dl_refused("exp", f"exp - iat must be within {DL_RESPONSE_MAX_LIFETIME} s")
    if claims.get(LTI + "deployment_id") != S.deployment_id:
        return _dl_refused("deployment_id", "deployment_id is not this platform's deployment")
    if claims.get(LTI + "message_type") != "LtiDeepLinkingResponse":
        return _dl_refused("message_type", "message_type must be LtiDeepLinkingResponse")
    if claims.get(LTI + "version") != "1.3.0":
        return _dl_refused("version", "version must be 1.3.0")
    nonce = claims["nonce"]
    if not isinstance(nonce, str) or not nonce:
        return _dl_refused("nonce", "nonce must be a non-empty string")
    if claims.get(DL + "content_items", []) != items:
        return _dl_refused("content_items", "the library and PyJWT read different items")
    data = claims.get(DL + "data")
    now = time.time()
    with _lock:
        for k in [k for k, v in _dl_nonces.items() if v + CLOCK_LEEWAY < now]:
            del _dl_nonces[k]
        if nonce in _dl_nonces:
            return _dl_refused("nonce", "nonce was already used (replayed response)")
        _dl_nonces[nonce] = float(claims["exp"])
        session = data.get("session") if isinstance(data, dict) else None
        pending = _deep_links.get(session) if isinstance(session, str) else None
        if pending is None or pending["data"] != data:
            return _dl_refused("data", "data is not what one of our deep-linking requests sent")
        if pending["used"]:
            return _dl_refused("data", "this deep-linking request was answered already")
        if pending["created"] + HINT_TTL * 12 < now:
            return _dl_refused("data", "this deep-linking request is over an hour old")
        pending["used"] = True
    resp = jsonify({"ok": True, "items": items, "claims": claims, "user": pending["user"]})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@app.get("/return")
def launch_return() -> Response:
    return jsonify({"returned": True, "params": request.args.to_dict()})


def main(argv: t.Optional[t.List[str]] = None) -> None:
    global S
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tool-base-url", required=True, help="e.g. http://127.0.0.1:3000")
    ap.add_argument("--issuer", help="default: this server's base URL")
    ap.add_argument("--client-id", default="interop-client-1")
    ap.add_argument("--deployment-id", default="interop-deployment-1")
    ap.add_argument("--tool-login-url", help="default {tool}/lti/login")
    ap.add_argument("--tool-launch-url", help="registered redirect_uri, default {tool}/lti/launch")
    ap.add_argument("--extra-redirect-uri", action="append", help="another registered redirect_uri")
    ap.add_argument("--target-link-uri", help="default: the tool launch URL")
    ap.add_argument("--tool-jwks-url", help="default {tool}/.well-known/jwks.json")
    S = Settings(ap.parse_args(argv))
    _init_gradebook()
    server = make_server("127.0.0.1", S.port, app, threaded=True)
    print(f"platform_server ready on {S.base_url} (tool {S.tool_base_url})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
