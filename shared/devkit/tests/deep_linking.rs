//! Deep Linking 2.0 through a running dev server (issue 10): an instructor's
//! deep-linking launch lands in the app's picker with every setting the platform sent;
//! the app answers with `POST /lti/deep-link` and gets a signed `LtiDeepLinkingResponse`
//! it can post to the platform; every refusal has its own code.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Answer, Lms, LTI};
use serde_json::{json, Value};

const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

struct Setup {
    dev: Dev,
    lms: Lms,
}

async fn setup(settings: &[(&str, &str)]) -> Setup {
    let dev = Dev::with_settings(settings).await;
    let lms = Lms::start("dl-client").await;
    lms.register(&dev.tool, ADMIN).await;
    Setup { dev, lms }
}

impl Setup {
    /// A deep-linking launch with `settings` (merged over Moodle-like defaults) by a
    /// user with `role`; returns the app token and its claims.
    async fn dl_launch(&self, role: &str, settings: Value) -> (String, Value, Answer) {
        let mut claims = self.lms.claims(&self.dev.tool, "teacher-1", self.dev.now());
        claims
            .as_object_mut()
            .expect("object")
            .remove(&format!("{LTI}resource_link"));
        claims[format!("{LTI}message_type")] = json!("LtiDeepLinkingRequest");
        claims[format!("{LTI}roles")] = json!([role]);
        let mut dl = json!({
            "deep_link_return_url": format!("{}/dl-return", self.lms.url),
            "accept_types": ["ltiResourceLink", "link", "html"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": true,
            "accept_lineitem": true,
            "data": {"opaque": ["kept", 1, null], "z": "first", "a": "second"}
        });
        for (k, v) in settings.as_object().expect("object") {
            dl[k] = v.clone();
        }
        claims[format!("{DL}deep_linking_settings")] = dl;
        let answer = self.lms.launch(&self.dev.tool, claims).await;
        assert!(
            answer.status == 200 || answer.status == 302,
            "{}",
            answer.body
        );
        let token = answer.app_token().expect("app token");
        let claims = answer.app_token_claims().expect("claims");
        (token, claims, answer)
    }

    async fn answer(&self, key: Option<&str>, bearer: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/lti/deep-link", self.dev.tool))
            .header("accept", "application/json")
            .json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn key(&self) -> String {
        self.dev.server.service_key.clone()
    }
}

/// The tool's public keys, fetched over HTTP like a platform does.
async fn tool_key(tool: &str, kid: &str) -> jsonwebtoken::DecodingKey {
    let jwks: Value = reqwest::get(format!("{tool}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the kid is published");
    jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key")
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

#[tokio::test]
async fn an_instructor_picks_content_and_the_platform_gets_a_signed_response() {
    let s = setup(&[]).await;
    let (token, claims, _) = s.dl_launch(INSTRUCTOR, json!({})).await;
    // The app token carries every setting, `data` as the JSON value it was.
    let dl = &claims["lti"]["services"]["deepLinking"];
    assert_eq!(dl["acceptMultiple"], json!(true));
    assert_eq!(dl["data"]["opaque"], json!(["kept", 1, null]));
    let items = json!([
        {"type": "ltiResourceLink", "title": "Sales scenario", "url": format!("{}/lti/launch", s.dev.tool),
         "custom": {"scenario": "sales-7"}, "lineItem": {"scoreMaximum": 100, "label": "Sales", "tag": "scenario"},
         "iframe": {"width": 800, "height": 600}},
        {"type": "link", "url": "https://example.com/reading", "title": "Reading", "window": {"targetName": "_blank"}},
        {"type": "html", "html": "<p>Welcome</p>"}
    ]);
    let (status, answer) = s
        .answer(
            Some(&s.key()),
            Some(&token),
            json!({"contentItems": items, "msg": "3 items added"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["returnUrl"], format!("{}/dl-return", s.lms.url));
    let html = answer["autoSubmitHtml"].as_str().expect("page");
    let form = lti_dev::browser::first_form(html).expect("a form");
    assert_eq!(form.action, format!("{}/dl-return", s.lms.url));
    let jwt = answer["jwt"].as_str().expect("jwt");
    assert_eq!(form.field("JWT"), Some(jwt));

    // The JWT verifies with the tool's published key, as the platform checks it.
    let kid = jsonwebtoken::decode_header(jwt)
        .expect("header")
        .kid
        .expect("kid");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[s.lms.issuer.as_str()]);
    validation.set_issuer(&["dl-client"]);
    let verified =
        jsonwebtoken::decode::<Value>(jwt, &tool_key(&s.dev.tool, &kid).await, &validation)
            .expect("a valid response")
            .claims;
    assert_eq!(
        verified[format!("{LTI}message_type")],
        "LtiDeepLinkingResponse"
    );
    assert_eq!(verified[format!("{LTI}version")], "1.3.0");
    assert_eq!(verified[format!("{LTI}deployment_id")], "1");
    assert_eq!(
        verified[format!("{DL}content_items")],
        items,
        "items exactly as sent"
    );
    assert_eq!(verified[format!("{DL}msg")], "3 items added");
    assert!(verified["nonce"].as_str().is_some_and(|n| n.len() >= 16));
    let (iat, exp) = (
        verified["iat"].as_i64().expect("iat"),
        verified["exp"].as_i64().expect("exp"),
    );
    assert!(exp - iat <= 300);
    // `data` comes back exactly as received: same value, same member order.
    let payload = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwt.split('.').nth(1).expect("payload"),
        )
        .expect("base64"),
    )
    .expect("utf-8");
    assert!(
        payload.contains(r#""https://purl.imsglobal.org/spec/lti-dl/claim/data":{"opaque":["kept",1,null],"z":"first","a":"second"}"#),
        "{payload}"
    );
    s.dev.server.stop().await;
}

#[tokio::test]
async fn the_launch_id_works_as_bearer_and_an_empty_or_error_answer_is_valid() {
    let s = setup(&[]).await;
    let (_, claims, _) = s.dl_launch(INSTRUCTOR, json!({})).await;
    let launch_id = claims["lti"]["launchId"].as_str().expect("launch id");
    assert_eq!(claims["jti"], launch_id);
    let (status, answer) = s
        .answer(
            Some(&s.key()),
            Some(launch_id),
            json!({"contentItems": [], "errormsg": "Nothing picked"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    s.dev.server.stop().await;
}

#[tokio::test]
async fn an_answer_needs_a_service_key_an_instructor_and_a_deep_linking_launch() {
    let s = setup(&[]).await;
    let (token, _, _) = s.dl_launch(INSTRUCTOR, json!({})).await;
    let body = json!({"contentItems": []});
    assert_eq!(
        code(&s.answer(None, Some(&token), body.clone()).await),
        (401, "LTI_SERVICE_KEY_INVALID".into())
    );
    let wrong = format!("lsk_nokey_{}", "x".repeat(43));
    assert_eq!(
        code(&s.answer(Some(&wrong), Some(&token), body.clone()).await),
        (401, "LTI_SERVICE_KEY_INVALID".into())
    );
    assert_eq!(
        code(
            &s.answer(Some(&s.key()), Some("not-a-launch"), body.clone())
                .await
        ),
        (401, "LTI_LAUNCH_TOKEN_INVALID".into())
    );
    let (learner, _, _) = s.dl_launch(LEARNER, json!({})).await;
    assert_eq!(
        code(&s.answer(Some(&s.key()), Some(&learner), body.clone()).await),
        (403, "LTI_ROLE_NOT_ALLOWED".into())
    );
    let resource = s
        .lms
        .launch(&s.dev.tool, s.lms.claims(&s.dev.tool, "t", s.dev.now()))
        .await;
    let resource_token = resource.app_token().expect("token");
    assert_eq!(
        code(
            &s.answer(Some(&s.key()), Some(&resource_token), body.clone())
                .await
        ),
        (400, "LTI_NOT_DEEP_LINKING".into())
    );
    // A backend job has no deep-linking launch to answer.
    let (status, answer) = s.answer(Some(&s.key()), None, body).await;
    assert_eq!(status, 400, "{answer}");
    s.dev.server.stop().await;
}

#[tokio::test]
async fn a_deep_linking_launch_is_answered_once_even_by_two_concurrent_answers() {
    let s = setup(&[]).await;
    let (token, _, _) = s.dl_launch(INSTRUCTOR, json!({})).await;
    let body = json!({"contentItems": [{"type": "link", "url": "https://example.com/a"}]});
    let key = s.key();
    let (a, b) = tokio::join!(
        s.answer(Some(&key), Some(&token), body.clone()),
        s.answer(Some(&key), Some(&token), body.clone())
    );
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "{a:?} {b:?}");
    let replay = s.answer(Some(&s.key()), Some(&token), body).await;
    assert_eq!(code(&replay), (409, "LTI_ALREADY_ANSWERED".into()));
    s.dev.server.stop().await;
}

#[tokio::test]
async fn an_answer_after_the_app_token_expired_is_refused() {
    let s = setup(&[]).await;
    let (token, _, _) = s.dl_launch(INSTRUCTOR, json!({})).await;
    s.dev.clock.advance(3601);
    let answer = s
        .answer(Some(&s.key()), Some(&token), json!({"contentItems": []}))
        .await;
    assert_eq!(code(&answer), (401, "LTI_LAUNCH_TOKEN_INVALID".into()));
    s.dev.server.stop().await;
}

#[tokio::test]
async fn what_the_platform_does_not_accept_is_refused_with_its_own_code() {
    let s = setup(&[]).await;
    let cases = [
        (
            json!({"accept_types": ["link"]}),
            json!([{"type": "ltiResourceLink", "title": "x"}]),
            "LTI_CONTENT_TYPE_NOT_ACCEPTED",
        ),
        (
            json!({"accept_multiple": false}),
            json!([{"type": "link", "url": "https://a.example"}, {"type": "link", "url": "https://b.example"}]),
            "LTI_MULTIPLE_ITEMS_NOT_ACCEPTED",
        ),
        (
            json!({"accept_presentation_document_targets": ["window"]}),
            json!([{"type": "link", "url": "https://a.example", "iframe": {"width": 100}}]),
            "LTI_PRESENTATION_NOT_ACCEPTED",
        ),
        (
            json!({"accept_lineitem": false}),
            json!([{"type": "ltiResourceLink", "lineItem": {"scoreMaximum": 10}}]),
            "LTI_LINE_ITEM_NOT_ACCEPTED",
        ),
        (
            json!({}),
            json!([{"type": "link", "url": "http://plain.example/x"}]),
            "LTI_SERVICE_REQUEST_INVALID",
        ),
        (
            json!({}),
            json!(vec![
                json!({"type": "link", "url": "https://a.example"});
                101
            ]),
            "LTI_SERVICE_REQUEST_INVALID",
        ),
        (
            json!({}),
            json!([{"type": "html", "html": "x".repeat(4097)}]),
            "LTI_SERVICE_REQUEST_INVALID",
        ),
        (
            json!({}),
            json!([{"type": "ltiResourceLink", "custom": (0..51).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}]),
            "LTI_SERVICE_REQUEST_INVALID",
        ),
    ];
    for (settings, items, expected) in cases {
        let (token, _, _) = s.dl_launch(INSTRUCTOR, settings.clone()).await;
        let answer = s
            .answer(Some(&s.key()), Some(&token), json!({"contentItems": items}))
            .await;
        assert_eq!(
            code(&answer),
            (400, expected.to_string()),
            "{settings}: {}",
            answer.1
        );
        assert!(
            answer.1["error"]["fields"][0]["field"].as_str().is_some(),
            "{}",
            answer.1
        );
    }
    // A body over 256 KiB.
    let (token, _, _) = s.dl_launch(INSTRUCTOR, json!({})).await;
    let huge = json!({"contentItems": [], "msg": "x".repeat(300 * 1024)});
    let answer = s.answer(Some(&s.key()), Some(&token), huge).await;
    assert_eq!(
        code(&answer),
        (413, "HTTP_BODY_TOO_LARGE".into()),
        "{}",
        answer.1
    );
    s.dev.server.stop().await;
}

#[tokio::test]
async fn a_deep_linking_launch_lands_at_the_apps_content_picker() {
    let picker = "http://127.0.0.1:9/picker";
    let s = setup(&[
        ("LTI_ALLOWED_APP_ORIGINS", "http://127.0.0.1:9"),
        ("LTI_APP_DEEP_LINK_URL", picker),
    ])
    .await;
    let (_, _, answer) = s.dl_launch(INSTRUCTOR, json!({})).await;
    let form = lti_dev::browser::first_form(&answer.body).expect("hand-off form");
    assert_eq!(form.action, picker);
    // A resource-link launch still lands at the landing URL.
    let resource = s
        .lms
        .launch(&s.dev.tool, s.lms.claims(&s.dev.tool, "t", s.dev.now()))
        .await;
    let form = lti_dev::browser::first_form(&resource.body).expect("hand-off form");
    assert_eq!(form.action, format!("{}/app", s.dev.tool));
    s.dev.server.stop().await;
}
