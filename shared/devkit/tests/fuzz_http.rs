//! Hostile input over HTTP (issue 14, item 1): property tests of every request a
//! browser, a platform, an admin or an app's backend can send to a running dev server
//! — any method and path, login and launch forms, cookies, bearer tokens and service
//! keys, admin JSON bodies, services JSON bodies. Every answer is a clean 2xx/3xx or an
//! error whose code the README documents; never a 500, never a hang.
//!
//! Fixed case count and seed (`tests/fuzz.sh` runs it longer).

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Lms, LTI};
use lti_dev::scripted::LmsServices;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
/// Cases in the test command (`PROPTEST_CASES` overrides).
const CASES: u32 = 2_000;
/// Longest any one request may take (debug build, 2 cores).
const CASE_BUDGET: Duration = Duration::from_secs(5);

fn runner(cases: u32) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok();
    TestRunner::new(ProptestConfig {
        cases: env("PROPTEST_CASES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        rng_seed: RngSeed::Fixed(
            env("PROPTEST_RNG_SEED")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0x5EED_1414),
        ),
        failure_persistence: None,
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    })
}

fn documented_codes() -> &'static BTreeSet<String> {
    static CODES: OnceLock<BTreeSet<String>> = OnceLock::new();
    CODES.get_or_init(|| {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        readme
            .split('`')
            .filter(|word| {
                word.len() > 5
                    && word.contains('_')
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .map(str::to_string)
            .collect()
    })
}

/// A course on a scripted LMS with one instructor launch: what a real caller holds.
struct World {
    dev: Dev,
    lms: Lms,
    _services: LmsServices,
    app_token: String,
    service_key: String,
    lineitem: String,
    platform_id: String,
}

async fn world() -> World {
    let dev = Dev::start().await;
    let lms = Lms::start("fuzz-client").await;
    let services = LmsServices::start(
        &format!("{}/.well-known/jwks.json", dev.tool),
        "fuzz-client",
    )
    .await;
    let mut registration = lms.registration();
    registration["authTokenUrl"] = json!(services.token_url());
    let reply = lms.admin_post(&dev.tool, ADMIN, &registration).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let platform_id = reply.json()["id"].as_str().expect("id").to_string();
    let lineitem = services.add_line_item("Activity 1", Some("rl-1"));
    let mut claims = lms.claims(&dev.tool, "teacher-1", dev.now());
    claims[format!("{LTI}roles")] = json!([INSTRUCTOR]);
    for (name, value) in services.claims(Some(&lineitem)) {
        claims[name] = value;
    }
    let answer = lms.launch(&dev.tool, claims).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let app_token = answer.app_token().expect("app token");
    let service_key = dev.server.service_key.clone();
    World {
        dev,
        lms,
        _services: services,
        app_token,
        service_key,
        lineitem,
        platform_id,
    }
}

/// Printable text, separators included.
fn text(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("regex"),
        proptest::string::string_regex(&format!("[.=&;,%+/_a-zA-Z0-9-]{{0,{max}}}"))
            .expect("regex"),
        Just(String::new()),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(1e300)),
        Just(json!(-1)),
        text(30).prop_map(Value::String),
        proptest::collection::vec(any::<char>(), 0..20)
            .prop_map(|c| Value::String(c.into_iter().collect())),
        Just(json!("https://lms.example.edu/x")),
        Just(json!("x".repeat(5_000))),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(text(12), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// `base` with one field set to any value, or removed.
fn mutated(base: Value) -> BoxedStrategy<Value> {
    let fields: Vec<String> = base
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let n = fields.len().max(1);
    (
        proptest::collection::vec((0..n, prop::option::of(json_value())), 1..4),
        Just(base),
    )
        .prop_map(move |(changes, mut value)| {
            for (i, new) in changes {
                let Some(name) = fields.get(i) else { continue };
                match new {
                    Some(v) => value[name.as_str()] = v,
                    None => {
                        value.as_object_mut().map(|m| m.remove(name));
                    }
                }
            }
            value
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    query: String,
    content_type: Option<&'static str>,
    cookie: Option<String>,
    authorization: Option<String>,
    api_key: Option<String>,
    body: Vec<u8>,
}

/// What one case's request is made of; `Hold` stands for the value the world holds.
#[derive(Debug, Clone)]
enum Credential {
    None,
    Real,
    Other(String),
}

fn credential() -> BoxedStrategy<Credential> {
    prop_oneof![
        Just(Credential::None),
        Just(Credential::Real),
        text(50).prop_map(Credential::Other)
    ]
    .boxed()
}

const PATHS: &[&str] = &[
    "/lti/login",
    "/lti/launch",
    "/lti/jwks",
    "/.well-known/jwks.json",
    "/lti/config",
    "/lti/config/canvas.json",
    "/lti/services/openapi.json",
    "/lti/deep-link",
    "/lti/ags/lineitems",
    "/lti/ags/lineitem",
    "/lti/ags/scores",
    "/lti/ags/results",
    "/lti/ags/endpoint",
    "/lti/nrps/members",
    "/admin/platforms",
    "/admin/service-keys",
    "/favicon.ico",
];

fn body(world: &World) -> BoxedStrategy<Vec<u8>> {
    let registration = world.lms.registration();
    let line_item = json!({"label": "Quiz", "scoreMaximum": 10, "resourceLinkId": "rl-1",
                           "tag": "t", "resourceId": "r", "startDateTime": "2030-01-01T00:00:00Z"});
    let score = json!({"userId": "teacher-1", "scoreGiven": 5, "scoreMaximum": 10,
                       "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                       "comment": "ok", "lineItem": world.lineitem});
    let deep_link = json!({"contentItems": [{"type": "ltiResourceLink", "title": "T",
                           "url": format!("{}/lti/launch", world.dev.tool)}], "message": "m"});
    let route = json!({"deploymentId": "1", "contextId": "c1", "landingUrl": "https://x.example"});
    let deployment = json!({"deploymentId": "d-2"});
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => text(200).prop_map(String::into_bytes),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => (prop::option::of(text(300)), prop::option::of(text(60)), prop::option::of(text(20)))
            .prop_map(|(t, s, e)| {
                let mut pairs = vec![];
                if let Some(t) = t { pairs.push(("id_token", t)); }
                if let Some(s) = s { pairs.push(("state", s)); }
                if let Some(e) = e { pairs.push(("error", e)); }
                serde_urlencoded::to_string(pairs).unwrap_or_default().into_bytes()
            }),
        2 => mutated(registration).prop_map(|v| v.to_string().into_bytes()),
        2 => mutated(line_item).prop_map(|v| v.to_string().into_bytes()),
        2 => mutated(score).prop_map(|v| v.to_string().into_bytes()),
        2 => mutated(deep_link).prop_map(|v| v.to_string().into_bytes()),
        1 => mutated(route).prop_map(|v| v.to_string().into_bytes()),
        1 => mutated(deployment).prop_map(|v| v.to_string().into_bytes()),
    ]
    .boxed()
}

fn request(world: &World) -> BoxedStrategy<Request> {
    let platform_id = world.platform_id.clone();
    let path = prop_oneof![
        4 => (0..PATHS.len()).prop_map(|i| PATHS[i].to_string()),
        1 => text(40).prop_map(|t| format!("/{}", urlencode(&t))),
        1 => (0..PATHS.len(), text(20)).prop_map(|(i, t)| format!("{}/{}", PATHS[i], urlencode(&t))),
        2 => prop_oneof![
            Just(String::new()),
            Just("/deployments".to_string()),
            Just("/deployments/1".to_string()),
            Just("/routes".to_string()),
            text(20).prop_map(|t| format!("/routes/{}", urlencode(&t))),
        ]
        .prop_map(move |tail| format!("/admin/platforms/{platform_id}{tail}")),
    ];
    let lineitem = world.lineitem.clone();
    let query = prop_oneof![
        Just(String::new()),
        text(60),
        Just(format!("url={}", urlencode(&lineitem))),
        (text(20), text(20)).prop_map(|(a, b)| format!(
            "platformId={}&contextId={}",
            urlencode(&a),
            urlencode(&b)
        )),
        Just("iss=https%3A%2F%2Flms.example.edu&login_hint=x&target_link_uri=x".to_string()),
    ];
    let method = prop_oneof![
        4 => Just("POST"),
        3 => Just("GET"),
        1 => Just("PUT"),
        1 => Just("PATCH"),
        1 => Just("DELETE"),
        1 => Just("OPTIONS"),
    ];
    let content_type = prop_oneof![
        Just(Some("application/json")),
        Just(Some("application/x-www-form-urlencoded")),
        Just(Some("text/plain")),
        Just(Some("application/json; charset=utf-8")),
        Just(None),
    ];
    let cookie = prop_oneof![
        Just(None),
        text(80).prop_map(Some),
        text(40).prop_map(|v| Some(format!("__Host-lti-state-{v}={v}"))),
    ];
    let world_token = world.app_token.clone();
    let world_key = world.service_key.clone();
    let authorization = credential().prop_map(move |c| match c {
        Credential::None => None,
        Credential::Real => Some(format!("Bearer {world_token}")),
        Credential::Other(t) => Some(if t.len() % 2 == 0 {
            format!("Bearer {t}")
        } else {
            format!("Bearer {ADMIN}")
        }),
    });
    let api_key = credential().prop_map(move |c| match c {
        Credential::None => None,
        Credential::Real => Some(world_key.clone()),
        Credential::Other(t) => Some(t),
    });
    (
        method,
        path,
        query,
        content_type,
        cookie,
        authorization,
        api_key,
        body(world),
    )
        .prop_map(
            |(method, path, query, content_type, cookie, authorization, api_key, body)| Request {
                method,
                path,
                query,
                content_type,
                cookie,
                authorization,
                api_key,
                body,
            },
        )
        .boxed()
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Sends `r`; `None` when the client itself cannot send it (a header value that is no
/// header value).
async fn send(client: &reqwest::Client, tool: &str, r: &Request) -> Option<(u16, Vec<u8>)> {
    let mut url = format!("{tool}{}", r.path);
    if !r.query.is_empty() {
        url.push('?');
        url.push_str(&r.query);
    }
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).ok()?;
    let mut builder = client
        .request(method, &url)
        .header("accept", "application/json")
        .body(r.body.clone());
    for (name, value) in [
        ("content-type", r.content_type.map(str::to_string)),
        ("cookie", r.cookie.clone()),
        ("authorization", r.authorization.clone()),
        ("x-api-key", r.api_key.clone()),
    ] {
        if let Some(value) = value {
            builder = builder.header(name, value);
        }
    }
    let request = builder.build().ok()?;
    let response = client.execute(request).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.bytes().await.ok()?.to_vec()))
}

#[test]
fn fuzz_every_route_answers_hostile_requests_with_a_documented_code_and_never_a_500() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let world = rt.block_on(world());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let strategy = request(&world);
    let tool = world.dev.tool.clone();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let mut runner = runner(CASES);
    let cases = runner.config().cases as usize;
    runner
        .run(&strategy, |r| {
            let started = Instant::now();
            let Some((status, body)) = rt.block_on(send(&client, &tool, &r)) else {
                return Ok(());
            };
            *statuses.lock().expect("lock").entry(status).or_insert(0) += 1;
            prop_assert!(started.elapsed() < CASE_BUDGET, "slow: {r:?}");
            prop_assert!(status != 500 && status < 600, "{status} for {r:?}");
            if status >= 400 {
                let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let code = answer["error"]["code"].as_str().unwrap_or_default();
                prop_assert!(
                    documented_codes().contains(code),
                    "{status} with undocumented code {code:?} for {r:?}: {}",
                    String::from_utf8_lossy(&body)
                );
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                prop_assert!(!message.is_empty(), "no sentence for {code}");
            }
            Ok(())
        })
        .expect("property");
    // The cases reached the tool and exercised its answers, not only its 404.
    let statuses = statuses.into_inner().expect("lock");
    eprintln!("fuzz_http: statuses {statuses:?}");
    let sent: usize = statuses.values().sum();
    let count = |range: std::ops::Range<u16>| -> usize {
        statuses
            .iter()
            .filter(|(s, _)| range.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(sent * 10 >= 9 * cases, "only {sent} requests sent");
    assert!(count(200..400) > 0, "no request succeeded");
    for refused in [400, 401, 404] {
        assert!(
            statuses.get(&refused).is_some_and(|n| *n > 0),
            "no {refused}"
        );
    }
    // The server still works: a platform registered now launches (the fuzzing may
    // have removed the first one's deployment: an admin may).
    rt.block_on(async {
        let lms = Lms::start("after-fuzz").await;
        lms.register(&world.dev.tool, ADMIN).await;
        let claims = lms.claims(&world.dev.tool, "learner-after", world.dev.now());
        let answer = lms.launch(&world.dev.tool, claims).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    });
}
