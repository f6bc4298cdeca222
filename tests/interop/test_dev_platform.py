"""The reverse check: our demo platform (the dev server's /platform, written in
Rust) launches into an independent tool, pylti1p3 (pylti_tool.py).

The tool is registered with our demo platform through `POST /platform/tools`
(its own client_id; redirect URI `<tool>/lti/launch`), then learner, instructor
and privacy-restricted launches go platform -> pylti1p3 login -> our
/platform/auth -> pylti1p3 launch. pylti1p3 (plus pylti_tool.py's extra checks)
must validate each, and the claims must be what our demo platform promises.
"""
from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests

from browser import Browser
from conftest import DevServer
from servers import ServerProcess, free_port, start_pylti_tool

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

# shared/devkit/src/platform.rs: USERS
DEMO_USERS: t.Dict[str, t.Dict[str, t.Any]] = {
    "instructor": {
        "sub": "demo-instructor-1", "name": "Ian Instructor", "given_name": "Ian", "family_name": "Instructor",
        "email": "ian.instructor@demo.example",
        "roles": [ROLE + "membership#Instructor", ROLE + "institution/person#Faculty"],
        "access": {"student": False, "teacher": True, "staff": True},
    },
    "learner": {
        "sub": "demo-learner-1", "name": "Lea Learner", "given_name": "Lea", "family_name": "Learner",
        "email": "lea.learner@demo.example",
        "roles": [ROLE + "membership#Learner", ROLE + "institution/person#Student"],
        "access": {"student": True, "teacher": False, "staff": False},
    },
    "private": {
        "sub": "demo-private-7f3a9c",
        "roles": [ROLE + "membership#Learner"],
        "access": {"student": True, "teacher": False, "staff": False},
    },
}


class DevPlatformTool(t.NamedTuple):
    dev: DevServer
    tool: ServerProcess
    registration: t.Dict[str, t.Any]  # what POST /platform/tools answered


@pytest.fixture(scope="module")
def pylti_from_dev(dev: DevServer, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[DevPlatformTool]:
    port = free_port()
    r = requests.post(f"{dev.url}/platform/tools", json={"url": f"http://127.0.0.1:{port}", "name": "pylti1p3"},
                      timeout=10)
    assert r.status_code == 201, r.text
    reg = r.json()
    p = reg["platform"]
    tool = start_pylti_tool(
        port,
        issuer=p["issuer"],
        client_id=reg["clientId"],
        deployment_ids=[reg["deploymentId"]],
        auth_url=p["authUrl"],
        jwks_url=p["jwksUrl"],
        token_url=p["tokenUrl"],
        log_dir=tmp_path_factory.mktemp("pylti-from-dev"),
    )
    try:
        tool.wait_ready()
        yield DevPlatformTool(dev, tool, reg)
    finally:
        tool.stop()


def path(url: str) -> str:
    return urlsplit(url).path


def test_the_tool_is_registered_with_its_own_client_id(pylti_from_dev: DevPlatformTool) -> None:
    s = pylti_from_dev
    reg, tool = s.registration, s.tool.url
    assert reg["clientId"].startswith("lti-dev-tool-") and reg["clientId"] != "lti-dev-demo"
    assert (reg["loginUrl"], reg["redirectUri"], reg["targetLinkUri"]) == (
        f"{tool}/lti/login", f"{tool}/lti/launch", f"{tool}/lti/launch")
    assert reg["platform"] == {
        "issuer": f"{s.dev.url}/platform",
        "authUrl": f"{s.dev.url}/platform/auth",
        "jwksUrl": f"{s.dev.url}/platform/jwks",
        "tokenUrl": f"{s.dev.url}/platform/token",
    }
    assert reg["launchUrls"]["learner"] == f"{s.dev.url}/platform/launch?user=learner&tool={reg['id']}"
    # listed, and registering the same tool again changes nothing
    listed = requests.get(f"{s.dev.url}/platform/tools", timeout=5).json()["tools"]
    assert listed[0]["id"] == "lti-lambda" and reg["id"] in [x["id"] for x in listed]
    again = requests.post(f"{s.dev.url}/platform/tools", json={"url": tool}, timeout=5)
    assert again.status_code == 200 and again.json()["clientId"] == reg["clientId"]
    # JSON only: a cross-site HTML form cannot register a tool
    form = requests.post(f"{s.dev.url}/platform/tools", data={"url": tool}, timeout=5)
    assert form.status_code == 415


@pytest.mark.parametrize("user", ["learner", "instructor", "private"])
def test_our_platform_launches_into_pylti1p3(pylti_from_dev: DevPlatformTool, user: str) -> None:
    s = pylti_from_dev
    reg, tool, issuer = s.registration, s.tool.url, f"{s.dev.url}/platform"
    resp, hops = Browser().get(reg["launchUrls"][user])
    assert resp.status_code == 200, (resp.text[:500], hops)
    body = resp.json()
    assert body["ok"] is True, body  # pylti1p3 and pylti_tool.py's checks passed

    # our platform -> pylti1p3 login -> our auth -> pylti1p3 launch
    assert [(h.reason, h.method, h.url.split("?")[0], h.status) for h in hops] == [
        ("start", "GET", f"{s.dev.url}/platform/launch", 302),
        ("redirect", "GET", f"{tool}/lti/login", 302),
        ("redirect", "GET", f"{s.dev.url}/platform/auth", 200),
        ("auto-form", "POST", f"{tool}/lti/launch", 200),
    ]
    login = dict(parse_qsl(urlsplit(hops[1].url).query))
    assert login["iss"] == issuer and login["client_id"] == reg["clientId"]
    assert login["target_link_uri"] == f"{tool}/lti/launch" and login["lti_deployment_id"] == "1"
    auth = dict(parse_qsl(urlsplit(hops[2].url).query))
    assert auth["client_id"] == reg["clientId"] and auth["redirect_uri"] == f"{tool}/lti/launch"

    # the id_token as posted, verified independently with PyJWT and our platform's JWKS
    posted = dict(hops[3].sent or [])
    assert set(posted) == {"id_token", "state"} and posted["state"] == auth["state"]
    header = jwt.get_unverified_header(posted["id_token"])
    assert header["alg"] == "RS256" and header["kid"]
    key = jwt.PyJWKClient(reg["platform"]["jwksUrl"], cache_keys=False).get_signing_key_from_jwt(posted["id_token"])
    sent = jwt.decode(posted["id_token"], key.key, algorithms=["RS256"], audience=reg["clientId"], issuer=issuer,
                      options={"require": ["exp", "iat", "sub", "nonce"]})
    claims = body["claims"]
    assert claims == sent  # what pylti1p3 validated is what our platform signed

    # and it is what our demo platform promises
    want = DEMO_USERS[user]
    assert claims["sub"] == want["sub"] and claims["nonce"] == auth["nonce"]
    assert claims[LTI + "roles"] == want["roles"]
    assert body["access"] == want["access"]
    for k in ("name", "given_name", "family_name", "email"):
        assert claims.get(k) == want.get(k), k
    assert claims[LTI + "version"] == "1.3.0"
    assert claims[LTI + "message_type"] == body["message_type"] == "LtiResourceLinkRequest"
    assert body["is_resource_launch"] is True
    assert claims[LTI + "deployment_id"] == "1"
    assert claims[LTI + "target_link_uri"] == f"{tool}/lti/launch"
    assert claims[LTI + "resource_link"] == {"id": "demo-link-1", "title": "Demo Activity"}
    assert claims[LTI + "context"] == {
        "id": "demo-course-101", "label": "DEMO101", "title": "Demo Course 101",
        "type": [ROLE + "course#CourseOffering"],
    }
    assert claims[LTI + "custom"] == {"unit": "1", "demo": "true"}
    assert claims[LTI + "tool_platform"]["name"] == "lti-lambda demo platform"
    assert claims[LTI + "launch_presentation"]["return_url"] == issuer
    assert body["has_ags"] and body["has_nrps"]
    assert claims[AGS]["lineitems"] == f"{issuer}/courses/demo-course-101/lineitems"
    assert claims[AGS]["scope"] == ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                                    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                                    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                                    "https://purl.imsglobal.org/spec/lti-ags/scope/score"]
    # the demo activity has no line item for this tool (its gradebook is per tool)
    assert "lineitem" not in claims[AGS]
    assert claims[NRPS] == {"context_memberships_url": f"{issuer}/courses/demo-course-101/memberships",
                            "service_versions": ["2.0"]}
    assert 0 < claims["exp"] - claims["iat"] <= 600


def test_our_platform_sends_a_deep_linking_request_pylti1p3_accepts(pylti_from_dev: DevPlatformTool) -> None:
    s = pylti_from_dev
    resp, hops = Browser().get(s.registration["launchUrls"]["instructor"] + "&message=deep")
    assert resp.status_code == 200, resp.text[:500]
    body = resp.json()
    assert body["ok"] is True and body["message_type"] == "LtiDeepLinkingRequest"
    assert body["is_resource_launch"] is False
    settings = body["claims"][DL]
    assert settings["deep_link_return_url"] == f"{s.dev.url}/platform/deep-link-return"
    assert settings["accept_types"] == ["ltiResourceLink", "link", "html"] and settings["data"]
    assert settings["accept_multiple"] is True and settings["accept_lineitem"] is True


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uri": "{dev}/lti/launch"},  # our own tool's redirect URI, with pylti's client_id
        {"redirect_uri": "{tool}/lti/launch?next=/x"},
        {"redirect_uri": "{tool}/elsewhere"},
        {"client_id": "lti-dev-tool-nobody"},
    ],
    ids=["other_tools_redirect", "redirect_with_query", "redirect_elsewhere", "unknown_client"],
)
def test_our_platform_posts_nothing_to_an_unregistered_redirect_uri(
    pylti_from_dev: DevPlatformTool, change: t.Dict[str, str]
) -> None:
    s = pylti_from_dev

    def on_request(method: str, url: str, fields: t.Any) -> t.Any:
        if path(url) == "/platform/auth":
            q = dict(parse_qsl(urlsplit(url).query))
            q.update({k: v.format(dev=s.dev.url, tool=s.tool.url) for k, v in change.items()})
            return method, url.split("?")[0] + "?" + urlencode(q), fields
        return None

    resp, hops = Browser().get(s.registration["launchUrls"]["learner"], on_request=on_request)
    assert resp.status_code == 400, (resp.text[:300], hops)
    assert path(hops[-1].url) == "/platform/auth"  # no id_token went anywhere
    assert "id_token" not in resp.text
