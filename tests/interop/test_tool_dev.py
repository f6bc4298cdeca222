"""Our tool (the Rust dev server at LTI_DEV_URL) launched from an independent
platform (platform_server.py, on lti1p3platform).

Every launch goes the way a browser goes: platform -> our /lti/login -> the
platform's /auth -> our /lti/launch -> our demo app at /app. We check that the
user lands in the app signed in, and that the app token our tool signed (checked
with PyJWT against our JWKS) carries exactly the normalized context of what the
platform sent. Then the checklist's rejection list, each case with its error code.
"""
from __future__ import annotations

import json
import re
import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests

from browser import Browser, Hop, find_auto_submit_form
from conftest import DEPLOYMENT_ID, DevPair, DevServer, Pair, register_platform, registration_body
from servers import free_port, start_platform

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

# what our demo app shows for the interop platform's users
WELCOME = {
    "learner": "Welcome, Lena Learner",
    "instructor": "Welcome, Ian Instructor",
    "anonymous": "Welcome, Anonymous user plat-user-anon-0003",
}
MAPPED = {"learner": ["learner"], "instructor": ["instructor"], "anonymous": []}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def start_url(pair: t.Union[DevPair, Pair], user: str, **params: str) -> str:
    return f"{pair.platform.url}/launch/start?" + urlencode(dict(user=user, **params))


def path(url: str) -> str:
    return urlsplit(url).path


_ERROR_HTML = re.compile(r"Error <code>([A-Z0-9_]+)</code> \(HTTP (\d+)\)")


def error_of(resp: requests.Response) -> t.Tuple[int, str]:
    """(status, code) of one of our error answers, JSON or HTML page."""
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        return resp.status_code, resp.json()["error"]["code"]
    m = _ERROR_HTML.search(resp.text)
    assert m, f"not one of our error pages ({resp.status_code}): {resp.text[:300]}"
    assert int(m.group(2)) == resp.status_code
    return resp.status_code, m.group(1)


def verify_app_token(dev: DevServer, token: str) -> t.Dict[str, t.Any]:
    """The app token's claims, verified like an app would with PyJWT: RS256, a key
    from our JWKS, our issuer, the app audience (the landing URL's origin), expiry."""
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    key = jwt.PyJWKClient(f"{dev.url}/.well-known/jwks.json", cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=dev.url,
        issuer=dev.url,
        options={"require": ["iss", "aud", "sub", "exp", "iat"]},
    )


class Launch(t.NamedTuple):
    response: requests.Response
    hops: t.List[Hop]
    token: t.Dict[str, t.Any]  # verified app token claims
    sent: t.Dict[str, t.Any]  # the id_token claims the platform sent


def launch(pair: DevPair, user: str, **params: str) -> Launch:
    """A launch that must succeed: lands in our demo app, signed in."""
    resp, hops = Browser().get(start_url(pair, user, **params))
    return landed(pair, user, resp, hops)


def landed(pair: DevPair, user: str, resp: requests.Response, hops: t.List[Hop]) -> Launch:
    """Checks that `user` landed in our demo app, signed in, and reads the app token."""
    assert resp.status_code == 200, (resp.status_code, resp.text[:500], hops)
    assert resp.url == f"{pair.dev.url}/app" and hops[-1].method == "POST", hops
    assert 'id="welcome"' in resp.text and "Welcome, " in resp.text, resp.text[:500]
    handoff = dict(hops[-1].sent or [])
    assert set(handoff) == {"app_token"}, handoff  # the token, and nothing else
    sent = requests.get(f"{pair.platform.url}/.expected/{user}", timeout=5).json()
    return Launch(resp, hops, verify_app_token(pair.dev, handoff["app_token"]), sent)


KNOWN_CLAIMS = {
    # token mechanics
    "iss", "aud", "azp", "exp", "iat", "nbf", "nonce", "auth_time", "jti",
    # the user
    "sub", "name", "given_name", "family_name", "middle_name", "email", "picture", "locale",
    # LTI Core, AGS, NRPS, Deep Linking
    *(LTI + n for n in ("message_type", "version", "deployment_id", "target_link_uri", "roles",
                        "role_scope_mentor", "context", "resource_link", "custom", "launch_presentation",
                        "lis", "tool_platform")),
    AGS, NRPS, "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
}


def expected_context(sent: t.Dict[str, t.Any], mapped: t.List[str], registration_name: str) -> t.Dict[str, t.Any]:
    """The normalized launch context (README, "The hand-off to your app") of the
    id_token claims `sent`, written from the specs, not from our Rust code."""
    user: t.Dict[str, t.Any] = {"sub": sent["sub"]}
    for claim, field in (("name", "name"), ("given_name", "givenName"), ("family_name", "familyName"),
                         ("email", "email"), ("picture", "picture"), ("locale", "locale")):
        if sent.get(claim):
            user[field] = sent[claim]
    if "name" not in user and ("givenName" in user or "familyName" in user):
        user["name"] = " ".join(p for p in (sent.get("given_name"), sent.get("family_name")) if p)
    aud = sent["aud"]
    tool_platform = sent.get(LTI + "tool_platform")
    out: t.Dict[str, t.Any] = {
        "messageType": sent[LTI + "message_type"],
        "version": "1.3.0",
        "user": user,
        "platform": {
            "issuer": sent["iss"],
            "clientId": aud if isinstance(aud, str) else sent["azp"],
            "deploymentId": sent[LTI + "deployment_id"],
            "name": (tool_platform or {}).get("name") or registration_name,
        },
        "roles": {"raw": sent[LTI + "roles"], "mapped": mapped},
        "custom": sent.get(LTI + "custom", {}),
        "targetLinkUri": sent[LTI + "target_link_uri"],
        "services": {},
    }
    # the objects below: their known members, and every other member (Canvas adds
    # some) kept as sent in "extra"
    def known_and_extra(claim: t.Dict[str, t.Any], names: t.Dict[str, str]) -> t.Dict[str, t.Any]:
        part = {names[k]: v for k, v in claim.items() if k in names and v is not None}
        extra = {k: v for k, v in claim.items() if k not in names}
        if extra:
            part["extra"] = extra
        return part

    if LTI + "context" in sent:
        out["context"] = known_and_extra(sent[LTI + "context"], {n: n for n in ("id", "label", "title", "type")})
    link = sent[LTI + "resource_link"]
    out["resourceLink"] = known_and_extra(link, {n: n for n in ("id", "title", "description")})
    if LTI + "launch_presentation" in sent:
        names = {"document_target": "documentTarget", "return_url": "returnUrl", "locale": "locale",
                 "height": "height", "width": "width"}
        out["launchPresentation"] = known_and_extra(sent[LTI + "launch_presentation"], names)
    if AGS in sent:
        out["services"]["ags"] = known_and_extra(sent[AGS], {n: n for n in ("scope", "lineitems", "lineitem")})
    if NRPS in sent:
        out["services"]["nrps"] = known_and_extra(
            sent[NRPS],
            {"context_memberships_url": "contextMembershipsUrl", "service_versions": "serviceVersions"},
        )
    # kept as sent
    if tool_platform is not None:
        out["toolPlatform"] = tool_platform
    if LTI + "lis" in sent:
        out["lis"] = sent[LTI + "lis"]
    extensions = {k: v for k, v in sent.items() if k not in KNOWN_CLAIMS}
    if extensions:
        out["extensions"] = extensions
    return out


def check_context(pair: DevPair, got: Launch, mapped: t.List[str]) -> t.Dict[str, t.Any]:
    """The app token carries exactly the normalized context of what was sent."""
    lti = json.loads(json.dumps(got.token["lti"]))
    user_id = lti["user"].pop("id")
    assert user_id and got.token["sub"] == user_id
    # the launch's id: the app token's jti, the compact reference for services calls
    launch_id = lti.pop("launchId")
    assert launch_id and got.token["jti"] == launch_id
    want = expected_context(got.sent, mapped, pair.config["name"])
    assert lti == want, json.dumps({"got": lti, "want": want}, indent=1, sort_keys=True)
    return got.token


# --------------------------------------------------------------------------
# launches that must succeed
# --------------------------------------------------------------------------


def test_the_platform_was_registered_by_the_admin_api(platform_for_dev: DevPair) -> None:
    pair = platform_for_dev
    reg = pair.registration
    assert reg["issuer"] == pair.platform.url and reg["clientId"] == pair.config["clientId"]
    assert reg["deploymentId"] == DEPLOYMENT_ID and reg["id"]
    # an upsert on issuer + clientId keeps the id
    again = register_platform(pair.dev, registration_body(pair.config))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == reg["id"] and again.json()["createdAt"] == reg["createdAt"]
    # the values our tool tells LMS admins match what this platform was configured with
    cfg = requests.get(
        f"{pair.dev.url}/lti/config",
        headers={"Authorization": f"Bearer {pair.dev.admin_token}"},
        timeout=5,
    ).json()
    assert cfg["loginUrl"] == pair.config["toolLoginUrl"]
    assert cfg["redirectUrl"] in pair.config["redirectUris"]
    assert cfg["jwksUrl"] == pair.config["toolJwksUrl"]


@pytest.mark.parametrize("user", ["learner", "instructor", "anonymous"])
def test_launch_lands_in_the_app_with_the_normalized_context(platform_for_dev: DevPair, user: str) -> None:
    pair = platform_for_dev
    got = launch(pair, user)
    assert WELCOME[user] in got.response.text

    # platform -> our login -> platform auth -> our launch -> our app
    assert [(h.reason, h.method, path(h.url), h.status) for h in got.hops] == [
        ("start", "GET", "/launch/start", 302),
        ("redirect", "GET", "/lti/login", 302),
        ("redirect", "GET", "/auth", 200),
        ("auto-form", "POST", "/lti/launch", 200),
        ("auto-form", "POST", "/app", 200),
    ]
    assert got.hops[3].url == f"{pair.dev.url}/lti/launch"
    for hop in got.hops:  # no token in any address
        assert "id_token=" not in hop.url and "app_token=" not in hop.url, hop

    token = check_context(pair, got, MAPPED[user])
    lti = token["lti"]
    # spelled out, for the reader
    assert lti["platform"] == {
        "issuer": pair.platform.url,
        "clientId": pair.config["clientId"],
        "deploymentId": DEPLOYMENT_ID,
        "name": "lti1p3platform interop platform",
    }
    assert lti["context"] == {
        "id": "ctx-interop-101", "label": "INTEROP101", "title": "Interoperability 101",
        "type": [ROLE + "course#CourseOffering"],
    }
    assert lti["resourceLink"]["id"] == "rl-interop-quiz-3" and lti["resourceLink"]["title"] == "Chapter 3 quiz"
    assert lti["custom"] == {"chapter": "3", "mode": "quiz"}
    assert lti["services"]["ags"]["lineitems"] == f"{pair.platform.url}/ags/ctx-interop-101/lineitems"
    assert lti["services"]["nrps"]["contextMembershipsUrl"] == f"{pair.platform.url}/nrps/ctx-interop-101/memberships"
    assert lti["roles"]["raw"] == got.sent[LTI + "roles"]
    if user == "anonymous":
        assert lti["user"].keys() == {"id", "sub"}  # no name, no email
        assert "(not shared)" in got.response.text
    else:
        assert lti["user"]["email"] in got.response.text
    assert token["iss"] == pair.dev.url and token["aud"] == pair.dev.url
    assert 0 < token["exp"] - token["iat"] <= 86400


def test_the_user_id_is_stable_per_platform_user(platform_for_dev: DevPair) -> None:
    pair = platform_for_dev
    first, again, other = launch(pair, "learner"), launch(pair, "learner"), launch(pair, "instructor")
    assert first.token["sub"] == again.token["sub"] != other.token["sub"]
    assert first.token["jti"] != again.token["jti"]
    assert first.token["sub"] in first.response.text  # the app shows it


def test_omitted_claims_are_absent_from_the_context(platform_for_dev: DevPair) -> None:
    pair = platform_for_dev
    got = launch(pair, "learner", omit="name,email,context,custom,ags,nrps,launch_presentation")
    lti = check_context(pair, got, ["learner"])["lti"]
    assert "context" not in lti and "launchPresentation" not in lti
    assert lti["custom"] == {} and lti["services"] == {}
    assert lti["user"].keys() == {"id", "sub"}
    assert "Welcome, Anonymous user plat-user-learner-0001" in got.response.text


def test_login_initiation_by_form_post(platform_for_dev: DevPair) -> None:
    pair = platform_for_dev
    got = launch(pair, "instructor", method="post")
    assert (got.hops[1].reason, got.hops[1].method, got.hops[1].url) == (
        "auto-form", "POST", f"{pair.dev.url}/lti/login")
    check_context(pair, got, ["instructor"])


def test_audience_array_with_azp_is_accepted(platform_for_dev: DevPair) -> None:
    pair = platform_for_dev
    got = launch(pair, "learner", tamper="aud_array")
    assert got.sent["aud"] == [pair.config["clientId"], "some-other-client"]
    check_context(pair, got, ["learner"])


def test_a_cross_site_launch_keeps_our_state_cookie(platform_for_dev: DevPair) -> None:
    """With ports counted as sites the platform's form POST to our /lti/launch is
    cross-site, as from a real LMS: only a SameSite=None; Secure cookie survives."""
    pair = platform_for_dev
    b = Browser(site_by_port=True)
    seen: t.Dict[str, t.Any] = {}

    def on_request(method: str, url: str, fields: t.Any) -> None:
        if method == "POST" and url == f"{pair.dev.url}/lti/launch":
            state = dict(fields)["state"]
            seen["cookie"] = b.cookies.get(f"__Host-lti-state-{state}")

    resp, hops = b.get(start_url(pair, "learner"), on_request=on_request)
    assert resp.status_code == 200 and WELCOME["learner"] in resp.text, (resp.text[:300], hops)
    cookie = seen["cookie"]
    assert cookie is not None
    assert (cookie.secure, cookie.http_only, cookie.same_site, cookie.partitioned, cookie.path) == (
        True, True, "none", True, "/")
    post = next(h for h in hops if h.method == "POST" and h.url == f"{pair.dev.url}/lti/launch")
    assert post.cross_site and cookie.name in post.cookies_sent
    # used up: the tool drops it
    assert not any(c.name.startswith("__Host-lti-state-") for c in b.cookies)


def test_a_canvas_shaped_launch_without_custom_parameters(platform_for_dev: DevPair) -> None:
    """Canvas's claims (profile=canvas): extra members in the claim objects,
    lis, picture, locale, legacy LTI 1.1 ids and placement as extensions."""
    pair = platform_for_dev
    got = launch(pair, "instructor", profile="canvas", omit="custom")
    lti = check_context(pair, got, ["instructor"])["lti"]
    assert "errors" not in lti["context"] and lti["launchPresentation"]["width"] == 800
    assert set(lti["extensions"]) == {
        LTI + "lti11_legacy_user_id", LTI + "lti1p1", "errors", "https://www.instructure.com/placement"}
    assert "omittedClaims" not in got.token


@pytest.mark.parametrize("user", ["learner", "instructor"])
def test_a_canvas_shaped_launch_with_custom_parameters(platform_for_dev: DevPair, user: str) -> None:
    pair = platform_for_dev
    resp, hops = Browser().get(start_url(pair, user, profile="canvas"))
    sent = requests.get(f"{pair.platform.url}/.expected/{user}", timeout=5).json()
    assert len(json.dumps(sent)) < 4500  # an ordinary Canvas launch, not a stress test
    # Found by this suite: the app token of such a launch is larger than the 4096
    # bytes KMS signs as RAW; the tool now signs larger tokens by digest.
    check_context(pair, landed(pair, user, resp, hops), MAPPED[user])


# --------------------------------------------------------------------------
# roles: mapped the same way an independent tool reads them
# --------------------------------------------------------------------------

INST = ROLE + "institution/person#"
MEMB = ROLE + "membership#"
SYS = ROLE + "system/person#"
ROLE_CASES: t.Dict[str, t.Tuple[t.List[str], t.List[str]]] = {
    # Canvas sends institution roles for every enrolment the user has anywhere:
    # a learner here who teaches another course is not an instructor here
    "canvas learner who teaches elsewhere": (
        [INST + "Instructor", INST + "Student", MEMB + "Learner", SYS + "User"], ["learner"]),
    "faculty member enrolled as a learner": ([MEMB + "Learner", INST + "Faculty"], ["learner"]),
    "canvas teaching assistant": (
        [MEMB + "Instructor", ROLE + "membership/Instructor#TeachingAssistant"],
        ["instructor", "teaching_assistant"]),
    "site administrator, not enrolled": ([INST + "Administrator", SYS + "Administrator"], ["admin"]),
    "short context role name": (["Instructor"], ["instructor"]),
    "mentor": ([MEMB + "Mentor"], ["mentor"]),
    "unknown role": (["http://example.com/roles#Wizard"], ["other"]),
    "no role": ([], []),
}


@pytest.mark.parametrize("case", sorted(ROLE_CASES))
def test_roles_are_mapped_like_an_independent_tool_reads_them(
    platform_for_dev: DevPair, platform_and_pylti_tool: Pair, case: str
) -> None:
    roles, mapped = ROLE_CASES[case]
    got = launch(platform_for_dev, "learner", roles=",".join(roles))
    lti = check_context(platform_for_dev, got, mapped)["lti"]
    assert lti["roles"]["raw"] == roles
    # pylti1p3 reads the same roles: teacher only for context Instructor (or
    # Administrator) roles, student for Learner ones
    resp, _ = Browser().get(start_url(platform_and_pylti_tool, "learner", roles=",".join(roles)))
    assert resp.status_code == 200, resp.text
    access = resp.json()["access"]
    assert access["teacher"] == ("instructor" in mapped), (access, mapped)
    assert access["student"] == ("learner" in mapped), (access, mapped)


# --------------------------------------------------------------------------
# the rejection list
# --------------------------------------------------------------------------

# tamper mode of platform_server.py -> (status, code) from README's table
REJECTIONS: t.Dict[str, t.Tuple[int, str]] = {
    "alg_hs256": (401, "LTI_ALG_UNSUPPORTED"),
    "alg_none": (401, "LTI_ALG_UNSUPPORTED"),
    "aud_array_no_azp": (401, "LTI_AZP_INVALID"),
    "aud_array_wrong_azp": (401, "LTI_AZP_INVALID"),
    "bad_sig": (401, "LTI_SIGNATURE_INVALID"),
    "deep_linking_without_settings": (400, "LTI_DEEP_LINKING_SETTINGS_MISSING"),
    "expired": (401, "LTI_TOKEN_EXPIRED"),
    "iat_future": (401, "LTI_IAT_INVALID"),
    "iat_past": (401, "LTI_IAT_INVALID"),
    "no_aud": (401, "LTI_AUD_INVALID"),
    "no_deployment_id": (400, "LTI_DEPLOYMENT_MISSING"),
    "no_exp": (401, "LTI_EXP_INVALID"),
    "no_iat": (401, "LTI_IAT_INVALID"),
    "no_id_token": (400, "LTI_ID_TOKEN_MISSING"),
    "no_iss": (401, "LTI_ISS_MISSING"),
    "no_kid": (401, "LTI_KID_MISSING"),
    "no_message_type": (400, "LTI_MESSAGE_TYPE_MISSING"),
    "no_nonce": (401, "LTI_NONCE_MISSING"),
    "no_resource_link_id": (400, "LTI_RESOURCE_LINK_MISSING"),
    "no_roles": (400, "LTI_ROLES_MISSING"),
    "no_state": (401, "LTI_STATE_MISSING"),
    "no_sub": (400, "LTI_SUB_MISSING"),
    "no_version": (400, "LTI_VERSION_INVALID"),
    "not_jwt": (400, "LTI_JWT_MALFORMED"),
    "not_lti": (400, "LTI_NOT_LTI_MESSAGE"),
    "other_key": (401, "LTI_SIGNATURE_INVALID"),
    "platform_error": (400, "LTI_PLATFORM_ERROR"),
    "roles_not_list": (400, "LTI_ROLES_INVALID"),
    "unknown_deployment_id": (403, "LTI_DEPLOYMENT_UNKNOWN"),
    "unknown_kid": (401, "LTI_KID_UNKNOWN"),
    "unknown_message_type": (400, "LTI_MESSAGE_TYPE_UNSUPPORTED"),
    "wrong_aud": (401, "LTI_AUD_INVALID"),
    "wrong_iss": (401, "LTI_ISS_UNKNOWN"),
    "wrong_nonce": (401, "LTI_NONCE_INVALID"),
    # a state we never issued: the browser has no cookie for it
    "wrong_state": (401, "LTI_STATE_COOKIE_MISSING"),
    "wrong_target_link_uri": (400, "LTI_TARGET_LINK_URI_INVALID"),
    "wrong_version": (400, "LTI_VERSION_INVALID"),
}
# test_audience_array_with_azp_is_accepted; test_a_context_without_id_is_dropped_with_a_warning
ACCEPTED = {"aud_array", "context_without_id"}

def test_a_context_without_id_is_dropped_with_a_warning(platform_for_dev: DevPair) -> None:
    """An optional claim that cannot be used is dropped, never a refusal (README,
    "Optional claims")."""
    got = launch(platform_for_dev, "learner", tamper="context_without_id")
    lti = got.token["lti"]
    assert "context" not in lti
    assert lti["warnings"] == ["the context claim has no usable id; ignored"]


def test_every_tamper_mode_has_an_expected_outcome(platform_for_dev: DevPair) -> None:
    names = set(requests.get(f"{platform_for_dev.platform.url}/.tampers", timeout=5).json())
    assert names == set(REJECTIONS) | ACCEPTED


@pytest.mark.parametrize("tamper", sorted(REJECTIONS))
def test_a_bad_launch_is_refused_with_its_code(platform_for_dev: DevPair, tamper: str) -> None:
    pair = platform_for_dev
    resp, hops = Browser().get(start_url(pair, "learner", tamper=tamper))
    assert hops[-1].url == f"{pair.dev.url}/lti/launch", hops  # refused there, not sent on to the app
    assert resp.headers.get("Cache-Control") == "no-store"
    got = error_of(resp)
    assert got == REJECTIONS[tamper], resp.text[:400]


def test_a_replayed_launch_is_refused_with_409(platform_for_dev: DevPair) -> None:
    pair = platform_for_dev
    b = Browser()
    captured: t.Dict[str, t.Any] = {}

    def on_request(method: str, url: str, fields: t.Any) -> None:
        if method == "POST" and url == f"{pair.dev.url}/lti/launch":
            state = dict(fields)["state"]
            cookie = b.cookies.get(f"__Host-lti-state-{state}")
            assert cookie is not None
            captured.update(fields=list(fields), cookie=f"{cookie.name}={cookie.value}")

    resp, _ = b.get(start_url(pair, "learner"), on_request=on_request)
    assert resp.status_code == 200 and WELCOME["learner"] in resp.text
    launch_url = f"{pair.dev.url}/lti/launch"

    # the same id_token and state again, with the cookie the browser had: JSON for
    # a client that asks for it, the error page for a browser
    for accept in ("application/json", "text/html"):
        again = requests.post(launch_url, data=captured["fields"], timeout=10, allow_redirects=False,
                              headers={"Cookie": captured["cookie"], "Accept": accept})
        assert error_of(again) == (409, "LTI_NONCE_REPLAYED"), again.text[:300]
        assert "app_token" not in again.text
        if accept == "application/json":
            error = again.json()["error"]
            assert error["message"] and error["requestId"]

    # the browser itself no longer has the cookie: the tool dropped it after use
    resp, _ = b.post(launch_url, captured["fields"], initiator=f"{pair.platform.url}/auth")
    assert error_of(resp) == (401, "LTI_STATE_COOKIE_MISSING")


def _launch_with_cookie(pair: DevPair, cookie_value: t.Callable[[str], str], **params: str) -> requests.Response:
    """A launch where, just before the platform's form POST reaches us, the
    browser's cookie for the posted state is set to cookie_value(state)."""
    b = Browser()

    def on_request(method: str, url: str, fields: t.Any) -> None:
        if method == "POST" and url == f"{pair.dev.url}/lti/launch":
            state = dict(fields)["state"]
            b.cookies.set_from_header(url, f"__Host-lti-state-{state}={cookie_value(state)}; Path=/; Secure; "
                                           "HttpOnly; SameSite=None")

    resp, _ = b.get(start_url(pair, "learner", **params), on_request=on_request)
    return resp


def test_a_state_bound_to_another_browser_is_refused(platform_for_dev: DevPair) -> None:
    resp = _launch_with_cookie(platform_for_dev, lambda state: "someone-elses-state")
    assert error_of(resp) == (401, "LTI_STATE_NOT_BOUND")


def test_a_state_never_issued_is_refused_even_with_a_matching_cookie(platform_for_dev: DevPair) -> None:
    resp = _launch_with_cookie(platform_for_dev, lambda state: state, tamper="wrong_state")
    assert error_of(resp) == (401, "LTI_STATE_UNKNOWN")


@pytest.fixture(scope="module")
def second_platform_for_dev(dev: DevServer, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[DevPair]:
    port = free_port()
    platform = start_platform(port, dev.url, "--client-id", f"interop-second-{port}",
                              "--deployment-id", DEPLOYMENT_ID, log_dir=tmp_path_factory.mktemp("second"))
    try:
        platform.wait_ready()
        config = requests.get(f"{platform.url}/.config", timeout=5).json()
        r = register_platform(dev, registration_body(config))
        assert r.status_code == 201, r.text
        yield DevPair(platform, dev, config, r.json())
    finally:
        platform.stop()


def test_a_token_of_another_platform_cannot_answer_this_platforms_login(
    platform_for_dev: DevPair, second_platform_for_dev: DevPair
) -> None:
    """Two registered platforms: B signs an id_token with the nonce of a login A's
    launch started (and A's state). Valid signature, right nonce, wrong platform."""
    a, b = platform_for_dev, second_platform_for_dev
    until_auth = lambda h, r: path(h.location or "") == "/auth"  # noqa: E731
    victim = Browser()
    _, hops = victim.get(start_url(a, "learner"), stop=until_auth)
    a_auth = dict(parse_qsl(urlsplit(hops[-1].location or "").query))
    _, hops = Browser().get(start_url(b, "learner"), stop=until_auth)
    b_auth_url = hops[-1].location or ""
    b_auth = dict(parse_qsl(urlsplit(b_auth_url).query), state=a_auth["state"], nonce=a_auth["nonce"])
    form = requests.get(b_auth_url.split("?")[0] + "?" + urlencode(b_auth), timeout=5)
    assert form.status_code == 200, form.text
    fields = find_auto_submit_form(form.text)
    assert fields is not None and dict(fields.fields)["state"] == a_auth["state"]
    resp, _ = victim.post(f"{a.dev.url}/lti/launch", fields.fields, initiator=b.platform.url + "/auth")
    assert error_of(resp) == (401, "LTI_STATE_PLATFORM_MISMATCH")


# --------------------------------------------------------------------------
# a second platform: login refused until registered, new deployments, keys
# --------------------------------------------------------------------------


def test_a_platform_from_unregistered_to_accepting_new_deployments(
    dev: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    platform = start_platform(port, dev.url, "--client-id", f"interop-new-{port}",
                              "--deployment-id", "deployment-made-in-the-lms",
                              log_dir=tmp_path_factory.mktemp("second-platform"))
    try:
        platform.wait_ready()
        config = requests.get(f"{platform.url}/.config", timeout=5).json()
        pair = DevPair(platform, dev, config, {})

        # 1. not registered: our login initiation refuses it
        resp, hops = Browser().get(start_url(pair, "learner"))
        assert path(hops[-1].url) == "/lti/login"
        assert error_of(resp) == (404, "LTI_PLATFORM_NOT_REGISTERED")

        # 2. registered without a deployment, accepting new ones: any deployment
        #    the platform launches from is taken (and remembered)
        r = register_platform(dev, registration_body(config, deploymentId=None, acceptNewDeployments=True))
        assert r.status_code == 201, r.text
        assert r.json()["acceptNewDeployments"] is True and "deploymentId" not in r.json()
        pair = DevPair(platform, dev, config, r.json())
        got = launch(pair, "instructor")
        assert check_context(pair, got, ["instructor"])["lti"]["platform"]["deploymentId"] == \
            "deployment-made-in-the-lms"
        got = launch(pair, "learner", tamper="unknown_deployment_id")
        assert got.token["lti"]["platform"]["deploymentId"] == "deployment-nobody-registered"

        # 3. its key set unreachable: 502, not a security verdict
        dead = f"http://127.0.0.1:{free_port()}/jwks"
        r = register_platform(dev, registration_body(config, deploymentId=None, acceptNewDeployments=True,
                                                     keysetUrl=dead))
        assert r.status_code == 200 and r.json()["keysetUrl"] == dead, r.text
        resp, _ = Browser().get(start_url(pair, "learner"))
        assert error_of(resp) == (502, "LTI_PLATFORM_KEYS_UNAVAILABLE")

        # 4. fixed again: launches work
        r = register_platform(dev, registration_body(config, deploymentId=None, acceptNewDeployments=True))
        assert r.status_code == 200, r.text
        launch(pair, "learner")
    finally:
        platform.stop()
