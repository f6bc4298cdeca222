"""The interop pieces on their own, before any test of our Rust tool.

* our hardened lti1p3platform platform launches into an independent tool
  (pylti1p3): the platform is itself standard;
* each hardening check of its OIDC auth endpoint rejects a bad request;
* every tamper mode yields a launch that the pylti1p3 tool rejects;
* its token endpoint checks client assertions (aud, exp, jti replay, ...);
* its AGS and NRPS services (lti1p3platform's handlers, hardened in the glue)
  take only tokens with the operation's scope, validate scores and line items,
  and page the roster and results with working next links;
* browser.py handles redirects, cookies and auto-submitting forms.
"""
from __future__ import annotations

import json
import threading
import time
import typing as t
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from browser import Browser, CookieJar, Hop, find_auto_submit_form
from conftest import CLIENT_ID, DEPLOYMENT_ID, Pair
from servers import free_port, start_platform

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def start_url(pair: Pair, user: str, **params: str) -> str:
    return f"{pair.platform.url}/launch/start?" + urlencode(dict(user=user, **params))


def query(url: str) -> t.Dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# --------------------------------------------------------------------------
# launches into pylti1p3
# --------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["learner", "instructor", "anonymous"])
def test_launch_into_pylti1p3(platform_and_pylti_tool: Pair, user: str) -> None:
    pair = platform_and_pylti_tool
    resp, hops = Browser().get(start_url(pair, user))
    assert resp.status_code == 200, (resp.text, hops)
    body = resp.json()
    assert body["ok"] is True

    # the hops: start -> tool login -> platform auth -> form POST to tool launch
    assert [(h.reason, h.method, h.status) for h in hops] == [
        ("start", "GET", 302),
        ("redirect", "GET", 302),
        ("redirect", "GET", 200),
        ("auto-form", "POST", 200),
    ]
    login = query(hops[1].url)
    assert hops[1].url.startswith(f"{pair.tool.url}/lti/login?")
    assert login["iss"] == pair.config["issuer"]
    assert login["client_id"] == CLIENT_ID
    assert login["lti_deployment_id"] == DEPLOYMENT_ID
    assert login["target_link_uri"] == f"{pair.tool.url}/lti/launch"
    assert login["login_hint"] and login["lti_message_hint"]
    auth = query(hops[2].url)
    assert auth["login_hint"] == login["login_hint"]
    assert auth["lti_message_hint"] == login["lti_message_hint"]
    assert hops[3].url == f"{pair.tool.url}/lti/launch"
    assert sorted(k for k, _ in hops[3].sent or []) == ["id_token", "state"]

    claims = body["claims"]
    expected = requests.get(f"{pair.platform.url}/.expected/{user}", timeout=5).json()
    assert claims == expected  # what pylti1p3 validated is what the platform sent

    assert claims["iss"] == pair.config["issuer"]
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == auth["nonce"]
    assert claims[LTI + "version"] == "1.3.0"
    assert claims[LTI + "message_type"] == "LtiResourceLinkRequest"
    assert claims[LTI + "deployment_id"] == DEPLOYMENT_ID
    assert claims[LTI + "target_link_uri"] == f"{pair.tool.url}/lti/launch"
    assert claims[LTI + "resource_link"]["id"] and claims[LTI + "resource_link"]["title"]
    ctx = claims[LTI + "context"]
    assert set(ctx) >= {"id", "label", "title", "type"}
    assert ctx["type"] == [ROLE + "course#CourseOffering"]
    assert claims[LTI + "custom"] == {"chapter": "3", "mode": "quiz"}
    assert claims[LTI + "launch_presentation"]["document_target"] == "iframe"
    assert claims[AGS]["lineitems"].startswith(pair.platform.url)
    assert SCORE in claims[AGS]["scope"]
    assert claims[NRPS]["context_memberships_url"].startswith(pair.platform.url)
    assert claims[NRPS]["service_versions"] == ["2.0"]
    assert claims["sub"]

    roles = claims[LTI + "roles"]
    if user == "anonymous":
        assert roles == []
        for k in ("name", "given_name", "family_name", "email"):
            assert k not in claims
        assert body["access"] == {"student": False, "teacher": False, "staff": False}
    else:
        assert all(r.startswith("http://purl.imsglobal.org/vocab/lis/v2/") for r in roles)
        assert claims["name"] and claims["given_name"] and claims["family_name"]
        assert "@" in claims["email"]
    if user == "learner":
        assert ROLE + "membership#Learner" in roles
        assert body["access"]["student"] is True
    if user == "instructor":
        assert ROLE + "membership#Instructor" in roles
        assert any("/institution/" in r for r in roles)
        assert body["access"]["teacher"] is True


def test_login_initiation_by_form_post(platform_and_pylti_tool: Pair) -> None:
    pair = platform_and_pylti_tool
    resp, hops = Browser().get(start_url(pair, "learner", method="post"))
    assert resp.status_code == 200, resp.text
    assert (hops[1].reason, hops[1].method) == ("auto-form", "POST")
    assert hops[1].url == f"{pair.tool.url}/lti/login"
    assert dict(hops[1].sent or [])["client_id"] == CLIENT_ID


def test_launch_variants_roles_and_omissions(platform_and_pylti_tool: Pair) -> None:
    pair = platform_and_pylti_tool
    resp, _ = Browser().get(start_url(pair, "learner", roles="", omit="name,email,context"))
    assert resp.status_code == 200, resp.text
    claims = resp.json()["claims"]
    assert claims[LTI + "roles"] == []
    assert LTI + "context" not in claims
    assert not {"name", "given_name", "family_name", "email"} & set(claims)
    resp, _ = Browser().get(start_url(pair, "instructor", roles="Instructor,http://example.com/role#X"))
    assert resp.json()["claims"][LTI + "roles"] == ["Instructor", "http://example.com/role#X"]


def test_auth_request_may_be_a_form_post(platform_and_pylti_tool: Pair) -> None:
    pair = platform_and_pylti_tool
    b = Browser()
    # stop once the tool has sent us on to the platform's auth endpoint
    _, hops = b.get(start_url(pair, "learner"), stop=lambda h, r: "/auth?" in (h.location or ""))
    auth_url = hops[-1].location or ""
    resp, hops2 = b.post(auth_url.split("?")[0], query(auth_url), initiator=hops[-1].url)
    assert resp.status_code == 200, resp.text
    assert resp.json()["ok"] is True


def test_unknown_user_is_rejected(platform_and_pylti_tool: Pair) -> None:
    r = requests.get(f"{platform_and_pylti_tool.platform.url}/launch/start?user=root", timeout=5)
    assert r.status_code == 400 and r.json()["check"] == "user"


# --------------------------------------------------------------------------
# hardening of the platform's auth endpoint
# --------------------------------------------------------------------------


def _set(k: str, v: str) -> t.Callable[[t.Dict[str, str], Pair], None]:
    def fn(q: t.Dict[str, str], pair: Pair) -> None:
        q[k] = v

    return fn


def _drop(k: str) -> t.Callable[[t.Dict[str, str], Pair], None]:
    def fn(q: t.Dict[str, str], pair: Pair) -> None:
        q.pop(k, None)

    return fn


def _append(k: str, suffix: str) -> t.Callable[[t.Dict[str, str], Pair], None]:
    def fn(q: t.Dict[str, str], pair: Pair) -> None:
        q[k] = q.get(k, "") + suffix

    return fn


AUTH_TAMPERS = {
    "redirect_uri_foreign": (_set("redirect_uri", "http://127.0.0.1:9/lti/launch"), "redirect_uri"),
    "redirect_uri_extra_query": (_append("redirect_uri", "?next=/x"), "redirect_uri"),
    "redirect_uri_missing": (_drop("redirect_uri"), "redirect_uri"),
    "login_hint_altered": (_append("login_hint", "x"), "login_hint"),
    "login_hint_missing": (_drop("login_hint"), "login_hint"),
    "lti_message_hint_altered": (_append("lti_message_hint", "x"), "lti_message_hint"),
    "lti_message_hint_missing": (_drop("lti_message_hint"), "lti_message_hint"),
    "scope_not_openid": (_set("scope", "profile"), "scope"),
    "response_type_code": (_set("response_type", "code"), "response_type"),
    "response_mode_query": (_set("response_mode", "query"), "response_mode"),
    "response_mode_missing": (_drop("response_mode"), "response_mode"),
    "prompt_login": (_set("prompt", "login"), "prompt"),
    "client_id_other": (_set("client_id", "someone-else"), "client_id"),
    "nonce_missing": (_drop("nonce"), "nonce"),
    "state_missing": (_drop("state"), "state"),
}


@pytest.mark.parametrize("name", sorted(AUTH_TAMPERS))
def test_auth_hardening_rejects(platform_and_pylti_tool: Pair, name: str) -> None:
    pair = platform_and_pylti_tool
    mutate, check = AUTH_TAMPERS[name]

    def on_request(method: str, url: str, fields: t.Any) -> t.Any:
        if urlsplit(url).path == "/auth" and url.startswith(pair.platform.url):
            q = query(url)
            mutate(q, pair)
            return method, url.split("?")[0] + "?" + urlencode(q), fields
        return None

    resp, hops = Browser().get(start_url(pair, "learner"), on_request=on_request)
    assert resp.status_code == 400, (resp.text, hops)
    body = resp.json()
    assert body["check"] == check, body
    assert body["error_description"]
    assert urlsplit(hops[-1].url).path == "/auth"  # the tool never got an id_token


def test_auth_request_cannot_be_replayed(platform_and_pylti_tool: Pair) -> None:
    pair = platform_and_pylti_tool
    b = Browser()
    resp, hops = b.get(start_url(pair, "learner"))
    assert resp.status_code == 200
    auth_hop = next(h for h in hops if urlsplit(h.url).path == "/auth")
    again = requests.get(auth_hop.url, timeout=5, allow_redirects=False)
    assert again.status_code == 400
    assert again.json()["check"] == "lti_message_hint"


def test_hints_of_two_launches_cannot_be_mixed(platform_and_pylti_tool: Pair) -> None:
    pair = platform_and_pylti_tool
    stop = lambda h, r: "/auth?" in (h.location or "")  # noqa: E731
    _, hops_a = Browser().get(start_url(pair, "learner"), stop=stop)
    _, hops_b = Browser().get(start_url(pair, "instructor"), stop=stop)
    qa, qb = query(hops_a[-1].location or ""), query(hops_b[-1].location or "")
    qa["lti_message_hint"] = qb["lti_message_hint"]  # learner's login_hint, instructor's message
    r = requests.get(f"{pair.platform.url}/auth?" + urlencode(qa), timeout=5)
    assert r.status_code == 400 and r.json()["check"] == "login_hint"


# --------------------------------------------------------------------------
# tamper modes: each must make an independent tool reject the launch
# --------------------------------------------------------------------------


def _tampers(pair: Pair) -> t.List[str]:
    return requests.get(f"{pair.platform.url}/.tampers", timeout=5).json()


ACCEPTED_TAMPERS = {"aud_array"}  # aud array with azp = client_id is valid


def test_every_tamper_mode_is_rejected_by_pylti1p3(platform_and_pylti_tool: Pair) -> None:
    pair = platform_and_pylti_tool
    names = _tampers(pair)
    assert len(names) >= 25
    outcomes: t.Dict[str, t.Tuple[int, str]] = {}
    for name in names:
        resp, hops = Browser().get(start_url(pair, "learner", tamper=name))
        outcomes[name] = (resp.status_code, resp.text[:160])
        assert urlsplit(hops[-1].url).path == "/lti/launch", (name, hops)
    wrong = {
        n: o
        for n, o in outcomes.items()
        if (o[0] == 200) != (n in ACCEPTED_TAMPERS) or o[0] not in (200, 400)
    }
    assert not wrong, json.dumps(wrong, indent=1)


def test_unknown_tamper_is_refused(platform_and_pylti_tool: Pair) -> None:
    r = requests.get(start_url(platform_and_pylti_tool, "learner", tamper="nope"), timeout=5)
    assert r.status_code == 400 and r.json()["check"] == "tamper"


# --------------------------------------------------------------------------
# the token endpoint, against a throwaway tool key served from a local JWKS
# --------------------------------------------------------------------------


class ToolKeys:
    """A throwaway tool key pair, its JWKS served on 127.0.0.1 by a thread."""

    def __init__(self) -> None:
        self.rotate()
        keys = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = json.dumps(keys.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "tool-kid-" + uuid.uuid4().hex[:8]

    def jwks(self) -> t.Dict[str, t.Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def assertion(self, token_url: str, *, key: t.Any = None, kid: t.Optional[str] = None,
                  drop: t.Sequence[str] = (), **claims: t.Any) -> str:
        now = int(time.time())
        body: t.Dict[str, t.Any] = {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": token_url,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        body.update(claims)
        for k in drop:
            body.pop(k, None)
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TokenSetup(t.NamedTuple):
    keys: ToolKeys
    platform_url: str
    token_url: str


@pytest.fixture(scope="module")
def token_setup(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[TokenSetup]:
    keys = ToolKeys()
    port = free_port()
    platform = start_platform(
        port, "http://127.0.0.1:9", "--client-id", CLIENT_ID, "--tool-jwks-url", keys.url,
        log_dir=tmp_path_factory.mktemp("token-logs"),
    )
    try:
        platform.wait_ready()
        yield TokenSetup(keys, platform.url, f"{platform.url}/token")
    finally:
        platform.stop()
        keys.close()


def token_request(setup: TokenSetup, assertion: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": f"{SCORE} {NRPS_SCOPE}",
    }
    form.update(overrides)
    return requests.post(setup.token_url, data=form, timeout=10)


def test_token_endpoint_issues_access_token(token_setup: TokenSetup) -> None:
    s = token_setup
    r = token_request(s, s.keys.assertion(s.token_url),
                      scope=f"{SCORE} https://example.com/not-a-scope {NRPS_SCOPE}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == 3600
    assert body["scope"].split() == [SCORE, NRPS_SCOPE]
    assert r.headers.get("Cache-Control") == "no-store"
    # the access token is signed by the platform key published in its JWKS
    jwks = requests.get(f"{s.platform_url}/.well-known/jwks.json", timeout=5).json()
    pub = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwks["keys"][0]))
    claims = jwt.decode(body["access_token"], pub, algorithms=["RS256"])
    assert claims["sub"] == CLIENT_ID and SCORE in claims["scopes"]


def test_token_assertion_replay_is_rejected(token_setup: TokenSetup) -> None:
    s = token_setup
    assertion = s.keys.assertion(s.token_url)
    assert token_request(s, assertion).status_code == 200
    r = token_request(s, assertion)
    assert r.status_code == 401 and r.json()["check"] == "jti"


@pytest.mark.parametrize(
    "case, make, check",
    [
        ("aud_other", lambda s: s.keys.assertion(s.token_url, aud="https://elsewhere.example/token"), "aud"),
        ("aud_issuer", lambda s: s.keys.assertion(s.token_url, aud=s.platform_url), "aud"),
        ("aud_missing", lambda s: s.keys.assertion(s.token_url, drop=["aud"]), "aud"),
        ("aud_list_with_another", lambda s: s.keys.assertion(s.token_url, aud=[s.token_url, "https://x.example"]),
         "aud"),
        ("aud_trailing_slash", lambda s: s.keys.assertion(s.token_url, aud=s.token_url + "/"), "aud"),
        ("expired", lambda s: s.keys.assertion(s.token_url, iat=int(time.time()) - 900,
                                               exp=int(time.time()) - 300), ("assertion", "exp")),
        ("exp_missing", lambda s: s.keys.assertion(s.token_url, drop=["exp"]), "exp"),
        ("exp_too_far", lambda s: s.keys.assertion(s.token_url, exp=int(time.time()) + 86400), "exp"),
        ("iat_future", lambda s: s.keys.assertion(s.token_url, iat=int(time.time()) + 3600), ("assertion", "iat")),
        ("jti_missing", lambda s: s.keys.assertion(s.token_url, drop=["jti"]), "jti"),
        ("iss_other", lambda s: s.keys.assertion(s.token_url, iss="other-client"), "iss_sub"),
        ("sub_other", lambda s: s.keys.assertion(s.token_url, sub="other-client"), "iss_sub"),
        ("unknown_kid", lambda s: s.keys.assertion(s.token_url, kid="nobody"), "assertion"),
        ("other_key", lambda s: s.keys.assertion(
            s.token_url, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), "assertion"),
        ("not_jwt", lambda s: "not.a-jwt", "assertion"),
    ],
)
def test_token_bad_assertion_is_rejected(token_setup: TokenSetup, case: str, make: t.Any, check: t.Any) -> None:
    r = token_request(token_setup, make(token_setup))
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == "invalid_client"
    assert body["check"] in (check if isinstance(check, tuple) else (check,)), body


@pytest.mark.parametrize(
    "overrides, status, error",
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"client_assertion_type": "urn:other"}, 400, "invalid_request"),
        ({"scope": ""}, 400, "invalid_request"),
        ({"scope": "https://example.com/not-a-scope"}, 400, "invalid_scope"),
        ({"client_assertion": ""}, 400, "invalid_request"),
    ],
)
def test_token_bad_request_is_rejected(token_setup: TokenSetup, overrides: t.Dict[str, str],
                                       status: int, error: str) -> None:
    s = token_setup
    r = token_request(s, s.keys.assertion(s.token_url), **overrides)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


def test_token_endpoint_refetches_rotated_tool_keys(token_setup: TokenSetup) -> None:
    s = token_setup
    assert token_request(s, s.keys.assertion(s.token_url)).status_code == 200  # JWKS now cached
    s.keys.rotate()
    r = token_request(s, s.keys.assertion(s.token_url))
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------
# the platform's AGS and NRPS services, with tokens from its token endpoint
# --------------------------------------------------------------------------

LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
RESULT_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"


def access_token(s: TokenSetup, scope: str) -> str:
    r = token_request(s, s.keys.assertion(s.token_url), scope=scope)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str, **headers: str) -> t.Dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def score_body(user: str, given: float, at: str) -> t.Dict[str, t.Any]:
    return {"userId": user, "scoreGiven": given, "scoreMaximum": 10, "timestamp": at,
            "activityProgress": "Completed", "gradingProgress": "FullyGraded"}


def quiz_url(s: TokenSetup) -> str:
    return f"{s.platform_url}/ags/ctx-interop-101/lineitems/li-quiz-3/lineitem"


def test_services_take_only_a_token_with_the_operations_scope(token_setup: TokenSetup) -> None:
    s = token_setup
    roster = f"{s.platform_url}/nrps/ctx-interop-101/memberships"
    assert requests.get(roster, timeout=5).status_code == 401
    # the library's own check raises on a token that is not its JWT (a 500): the glue answers 401
    r = requests.get(roster, headers=bearer("not-a-token"), timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    results_only = access_token(s, RESULT_SCOPE)
    # the library accepts any AGS scope for any AGS call; the glue wants the operation's
    r = requests.post(f"{quiz_url(s)}/scores", headers=bearer(results_only, **{"Content-Type": MEDIA_SCORE}),
                      data=json.dumps(score_body("plat-user-learner-0001", 5, "2030-01-01T10:00:00Z")), timeout=5)
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope", r.text
    r = requests.post(f"{s.platform_url}/ags/ctx-interop-101/lineitems",
                      headers=bearer(results_only, **{"Content-Type": MEDIA_LINEITEM}),
                      data=json.dumps({"label": "x", "scoreMaximum": 1}), timeout=5)
    assert r.status_code == 403, r.text
    assert requests.get(roster, headers=bearer(results_only), timeout=5).status_code == 403
    assert requests.get(f"{quiz_url(s)}/results", headers=bearer(results_only), timeout=5).status_code == 200


def test_the_roster_is_served_page_by_page_with_next_links(token_setup: TokenSetup) -> None:
    s = token_setup
    token = access_token(s, NRPS_SCOPE)
    url: t.Optional[str] = f"{s.platform_url}/nrps/ctx-interop-101/memberships"
    members: t.List[t.Dict[str, t.Any]] = []
    pages = 0
    while url:
        r = requests.get(url, headers=bearer(token), timeout=5)
        assert r.status_code == 200, r.text  # page 2 is where the library's str + int broke
        assert r.headers["Content-Type"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
        body = r.json()
        assert body["context"]["id"] == "ctx-interop-101" and "next" not in body
        members += body["members"]
        pages += 1
        url = r.links.get("next", {}).get("url")
    assert pages == 3 and len(members) == 25
    assert len({m["user_id"] for m in members}) == 25
    r = requests.get(f"{s.platform_url}/nrps/ctx-interop-101/memberships?role=Learner&limit=50",
                     headers=bearer(token), timeout=5)
    learners = r.json()["members"]
    assert learners and all(any(x.endswith("Learner") for x in m["roles"]) for m in learners)
    r = requests.get(f"{s.platform_url}/nrps/ctx-interop-101/memberships?page=two", headers=bearer(token), timeout=5)
    assert r.status_code == 400


def test_scores_are_checked_and_land_in_the_gradebook(token_setup: TokenSetup) -> None:
    s = token_setup
    token = access_token(s, f"{SCORE} {LINEITEM_SCOPE} {RESULT_SCOPE}")
    headers = bearer(token, **{"Content-Type": MEDIA_SCORE})
    post = lambda url, body, h=headers: requests.post(f"{url}/scores", headers=h, data=json.dumps(body), timeout=5)
    user = "plat-student-04"
    assert post(quiz_url(s), score_body(user, 6, "2030-01-01T10:00:00.000Z")).status_code == 201
    assert post(quiz_url(s), score_body(user, 6, "2030-01-01T10:00:00.000Z")).status_code == 204  # a retry
    assert post(quiz_url(s), score_body(user, 7, "2030-01-01T09:00:00.000Z")).status_code == 409  # older
    assert post(quiz_url(s), score_body("nobody", 7, "2030-01-01T11:00:00Z")).status_code == 400
    assert post(quiz_url(s), dict(score_body(user, 7, "2030-01-01T11:00:00Z"), gradingProgress="Done")).status_code == 400
    assert post(quiz_url(s), {k: v for k, v in score_body(user, 7, "2030-01-01T11:00:00Z").items()
                              if k != "scoreMaximum"}).status_code == 400
    assert post(quiz_url(s), score_body(user, 7, "2030-01-01T11:00:00Z"),
                bearer(token, **{"Content-Type": "application/json"})).status_code == 415
    book = requests.get(f"{s.platform_url}/.gradebook", timeout=5).json()
    mine = [x for x in book["scores"][quiz_url(s)] if x["userId"] == user]
    assert mine == [score_body(user, 6, "2030-01-01T10:00:00.000Z")]

    # results of a new line item, more than a page: the next link is that item's
    r = requests.post(f"{s.platform_url}/ags/ctx-interop-101/lineitems",
                      headers=bearer(token, **{"Content-Type": MEDIA_LINEITEM}),
                      data=json.dumps({"label": "Essay", "scoreMaximum": 10, "tag": "essay"}), timeout=5)
    assert r.status_code == 201, r.text
    essay = r.json()["id"]
    assert r.headers["Content-Type"] == MEDIA_LINEITEM and essay != quiz_url(s)
    for i in range(1, 13):
        assert post(essay, score_body(f"plat-student-{i:02d}", i % 10, "2030-01-02T10:00:00Z")).status_code == 201
    r = requests.get(f"{essay}/results", headers=bearer(token), timeout=5)
    assert r.status_code == 200 and len(r.json()) == 10
    assert r.links["next"]["url"].startswith(f"{essay}/results?"), r.headers["Link"]
    r = requests.get(r.links["next"]["url"], headers=bearer(token), timeout=5)
    assert r.status_code == 200 and len(r.json()) == 2
    bad = requests.post(f"{s.platform_url}/ags/ctx-interop-101/lineitems",
                        headers=bearer(token, **{"Content-Type": MEDIA_LINEITEM}),
                        data=json.dumps({"label": "", "scoreMaximum": 0}), timeout=5)
    assert bad.status_code == 400


# --------------------------------------------------------------------------
# browser.py
# --------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def _reply(self, status: int, body: bytes = b"", ctype: str = "application/json",
               headers: t.Sequence[t.Tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _echo(self, form: t.Dict[str, str]) -> None:
        self._reply(200, json.dumps({
            "method": self.command, "path": self.path, "form": form,
            "cookie": self.headers.get("Cookie", ""), "origin": self.headers.get("Origin"),
        }).encode())

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path == "/set-cookies":
            self._reply(302, headers=[
                ("Location", "/app/echo"),
                ("Set-Cookie", "tool_state=s1; Path=/; Secure; SameSite=None; HttpOnly; Partitioned"),
                ("Set-Cookie", "lax_one=l1; Path=/"),
                ("Set-Cookie", "strict_one=x1; Path=/; SameSite=Strict"),
                ("Set-Cookie", "scoped=p1; Path=/other"),
            ])
        elif path == "/delete-cookie":
            self._reply(303, headers=[("Location", "/app/echo"),
                                      ("Set-Cookie", "lax_one=; Path=/; Max-Age=0")])
        elif path == "/app/form":
            page = (
                '<html><body><form id="f1" action="/nowhere"></form>'
                '<form method="post" action="../submit?x=1" id="launch">'
                '<input type="hidden" name="id_token" value="a&amp;b" />'
                '<input type="hidden" name="state" value="st" />'
                '<input type="submit" name="go" value="Go" /></form>'
                '<script>document.getElementById("launch").submit();</script></body></html>'
            )
            self._reply(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._echo({})

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        self._echo(dict(parse_qsl(self.rfile.read(n).decode())))

    def log_message(self, *args: t.Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_url() -> t.Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_browser_keeps_secure_partitioned_cookies_on_plain_http_loopback(echo_url: str) -> None:
    b = Browser()
    resp, hops = b.get(f"{echo_url}/set-cookies")
    assert [h.status for h in hops] == [302, 200]
    sent = dict(p.split("=", 1) for p in resp.json()["cookie"].split("; "))
    assert sent == {"tool_state": "s1", "lax_one": "l1", "strict_one": "x1"}  # not the /other one
    c = b.cookies.get("tool_state")
    assert c and c.secure and c.http_only and c.partitioned and c.same_site == "none"
    resp, _ = b.get(f"{echo_url}/delete-cookie")
    assert "lax_one" not in resp.json()["cookie"]
    assert "tool_state=s1" in resp.json()["cookie"]


def test_browser_auto_submits_form_to_relative_action(echo_url: str) -> None:
    resp, hops = Browser().get(f"{echo_url}/app/form")
    assert [h.reason for h in hops] == ["start", "auto-form"]
    body = resp.json()
    assert body["method"] == "POST" and body["path"] == "/submit?x=1"
    assert body["form"] == {"id_token": "a&b", "state": "st"}
    assert body["origin"] == echo_url


def test_browser_samesite_rules_when_ports_count_as_sites(echo_url: str) -> None:
    b = Browser(site_by_port=True)
    b.get(f"{echo_url}/set-cookies")
    # a cross-site form POST (from another port) carries only SameSite=None cookies
    resp, hops = b.post(f"{echo_url}/app/echo", {"a": "1"}, initiator="http://127.0.0.1:9/page")
    assert hops[0].cross_site is True
    assert resp.json()["cookie"] == "tool_state=s1"
    # a cross-site top-level GET also carries Lax ones, never Strict ones
    resp, _ = b.navigate("GET", f"{echo_url}/app/echo", initiator="http://127.0.0.1:9/page")
    assert sorted(resp.json()["cookie"].split("; ")) == ["lax_one=l1", "tool_state=s1"]


def test_cookie_jar_rules() -> None:
    jar = CookieJar()
    jar.set_from_header("http://example.com/a/b", "insecure_secure=1; Secure")
    jar.set_from_header("http://127.0.0.1:5/a/b", "none_no_secure=1; SameSite=None")
    jar.set_from_header("http://127.0.0.1:5/a/b", "__Host-ok=1; Secure; Path=/")
    jar.set_from_header("http://127.0.0.1:5/a/b", "dflt=1")
    assert [r for _, r in jar.rejected] == ["Secure cookie from an insecure origin",
                                           "SameSite=None without Secure"]
    header, names = jar.header_for("http://127.0.0.1:7/a/c", "GET", cross_site=False)
    assert names == ["dflt", "__Host-ok"]  # default path /a, longest path first
    assert jar.header_for("http://127.0.0.1:7/b", "GET", False)[1] == ["__Host-ok"]


def test_find_auto_submit_form_ignores_pages_without_script() -> None:
    assert find_auto_submit_form('<form action="/x"><input type="hidden" name="a" value="1"></form>') is None
    f = find_auto_submit_form(
        '<body onload="document.forms[1].submit()"><form action="/a"></form>'
        '<form action="/b" method="POST"><input type="hidden" name="k" value="v"></form></body>'
    )
    assert f is not None and f.action == "/b" and f.hidden == [("k", "v")]


def test_pylti1p3_cookies_do_not_survive_a_cross_site_launch(platform_and_pylti_tool: Pair) -> None:
    """Documents the strict mode: pylti1p3 sets its state cookie without
    SameSite over http, so when ports count as sites the platform's
    cross-site form POST arrives without it, as a real cross-site browser
    launch would. Our tool's SameSite=None; Secure cookies must pass this."""
    pair = platform_and_pylti_tool
    resp, hops = Browser(site_by_port=True).get(start_url(pair, "learner"))
    assert hops[-1].cross_site is True and hops[-1].method == "POST"
    assert resp.status_code == 400
    assert resp.json()["error"] == "State not found"


def test_hop_repr_is_readable() -> None:
    assert "redirect GET http://h/x 302 -> http://h/y" in repr(Hop("GET", "http://h/x", 302, "redirect", "http://h/y"))
