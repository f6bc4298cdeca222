//! Grades and rosters through a running dev server (issue 9): an instructor's launch,
//! the app's backend with its service key and the launch's token (or launch id), line
//! items created, scores posted, results and the whole roster read from a scripted LMS
//! over HTTP; and who may do what.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Lms, LTI};
use lti_dev::scripted::{LmsServices, MEMBERS};
use serde_json::{json, Value};

const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

struct Course {
    dev: Dev,
    lms: Lms,
    services: LmsServices,
    /// The line item the platform made for resource link rl-1.
    lineitem: String,
}

async fn course() -> Course {
    let dev = Dev::start().await;
    let lms = Lms::start("ags-client").await;
    let services =
        LmsServices::start(&format!("{}/.well-known/jwks.json", dev.tool), "ags-client").await;
    let mut registration = lms.registration();
    registration["authTokenUrl"] = json!(services.token_url());
    let reply = lms.admin_post(&dev.tool, ADMIN, &registration).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let lineitem = services.add_line_item("Activity 1", Some("rl-1"));
    Course {
        dev,
        lms,
        services,
        lineitem,
    }
}

impl Course {
    /// A launch of `sub` with `role` from course c1 / rl-1; (app token, claims).
    async fn launch(&self, sub: &str, role: &str) -> (String, Value) {
        let mut claims = self.lms.claims(&self.dev.tool, sub, self.dev.now());
        claims[format!("{LTI}roles")] = json!([role]);
        claims[format!("{LTI}context")] = json!({"id": "course-1", "title": "Course 1"});
        for (name, value) in self.services.claims(Some(&self.lineitem)) {
            claims[name] = value;
        }
        let answer = self.lms.launch(&self.dev.tool, claims).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        (
            answer.app_token().expect("token"),
            answer.app_token_claims().expect("claims"),
        )
    }

    fn key(&self) -> String {
        self.dev.server.service_key.clone()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.dev.tool))
            .header("accept", "application/json");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn code(answer: &(u16, Value)) -> (u16, String) {
    (
        answer.0,
        answer.1["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

use reqwest::Method;

#[tokio::test]
async fn an_instructor_creates_a_line_item_posts_a_score_reads_results_and_the_roster() {
    let c = course().await;
    let (token, _) = c.launch("teacher-1", INSTRUCTOR).await;
    let key = c.key();

    let (status, created) = c
        .call(
            Method::POST,
            "/lti/ags/lineitems",
            Some(&key),
            Some(&token),
            Some(json!({"label": "Quiz 2", "scoreMaximum": 50, "resourceLinkId": "rl-1", "tag": "quiz"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let quiz = created["lineItem"]["id"].as_str().expect("id").to_string();
    assert_eq!(quiz, c.services.line_item_url(2));

    let (status, posted) = c
        .call(
            Method::POST,
            "/lti/ags/scores",
            Some(&key),
            Some(&token),
            Some(json!({"userId": "student-7", "scoreGiven": 42, "scoreMaximum": 50, "lineItemUrl": quiz})),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    let sent = &c.services.scores(2)[0];
    assert_eq!(sent["userId"], "student-7");
    assert_eq!(sent["scoreGiven"], 42);
    assert_eq!(sent["activityProgress"], "Completed");
    assert_eq!(sent["gradingProgress"], "FullyGraded");
    assert_eq!(
        sent["timestamp"], posted["score"]["timestamp"],
        "retry with the same timestamp"
    );

    let (status, results) = c
        .call(
            Method::GET,
            &format!("/lti/ags/results?lineItemUrl={}", urlencode(&quiz)),
            Some(&key),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["results"][0]["userId"], "student-7");
    assert_eq!(results["results"][0]["resultScore"], 42);

    let (status, items) = c
        .call(
            Method::GET,
            "/lti/ags/lineitems?resourceLinkId=rl-1",
            Some(&key),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(items["lineItems"].as_array().expect("list").len(), 2);

    let (status, roster) = c
        .call(
            Method::GET,
            "/lti/nrps/members",
            Some(&key),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{roster}");
    let members = roster["members"].as_array().expect("members");
    assert_eq!(members.len(), MEMBERS, "every page");
    assert_eq!(roster["pages"], 4);
    assert_eq!(members[0]["roles"]["mapped"], json!(["instructor"]));
    assert_eq!(members[3]["roles"]["mapped"], json!(["learner"]));
    assert!(members[3]["appUserId"]
        .as_str()
        .is_some_and(|id| id.len() == 36));

    let token_requests = c.services.token_requests();
    println!(
        "platform calls: {} service requests, {token_requests} token requests (one per scope: lineitem, score, result.readonly, memberships)",
        c.services.requests().len()
    );
    assert!(token_requests <= 4, "tokens are cached: {token_requests}");
    c.dev.server.stop().await;
}

fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).expect("encode")[2..].to_string()
}

#[tokio::test]
async fn a_learner_posts_its_own_score_by_default_to_its_resource_links_line_item() {
    let c = course().await;
    let (token, claims) = c.launch("student-3", LEARNER).await;
    let launch_id = claims["lti"]["launchId"]
        .as_str()
        .expect("launch id")
        .to_string();
    // The launch id works instead of the whole token.
    let (status, posted) = c
        .call(
            Method::POST,
            "/lti/ags/scores",
            Some(&c.key()),
            Some(&launch_id),
            Some(json!({"scoreGiven": 80, "scoreMaximum": 100})),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["lineItem"], c.lineitem);
    let sent = &c.services.scores(1)[0];
    assert_eq!(sent["userId"], "student-3", "the launch's own user");
    // Its own app user id names it too.
    let app_user = claims["sub"].as_str().expect("sub");
    let (status, _) = c
        .call(
            Method::POST,
            "/lti/ags/scores",
            Some(&c.key()),
            Some(&token),
            Some(json!({"userId": app_user, "scoreGiven": 81, "scoreMaximum": 100})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        c.services.scores(1)[1]["userId"],
        "student-3",
        "mapped back to the platform's id"
    );
    c.dev.server.stop().await;
}

#[tokio::test]
async fn who_may_call_what() {
    let c = course().await;
    let (learner, _) = c.launch("student-3", LEARNER).await;
    let (teacher, teacher_claims) = c.launch("teacher-1", INSTRUCTOR).await;
    let key = c.key();
    let score = |user: &str| json!({"userId": user, "scoreGiven": 1, "scoreMaximum": 10});

    // No key, a wrong key, a revoked key.
    assert_eq!(
        code(
            &c.call(
                Method::POST,
                "/lti/ags/scores",
                None,
                Some(&learner),
                Some(score("student-3"))
            )
            .await
        ),
        (401, "LTI_SERVICE_KEY_INVALID".into())
    );
    let wrong = format!("lsk_nokey_{}", "x".repeat(43));
    assert_eq!(
        code(
            &c.call(
                Method::POST,
                "/lti/ags/scores",
                Some(&wrong),
                Some(&learner),
                Some(score("student-3"))
            )
            .await
        ),
        (401, "LTI_SERVICE_KEY_INVALID".into())
    );
    let (_, created) = reqwest_admin(
        &c,
        Method::POST,
        "/admin/service-keys",
        Some(json!({"name": "soon revoked"})),
    )
    .await;
    let revoked = created["key"].as_str().expect("key").to_string();
    assert_eq!(
        c.call(
            Method::GET,
            "/lti/nrps/members",
            Some(&revoked),
            Some(&teacher),
            None
        )
        .await
        .0,
        200
    );
    reqwest_admin(
        &c,
        Method::DELETE,
        &format!(
            "/admin/service-keys/{}",
            created["id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(
        code(
            &c.call(
                Method::GET,
                "/lti/nrps/members",
                Some(&revoked),
                Some(&teacher),
                None
            )
            .await
        ),
        (401, "LTI_SERVICE_KEY_INVALID".into())
    );

    // A learner: its own score only; never another's, never line items, never the roster.
    assert_eq!(
        c.call(
            Method::POST,
            "/lti/ags/scores",
            Some(&key),
            Some(&learner),
            Some(score("student-3"))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        code(
            &c.call(
                Method::POST,
                "/lti/ags/scores",
                Some(&key),
                Some(&learner),
                Some(score("student-4"))
            )
            .await
        ),
        (403, "LTI_ROLE_NOT_ALLOWED".into())
    );
    assert_eq!(
        code(
            &c.call(
                Method::POST,
                "/lti/ags/lineitems",
                Some(&key),
                Some(&learner),
                Some(json!({"label": "x", "scoreMaximum": 1}))
            )
            .await
        ),
        (403, "LTI_ROLE_NOT_ALLOWED".into())
    );
    assert_eq!(
        code(
            &c.call(
                Method::GET,
                "/lti/nrps/members",
                Some(&key),
                Some(&learner),
                None
            )
            .await
        ),
        (403, "LTI_ROLE_NOT_ALLOWED".into())
    );
    assert_eq!(
        code(
            &c.call(
                Method::GET,
                "/lti/ags/lineitems",
                Some(&key),
                Some(&learner),
                None
            )
            .await
        ),
        (403, "LTI_ROLE_NOT_ALLOWED".into())
    );
    let other_item = c.services.add_line_item("Other", Some("rl-9"));
    assert_eq!(
        code(
            &c.call(
                Method::POST,
                "/lti/ags/scores",
                Some(&key),
                Some(&learner),
                Some(json!({"scoreGiven": 1, "scoreMaximum": 10, "lineItemUrl": other_item}))
            )
            .await
        ),
        (403, "LTI_ROLE_NOT_ALLOWED".into())
    );
    // A learner's app token without a key does nothing either.
    assert_eq!(
        code(
            &c.call(
                Method::POST,
                "/lti/ags/scores",
                None,
                Some(&learner),
                Some(score("student-3"))
            )
            .await
        ),
        (401, "LTI_SERVICE_KEY_INVALID".into())
    );
    let before = c.services.scores(1).len();
    assert_eq!(
        before, 1,
        "only the learner's own score reached the platform"
    );

    // An instructor: anyone's score, line items, the roster.
    assert_eq!(
        c.call(
            Method::POST,
            "/lti/ags/scores",
            Some(&key),
            Some(&teacher),
            Some(score("student-4"))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            Method::GET,
            "/lti/nrps/members",
            Some(&key),
            Some(&teacher),
            None
        )
        .await
        .0,
        200
    );

    // A backend job: the course by registration id and context id, once launched.
    let platform_id = platform_id(&c, &teacher_claims).await;
    let job = format!("/lti/ags/scores?platformId={platform_id}&contextId=course-1");
    let (status, posted) = c
        .call(
            Method::POST,
            &job,
            Some(&key),
            None,
            Some(json!({"userId": "student-5", "scoreGiven": 9, "scoreMaximum": 10, "resourceLinkId": "rl-1"})),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(
        posted["lineItem"], c.lineitem,
        "the link's recorded line item"
    );
    let roster = c
        .call(
            Method::GET,
            &format!("/lti/nrps/members?platformId={platform_id}&contextId=course-1"),
            Some(&key),
            None,
            None,
        )
        .await;
    assert_eq!(roster.1["members"].as_array().map(Vec::len), Some(MEMBERS));
    let never = format!("/lti/nrps/members?platformId={platform_id}&contextId=never-launched");
    assert_eq!(
        code(&c.call(Method::GET, &never, Some(&key), None, None).await),
        (404, "LTI_CONTEXT_UNKNOWN".into())
    );
    c.dev.server.stop().await;
}

async fn reqwest_admin(
    c: &Course,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", c.dev.tool))
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The registration id of the course's platform (what a backend job names).
async fn platform_id(c: &Course, _claims: &Value) -> String {
    let (_, listed) = reqwest_admin(c, Method::GET, "/admin/platforms", None).await;
    listed["platforms"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["clientId"] == "ags-client")
        .and_then(|p| p["id"].as_str())
        .expect("registered")
        .to_string()
}

#[tokio::test]
async fn a_canvas_sized_launch_calls_the_services_with_its_launch_id() {
    let c = course().await;
    let mut claims = c.lms.claims(&c.dev.tool, "teacher-1", c.dev.now());
    claims[format!("{LTI}roles")] = json!([INSTRUCTOR]);
    claims[format!("{LTI}context")] = json!({"id": "course-1"});
    for (name, value) in c.services.claims(Some(&c.lineitem)) {
        claims[name] = value;
    }
    let custom: serde_json::Map<String, Value> = (0..120)
        .map(|i| {
            (
                format!("canvas_custom_{i}"),
                json!(format!("$Canvas.value.{i}.with.some.length")),
            )
        })
        .collect();
    claims[format!("{LTI}custom")] = Value::Object(custom);
    let answer = c.lms.launch(&c.dev.tool, claims).await;
    let token = answer.app_token().expect("token");
    assert!(
        token.len() > 4096,
        "a Canvas-sized app token: {} bytes",
        token.len()
    );
    let launch_id = answer.app_token_claims().expect("claims")["lti"]["launchId"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(launch_id.len() < 64);
    let (status, roster) = c
        .call(
            Method::GET,
            "/lti/nrps/members",
            Some(&c.key()),
            Some(&launch_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{roster}");
    c.dev.server.stop().await;
}

#[tokio::test]
async fn platform_failures_are_never_silent() {
    let c = course().await;
    let (teacher, _) = c.launch("teacher-1", INSTRUCTOR).await;
    c.services.fail_roster(500);
    let answer = c
        .call(
            Method::GET,
            "/lti/nrps/members",
            Some(&c.key()),
            Some(&teacher),
            None,
        )
        .await;
    assert_eq!(
        code(&answer),
        (502, "LTI_PLATFORM_REJECTED".into()),
        "{}",
        answer.1
    );
    c.services.fail_roster(429);
    let answer = c
        .call(
            Method::GET,
            "/lti/nrps/members",
            Some(&c.key()),
            Some(&teacher),
            None,
        )
        .await;
    assert_eq!(
        code(&answer),
        (503, "LTI_PLATFORM_RATE_LIMITED".into()),
        "{}",
        answer.1
    );
    let (status, bad) = c
        .call(
            Method::POST,
            "/lti/ags/lineitems",
            Some(&c.key()),
            Some(&teacher),
            Some(json!({"label": "", "scoreMaximum": -1})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["code"], "LTI_SERVICE_REQUEST_INVALID");
    assert!(
        bad["error"]["fields"]
            .as_array()
            .is_some_and(|f| f.len() == 2),
        "{bad}"
    );
    c.dev.server.stop().await;
}
