"""Grades and rosters between our tool (LTI_DEV_URL: the dev server, or the Lambda
functions behind the gateway) and an independent platform (platform_server.py: the
AGS and NRPS handlers and the token endpoint of lti1p3platform, hardened in the glue).

The test plays the company's app: a launch hands it an app token; its backend calls
our /lti/ags and /lti/nrps with a service key it creates through the admin API and
the launch id as bearer. Our tool gets access tokens from the platform's token
endpoint (a client assertion the platform checks: signature against our JWKS, iss,
sub, aud exactly its token URL, exp, jti never seen) and calls the platform's
services, whose own records (/.gradebook, /.services) say what arrived.
"""
from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from conftest import DevPair, DevServer
from test_tool_dev import launch

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "plat-user-learner-0001"
INSTRUCTOR = "plat-user-instructor-0002"


@pytest.fixture(scope="module")
def service_key(dev: DevServer) -> t.Iterator[str]:
    """A service key for the app's backend, from our admin API; revoked after."""
    admin = {"Authorization": f"Bearer {dev.admin_token}"}
    r = requests.post(f"{dev.url}/admin/service-keys", json={"name": "interop grades and rosters"},
                      headers=admin, timeout=10)
    assert r.status_code == 201, r.text
    body = r.json()
    yield body["key"]
    requests.delete(f"{dev.url}/admin/service-keys/{body['id']}", headers=admin, timeout=10)


class App:
    """The app's backend: our services with the service key and a launch's id."""

    def __init__(self, dev: DevServer, key: str, launch_id: str) -> None:
        self.dev, self.key, self.launch_id = dev, key, launch_id

    def call(self, method: str, path: str, body: t.Any = None, **params: str) -> requests.Response:
        url = f"{self.dev.url}{path}" + (f"?{urlencode(params)}" if params else "")
        headers = {"x-api-key": self.key, "Authorization": f"Bearer {self.launch_id}",
                   "Accept": "application/json"}
        return requests.request(method, url, json=body, headers=headers, timeout=30)


def app_for(pair: DevPair, key: str, user: str) -> t.Tuple[App, t.Dict[str, t.Any]]:
    got = launch(pair, user)
    lti = got.token["lti"]
    return App(pair.dev, key, lti["launchId"]), got.token


def gradebook(pair: DevPair) -> t.Dict[str, t.Any]:
    return t.cast(t.Dict[str, t.Any], requests.get(f"{pair.platform.url}/.gradebook", timeout=5).json())


def services_log(pair: DevPair) -> t.Dict[str, t.Any]:
    return t.cast(t.Dict[str, t.Any], requests.get(f"{pair.platform.url}/.services", timeout=5).json())


def quiz_url(pair: DevPair) -> str:
    return f"{pair.platform.url}/ags/ctx-interop-101/lineitems/li-quiz-3/lineitem"


def test_a_score_posted_through_our_tool_appears_in_the_platforms_gradebook(
    platform_for_dev: DevPair, service_key: str
) -> None:
    pair = platform_for_dev
    app, claims = app_for(pair, service_key, "instructor")
    assert claims["lti"]["services"]["ags"]["lineitem"] == quiz_url(pair)

    # The instructor grades the learner on the launch's own line item.
    r = app.call("POST", "/lti/ags/scores", {"userId": LEARNER, "scoreGiven": 8, "scoreMaximum": 10,
                                             "comment": "Good work"})
    assert r.status_code == 200, r.text
    posted = r.json()
    assert posted["lineItem"] == quiz_url(pair)
    assert posted["status"] in (200, 201, 204)
    landed = [s for s in gradebook(pair)["scores"][quiz_url(pair)] if s["timestamp"] == posted["score"]["timestamp"]]
    assert landed == [{
        "userId": LEARNER, "scoreGiven": 8, "scoreMaximum": 10, "comment": "Good work",
        "timestamp": posted["score"]["timestamp"],
        "activityProgress": "Completed", "gradingProgress": "FullyGraded",
    }]

    # Sent again with the same timestamp: harmless, the platform keeps one.
    before = len(gradebook(pair)["scores"][quiz_url(pair)])
    retry = dict(posted["score"], lineItemUrl=quiz_url(pair))
    assert app.call("POST", "/lti/ags/scores", retry).status_code == 200
    assert len(gradebook(pair)["scores"][quiz_url(pair)]) == before
    # An older one: the platform refuses it (409), the tool says so.
    older = dict(retry, timestamp="2001-01-01T00:00:00.000Z")
    r = app.call("POST", "/lti/ags/scores", older)
    assert r.status_code == 502 and r.json()["error"]["code"] == "LTI_PLATFORM_REJECTED", r.text
    assert "409" in r.json()["error"]["message"]

    # A line item of its own: created, found by its tag, read, replaced, scored, deleted.
    r = app.call("POST", "/lti/ags/lineitems", {"label": "Chapter 5 essay", "scoreMaximum": 20,
                                                "resourceLinkId": "rl-interop-quiz-3", "tag": "essay",
                                                "resourceId": "essay-5"})
    assert r.status_code == 201, r.text
    essay = r.json()["lineItem"]["id"]
    assert essay.startswith(f"{pair.platform.url}/ags/ctx-interop-101/lineitems/")
    stored = [i for i in gradebook(pair)["lineItems"] if i["id"] == essay]
    assert stored == [{"id": essay, "label": "Chapter 5 essay", "scoreMaximum": 20,
                       "resourceLinkId": "rl-interop-quiz-3", "tag": "essay", "resourceId": "essay-5"}]
    r = app.call("GET", "/lti/ags/lineitems", tag="essay")
    assert r.status_code == 200 and [i["id"] for i in r.json()["lineItems"]] == [essay], r.text
    r = app.call("PUT", "/lti/ags/lineitem", {"label": "Chapter 5 essay (rescored)", "scoreMaximum": 25,
                                              "resourceLinkId": "rl-interop-quiz-3", "tag": "essay"}, url=essay)
    assert r.status_code == 200, r.text
    assert app.call("GET", "/lti/ags/lineitem", url=essay).json()["lineItem"]["label"] == "Chapter 5 essay (rescored)"
    for user, given in ((LEARNER, 21), ("plat-student-03", 17)):
        r = app.call("POST", "/lti/ags/scores", {"userId": user, "scoreGiven": given, "scoreMaximum": 25,
                                                 "lineItemUrl": essay})
        assert r.status_code == 200, r.text
    r = app.call("GET", "/lti/ags/results", lineItemUrl=essay)
    assert r.status_code == 200, r.text
    assert sorted((x["userId"], x["resultScore"]) for x in r.json()["results"]) == sorted([
        (LEARNER, 21), ("plat-student-03", 17)])
    r = app.call("GET", "/lti/ags/results", lineItemUrl=essay, userId=LEARNER)
    assert [x["userId"] for x in r.json()["results"]] == [LEARNER]
    assert app.call("DELETE", "/lti/ags/lineitem", url=essay).status_code == 200
    assert essay not in [i["id"] for i in gradebook(pair)["lineItems"]]

    # Access tokens are reused: ten more scores, no token request.
    tokens = services_log(pair)["token_requests"]
    calls = len(services_log(pair)["calls"])
    for i in range(10):
        r = app.call("POST", "/lti/ags/scores", {"userId": f"plat-student-{i + 1:02d}", "scoreGiven": i,
                                                 "scoreMaximum": 10})
        assert r.status_code == 200, r.text
    log = services_log(pair)
    print(f"\n10 score posts: {log['token_requests'] - tokens} token request(s), "
          f"{len(log['calls']) - calls} platform call(s)")
    assert log["token_requests"] == tokens
    assert len(log["calls"]) - calls == 10


def test_the_roster_comes_back_with_every_page(platform_for_dev: DevPair, service_key: str) -> None:
    pair = platform_for_dev
    learner_launch = launch(pair, "learner")
    app, _ = app_for(pair, service_key, "instructor")
    calls = len(services_log(pair)["calls"])
    r = app.call("GET", "/lti/nrps/members")
    assert r.status_code == 200, r.text
    roster = r.json()
    log = services_log(pair)["calls"][calls:]
    print(f"\nroster read: {len(log)} platform call(s): {[c['path'] for c in log]}")
    platform_roster = gradebook(pair)["roster"]
    assert roster["pages"] == 3 and len(log) == 3
    assert [dict(parse_qsl(urlsplit(c["path"]).query)) for c in log] == [
        {}, {"limit": "10", "page": "2"}, {"limit": "10", "page": "3"}], "the platform's next links were followed"
    assert roster["context"]["id"] == "ctx-interop-101" and roster["context"]["title"] == "Interoperability 101"
    members = {m["userId"]: m for m in roster["members"]}
    assert list(members) == [m["user_id"] for m in platform_roster], "every member, in order"
    assert members[LEARNER]["name"] == "Lena Learner" and members[LEARNER]["email"] == "lena.learner@example.edu"
    assert members[LEARNER]["roles"]["mapped"] == ["learner"]
    assert members[INSTRUCTOR]["roles"]["mapped"] == ["instructor"]
    assert "name" not in members["plat-user-anon-0003"]
    assert members["plat-student-05"]["roles"] == {"raw": ["Learner"], "mapped": ["learner"]}
    assert members["plat-student-07"]["roles"]["mapped"] == ["instructor", "teaching_assistant"]
    assert members["plat-student-13"]["status"] == "Inactive"
    # The app user id is the one the learner's own launch handed the app.
    assert members[LEARNER]["appUserId"] == learner_launch.token["sub"]

    # Filters are passed on.
    r = app.call("GET", "/lti/nrps/members", role="Learner")
    assert r.status_code == 200, r.text
    assert r.json()["members"] and all(m["roles"]["mapped"] == ["learner"] for m in r.json()["members"])
    r = app.call("GET", "/lti/nrps/members", rlid="rl-interop-quiz-3")
    assert r.status_code == 200 and len(r.json()["members"]) == len(platform_roster), r.text


def test_a_learners_launch_posts_only_its_own_score(platform_for_dev: DevPair, service_key: str) -> None:
    pair = platform_for_dev
    app, claims = app_for(pair, service_key, "learner")
    before = gradebook(pair)["scores"]

    # Its own score, to its own line item: the platform has it under the learner.
    r = app.call("POST", "/lti/ags/scores", {"scoreGiven": 6, "scoreMaximum": 10})
    assert r.status_code == 200, r.text
    posted = r.json()
    assert posted["lineItem"] == quiz_url(pair) and posted["score"]["userId"] == LEARNER
    assert [s for s in gradebook(pair)["scores"][quiz_url(pair)]
            if s["timestamp"] == posted["score"]["timestamp"]] == [dict(
                userId=LEARNER, scoreGiven=6, scoreMaximum=10, timestamp=posted["score"]["timestamp"],
                activityProgress="Completed", gradingProgress="FullyGraded")]
    # By its app user id too.
    r = app.call("POST", "/lti/ags/scores", {"userId": claims["sub"], "scoreGiven": 7, "scoreMaximum": 10})
    assert r.status_code == 200 and r.json()["score"]["userId"] == LEARNER, r.text
    after_own = gradebook(pair)["scores"]

    # Nothing else.
    refused = [
        ("POST", "/lti/ags/scores", {"userId": INSTRUCTOR, "scoreGiven": 10, "scoreMaximum": 10}, {}),
        ("POST", "/lti/ags/scores", {"userId": "plat-student-02", "scoreGiven": 10, "scoreMaximum": 10}, {}),
        ("POST", "/lti/ags/scores", {"scoreGiven": 10, "scoreMaximum": 10,
                                     "lineItemUrl": f"{pair.platform.url}/ags/ctx-interop-101/lineitems/li-9/lineitem"},
         {}),
        ("POST", "/lti/ags/lineitems", {"label": "Mine", "scoreMaximum": 1}, {}),
        ("GET", "/lti/ags/lineitems", None, {}),
        ("GET", "/lti/ags/results", None, {"lineItemUrl": quiz_url(pair)}),
        ("DELETE", "/lti/ags/lineitem", None, {"url": quiz_url(pair)}),
        ("GET", "/lti/nrps/members", None, {}),
    ]
    for method, path, body, params in refused:
        r = app.call(method, path, body, **params)
        assert r.status_code == 403, (path, body, r.text)
        assert r.json()["error"]["code"] == "LTI_ROLE_NOT_ALLOWED", r.text
    assert gradebook(pair)["scores"] == after_own, "nothing reached the platform"
    assert len(after_own[quiz_url(pair)]) == len(before[quiz_url(pair)]) + 2

    # The app token itself is as good as the launch id, and as limited.
    handoff = launch(pair, "learner")
    token = dict(handoff.hops[-1].sent or [])["app_token"]
    by_token = App(pair.dev, service_key, token)
    assert by_token.call("POST", "/lti/ags/scores", {"scoreGiven": 9, "scoreMaximum": 10}).status_code == 200
    assert by_token.call("GET", "/lti/nrps/members").status_code == 403
