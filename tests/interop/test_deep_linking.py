"""Deep Linking 2.0 between an independent platform (platform_server.py, on
lti1p3platform) and our tool (LTI_DEV_URL: the dev server, or the Lambda functions
behind the gateway).

The platform sends an LtiDeepLinkingRequest built by the library's set_dl, whose
opaque `data` is a JSON object (our tool used to refuse that launch). The test plays
the company's app: it takes the app token our tool handed to the app, answers with
`POST /lti/deep-link` (a service key it creates through the admin API, the launch id
as bearer) and posts the auto-submit form our tool returns to the platform's
deep_link_return_url. The platform verifies the response with lti1p3platform's own
validate_deeplinking_resp and then with PyJWT against our JWKS fetched over HTTP;
the test also checks every claim itself, with PyJWT, not with our code.
"""
from __future__ import annotations

import base64
import json
import time
import typing as t

import jwt
import pytest
import requests

from browser import Browser, find_auto_submit_form
from conftest import DEPLOYMENT_ID, DevPair, DevServer
from test_tool_dev import error_of, start_url, verify_app_token

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SETTINGS = DL + "deep_linking_settings"


@pytest.fixture(scope="module")
def service_key(dev: DevServer) -> t.Iterator[str]:
    """A service key for the app's backend, from our admin API; revoked after."""
    admin = {"Authorization": f"Bearer {dev.admin_token}"}
    r = requests.post(f"{dev.url}/admin/service-keys", json={"name": "interop deep linking"},
                      headers=admin, timeout=10)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["key"] and body["id"]
    yield body["key"]
    requests.delete(f"{dev.url}/admin/service-keys/{body['id']}", headers=admin, timeout=10)


class DeepLaunch(t.NamedTuple):
    token: str  # the app token, as our tool handed it to the app
    claims: t.Dict[str, t.Any]  # verified
    sent: t.Dict[str, t.Any]  # the id_token claims the platform sent


def deep_launch(pair: DevPair, user: str = "instructor") -> DeepLaunch:
    """A deep-linking launch from the platform: lands at the app (its picker) with the
    app token."""
    resp, hops = Browser().get(start_url(pair, user, message="deep"))
    assert resp.status_code == 200, (resp.status_code, resp.text[:500], hops)
    assert resp.url == f"{pair.dev.url}/app" and hops[-1].method == "POST", hops
    handoff = dict(hops[-1].sent or [])
    assert set(handoff) == {"app_token"}, handoff
    sent = requests.get(f"{pair.platform.url}/.expected/{user}", timeout=5).json()
    return DeepLaunch(handoff["app_token"], verify_app_token(pair.dev, handoff["app_token"]), sent)


def answer(dev: DevServer, key: t.Optional[str], bearer: t.Optional[str], body: t.Any) -> requests.Response:
    """The app's backend answering: POST /lti/deep-link."""
    headers = {"Accept": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return requests.post(f"{dev.url}/lti/deep-link", json=body, headers=headers, timeout=15)


def items_for(dev: DevServer) -> t.List[t.Dict[str, t.Any]]:
    """What the instructor picked: every shape the platform accepts, small enough that
    the response JWT stays under the 4 KB KMS signs as RAW (moto signs digests
    wrongly; see TESTING.md)."""
    return [
        {
            "type": "ltiResourceLink",
            "title": "Chapter 4 quiz",
            "text": "Picked in the interop test",
            "url": f"{dev.url}/lti/launch",
            "custom": {"chapter": "4", "mode": "quiz"},
            "lineItem": {"scoreMaximum": 25, "label": "Chapter 4 quiz", "resourceId": "quiz-4", "tag": "quiz"},
            "iframe": {"width": 800, "height": 600},
        },
        {"type": "link", "title": "Reading", "url": "https://example.com/reading/4", "window": {"targetName": "_blank"}},
        {"type": "html", "title": "Note", "html": "<p>Read chapter 4 first.</p>"},
    ]


def independently_verified(pair: DevPair, token: str) -> t.Dict[str, t.Any]:
    """The response JWT checked with PyJWT against our JWKS fetched over HTTP, as a
    platform would: RS256, iss = the client_id, aud = the platform's issuer."""
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    key = jwt.PyJWKClient(f"{pair.dev.url}/.well-known/jwks.json", cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(
        token, key.key, algorithms=["RS256"], audience=pair.config["issuer"], issuer=pair.config["clientId"],
        options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
    )


def payload_text(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_a_deep_linking_round_trip_verified_by_the_independent_platform(
    platform_for_dev: DevPair, service_key: str
) -> None:
    pair = platform_for_dev
    launch = deep_launch(pair)
    settings = launch.sent[SETTINGS]
    data = settings["data"]
    assert isinstance(data, dict) and data["nested"]["list"] == [1, "two", None, True]

    # Our tool took the request (its data is a JSON object) and handed the settings
    # to the app, data as it was.
    lti = launch.claims["lti"]
    assert lti["messageType"] == "LtiDeepLinkingRequest"
    dl = lti["services"]["deepLinking"]
    assert dl["deepLinkReturnUrl"] == f"{pair.platform.url}/deep-link-return"
    assert dl["data"] == data
    assert sorted(dl["acceptTypes"]) == ["html", "link", "ltiResourceLink"]
    assert dl["acceptMultiple"] is True and dl["autoCreate"] is True
    assert "resourceLink" not in lti

    # The app's backend answers with the launch id as bearer.
    items = items_for(pair.dev)
    r = answer(pair.dev, service_key, lti["launchId"],
               {"contentItems": items, "msg": "3 items from the interop test", "log": "interop run"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"jwt", "returnUrl", "autoSubmitHtml"}
    assert body["returnUrl"] == f"{pair.platform.url}/deep-link-return"
    form = find_auto_submit_form(body["autoSubmitHtml"])
    assert form is not None and form.method == "post" and form.action == body["returnUrl"]
    assert form.fields == [("JWT", body["jwt"])]

    # Every claim, checked here with PyJWT against our JWKS.
    claims = independently_verified(pair, body["jwt"])
    now = time.time()
    assert claims["iss"] == pair.config["clientId"]
    assert claims["aud"] == pair.platform.url == pair.config["issuer"]
    assert claims[LTI + "deployment_id"] == DEPLOYMENT_ID
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "version"] == "1.3.0"
    assert isinstance(claims["nonce"], str) and len(claims["nonce"]) >= 16
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert abs(claims["iat"] - now) <= 60
    assert claims[DL + "content_items"] == items  # exactly as sent, in order
    assert claims[DL + "msg"] == "3 items from the interop test" and claims[DL + "log"] == "interop run"
    # data comes back as it was sent: same value, same member order
    assert claims[DL + "data"] == data
    assert json.dumps(claims[DL + "data"]) == json.dumps(data)
    assert json.dumps(data, separators=(",", ":")) in payload_text(body["jwt"])

    # The browser posts the form to the platform, which verifies it with the library
    # and PyJWT and takes the items.
    resp, hops = Browser().post(form.action, form.fields, initiator=f"{pair.dev.url}/app")
    assert resp.status_code == 200, resp.text[:500]
    took = resp.json()
    assert took["ok"] is True and took["items"] == items and took["user"] == "instructor"
    assert took["claims"]["nonce"] == claims["nonce"]

    # The platform takes each response once; our tool answers each request once.
    again, _ = Browser().post(form.action, form.fields, initiator=f"{pair.dev.url}/app")
    assert again.status_code == 400 and again.json()["check"] == "nonce", again.text
    second = answer(pair.dev, service_key, lti["launchId"], {"contentItems": items})
    assert error_of(second) == (409, "LTI_ALREADY_ANSWERED")


def test_the_app_token_as_bearer_and_an_empty_answer(platform_for_dev: DevPair, service_key: str) -> None:
    """The instructor cancels: no items, with the app token itself as bearer."""
    pair = platform_for_dev
    launch = deep_launch(pair)
    r = answer(pair.dev, service_key, launch.token, {"contentItems": [], "errormsg": "Nothing picked"})
    assert r.status_code == 200, r.text
    body = r.json()
    claims = independently_verified(pair, body["jwt"])
    assert claims[DL + "content_items"] == [] and claims[DL + "errormsg"] == "Nothing picked"
    assert claims[DL + "data"] == launch.sent[SETTINGS]["data"]
    form = find_auto_submit_form(body["autoSubmitHtml"])
    assert form is not None
    resp, _ = Browser().post(form.action, form.fields)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["items"] == []


def test_the_independent_platform_refuses_a_tampered_response(platform_for_dev: DevPair, service_key: str) -> None:
    """The verifier is not a rubber stamp: one changed claim, and the signature fails."""
    pair = platform_for_dev
    launch = deep_launch(pair)
    r = answer(pair.dev, service_key, launch.claims["lti"]["launchId"],
               {"contentItems": [{"type": "link", "url": "https://example.com/a"}]})
    assert r.status_code == 200, r.text
    head, payload, sig = r.json()["jwt"].split(".")
    claims = json.loads(payload_text(r.json()["jwt"]))
    claims[DL + "content_items"][0]["url"] = "https://evil.example/a"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    resp, _ = Browser().post(f"{pair.platform.url}/deep-link-return", [("JWT", f"{head}.{forged}.{sig}")])
    assert resp.status_code == 400 and resp.json()["check"] == "signature", resp.text


def test_what_the_platform_or_our_rules_do_not_allow_is_refused(platform_for_dev: DevPair, service_key: str) -> None:
    pair = platform_for_dev
    launch = deep_launch(pair)
    launch_id = launch.claims["lti"]["launchId"]
    link = {"contentItems": [{"type": "link", "url": "https://example.com/a"}]}
    # this platform does not take files
    r = answer(pair.dev, service_key, launch_id, {"contentItems": [{"type": "file", "url": "https://example.com/f"}]})
    assert error_of(r) == (400, "LTI_CONTENT_TYPE_NOT_ACCEPTED")
    assert r.json()["error"]["fields"][0]["field"] == "contentItems[0].type"
    # no service key, a wrong one, an unknown launch
    assert error_of(answer(pair.dev, None, launch_id, link)) == (401, "LTI_SERVICE_KEY_INVALID")
    assert error_of(answer(pair.dev, "lsk_nobody_" + "x" * 40, launch_id, link)) == (401, "LTI_SERVICE_KEY_INVALID")
    assert error_of(answer(pair.dev, service_key, "no-such-launch", link)) == (401, "LTI_LAUNCH_TOKEN_INVALID")
    # a learner's deep-linking launch may not answer
    learner = deep_launch(pair, "learner")
    assert error_of(answer(pair.dev, service_key, learner.claims["lti"]["launchId"], link)) == (
        403, "LTI_ROLE_NOT_ALLOWED")
    # a resource-link launch has nothing to answer
    resp, hops = Browser().get(start_url(pair, "instructor"))
    resource = verify_app_token(pair.dev, dict(hops[-1].sent or [])["app_token"])
    assert error_of(answer(pair.dev, service_key, resource["lti"]["launchId"], link)) == (
        400, "LTI_NOT_DEEP_LINKING")
    # after all that, the instructor's request can still be answered
    r = answer(pair.dev, service_key, launch_id, link)
    assert r.status_code == 200, r.text
