//! Platform keys through the dev server, with the scripted LMS: the unknown-kid flood,
//! `Cache-Control: no-store`, two keys under one kid, redirects the URL rules refuse,
//! stale keys while the LMS's key endpoint is down, and the admin API's URL rules.

use lti_core::clock::{Clock, FixedClock, SystemClock};
use lti_core::keys::{MIN_FETCH_INTERVAL, STALE_WINDOW, UNKNOWN_KID_REFETCHES};
use lti_core::signer::LocalRsaSigner;
use lti_dev::{DevOptions, DevServer};
use serde_json::{json, Value};
use std::sync::Arc;

mod common;
use common::lms::{jwks_of, sign_with, JwksReply, Lms};
use common::TempDir;

const ADMIN: &str = "platform-keys-admin-token-0123456789abcdef";

struct Harness {
    server: DevServer,
    clock: Arc<FixedClock>,
    tool: String,
    _dir: TempDir,
}

async fn start() -> Harness {
    let dir = TempDir::new("lti-dev-keys");
    let clock = Arc::new(FixedClock::at(SystemClock.now()));
    let server = DevServer::start(DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some(ADMIN.into()),
        clock: clock.clone(),
        settings: vec![],
    })
    .await
    .expect("dev server");
    Harness {
        tool: server.base_url.clone(),
        server,
        clock,
        _dir: dir,
    }
}

impl Harness {
    /// A registered LMS serving `reply` (its own key when `None`).
    async fn lms(&self, client_id: &str, reply: Option<JwksReply>) -> Lms {
        let lms = Lms::start(client_id).await;
        if let Some(reply) = reply {
            lms.serve_jwks(reply);
        }
        lms.register(&self.tool, ADMIN).await;
        lms
    }

    /// A full launch of `sub` signed with the LMS key, now.
    async fn launch(&self, lms: &Lms, sub: &str) -> common::lms::Answer {
        lms.launch(&self.tool, lms.claims(&self.tool, sub, self.clock.now()))
            .await
    }
}

fn jwks(body: Vec<u8>, headers: &[(&str, &str)]) -> JwksReply {
    JwksReply {
        status: 200,
        body,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn status_code(answer: &common::lms::Answer) -> (u16, String) {
    (answer.status, answer.code())
}

/// An id_token with `kid` and a signature by no one, posted with no login: an
/// invented state and the matching state cookie, a registered iss and aud.
async fn forged_launch(h: &Harness, lms: &Lms, kid: &str) -> common::lms::Answer {
    let state = format!("invented-state-{kid}");
    let claims = lms.claims(&h.tool, "victim", h.clock.now());
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let part = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!("{}.{}.AAAA", part(&header), part(&claims));
    let cookie = format!("{}={state}", lti_core::login::state_cookie_name(&state));
    lms.post_launch(&h.tool, &[("id_token", &token), ("state", &state)], &cookie)
        .await
}

#[tokio::test]
async fn an_unknown_kid_flood_makes_a_bounded_number_of_jwks_fetches() {
    let h = start().await;
    let lms = h.lms("client-flood", None).await;
    assert_eq!(h.launch(&lms, "user-1").await.status, 200);
    assert_eq!(lms.jwks_hits(), 1);

    let flood = |round: usize| {
        let h = &h;
        let lms = &lms;
        async move {
            for i in 0..20 {
                let kid = format!("random-{round}-{i}-{}", uuid::Uuid::new_v4().simple());
                let answer = forged_launch(h, lms, &kid).await;
                assert_eq!(
                    status_code(&answer),
                    (401, "LTI_KID_UNKNOWN".to_string()),
                    "{}",
                    answer.body
                );
            }
        }
    };
    flood(1).await;
    let after_first = lms.jwks_hits();
    println!(
        "unknown-kid flood: 20 launches -> {} JWKS fetches",
        after_first - 1
    );
    assert_eq!(
        after_first,
        1 + UNKNOWN_KID_REFETCHES,
        "20 random kids: at most {UNKNOWN_KID_REFETCHES} refetches"
    );
    // Ten seconds later, another 20: still within the 30 s window, no fetch.
    h.clock.advance(10);
    flood(2).await;
    assert_eq!(lms.jwks_hits(), after_first);
    // Past the window: again at most two.
    h.clock.advance(30);
    flood(3).await;
    assert_eq!(lms.jwks_hits(), after_first + UNKNOWN_KID_REFETCHES);
    // Real launches never noticed.
    assert_eq!(h.launch(&lms, "user-1").await.status, 200);
    h.server.stop().await;
}

#[tokio::test]
async fn a_no_store_jwks_is_not_kept_a_withdrawn_key_is_refused_at_once() {
    let h = start().await;
    let no_store = h.lms("client-no-store", None).await;
    let body = jwks_of(&[&no_store.key]);
    // Two headers, mixed case: both are read.
    no_store.serve_jwks(jwks(
        body,
        &[("cache-control", "No-Cache"), ("cache-control", "no-store")],
    ));
    let cached = h.lms("client-cached", None).await;

    // A burst of launches at one instant: one fetch each (the few-seconds floor).
    for sub in ["a", "b", "c"] {
        assert_eq!(h.launch(&no_store, sub).await.status, 200);
        assert_eq!(h.launch(&cached, sub).await.status, 200);
    }
    assert_eq!((no_store.jwks_hits(), cached.jwks_hits()), (1, 1));

    // Both platforms withdraw their key (a compromised key, say).
    let replacement = LocalRsaSigner::generate().expect("key");
    no_store.serve_jwks(jwks(
        jwks_of(&[&replacement]),
        &[("cache-control", "no-cache, no-store")],
    ));
    cached.serve_jwks(jwks(jwks_of(&[&replacement]), &[]));
    h.clock.advance(MIN_FETCH_INTERVAL);

    let answer = h.launch(&no_store, "a").await;
    assert_eq!(
        status_code(&answer),
        (401, "LTI_KID_UNKNOWN".to_string()),
        "no-store: the withdrawal counts at the next launch"
    );
    assert_eq!(no_store.jwks_hits(), 2);
    // The same sequence with a cacheable document: still accepted (cached 300 s).
    assert_eq!(h.launch(&cached, "a").await.status, 200);
    assert_eq!(cached.jwks_hits(), 1);
    h.server.stop().await;
}

#[tokio::test]
async fn two_keys_under_one_kid_a_token_signed_with_either_is_accepted() {
    let h = start().await;
    let lms = Lms::start("client-two-keys").await;
    let second = LocalRsaSigner::generate().expect("key");
    // The LMS key first, another key with the same kid after it.
    let mut keys: Vec<Value> = [lms.key.public_jwk(), second.public_jwk()]
        .iter()
        .map(|k| serde_json::to_value(k).expect("jwk"))
        .collect();
    keys[1]["kid"] = json!(lms.kid());
    lms.serve_jwks(jwks(
        serde_json::to_vec(&json!({ "keys": keys })).expect("json"),
        &[],
    ));
    lms.register(&h.tool, ADMIN).await;

    let answer = h.launch(&lms, "signed-with-the-first").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.app_token_claims().expect("app token")["lti"]["user"]["sub"],
        "signed-with-the-first"
    );

    // A token signed with the second key under the same kid is accepted too.
    let login = lms.login(&h.tool).await;
    let mut claims = lms.claims(&h.tool, "signed-with-the-second", h.clock.now());
    claims["nonce"] = json!(login.nonce);
    let token = sign_with(&second, &lms.kid(), &claims);
    let answer = lms
        .post_launch(
            &h.tool,
            &[("id_token", &token), ("state", &login.state)],
            &login.cookie_header(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(lms.jwks_hits(), 1);
    h.server.stop().await;
}

#[tokio::test]
async fn a_redirect_to_a_url_the_registration_rules_refuse_is_not_followed() {
    let h = start().await;
    let lms = Lms::start("client-moved").await;
    let mut registration = lms.registration();
    registration["keysetUrl"] = json!(lms.moved_url());
    let saved = lms.admin_post(&h.tool, ADMIN, &registration).await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let port = lms.url.rsplit(':').next().expect("port").to_string();

    // Each target would reach the LMS's own JWKS if followed (0.0.0.0 is this
    // machine on Linux; the credentials are simply ignored by the LMS), so a 502 with
    // no JWKS request proves it was refused.
    let refused = [
        format!("http://user:secret@127.0.0.1:{port}/jwks"),
        format!("http://0.0.0.0:{port}/jwks"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "https://10.0.0.1/jwks".to_string(),
    ];
    for (i, target) in refused.iter().enumerate() {
        lms.redirect_to(target);
        // Past the retry wait of the previous failure.
        h.clock.advance(MIN_FETCH_INTERVAL);
        let answer = h.launch(&lms, "user-1").await;
        assert_eq!(
            status_code(&answer),
            (502, "LTI_PLATFORM_KEYS_UNAVAILABLE".to_string()),
            "{target}: {}",
            answer.body
        );
        assert_eq!(lms.redirect_hits(), i + 1, "{target}");
        assert_eq!(lms.jwks_hits(), 0, "{target}: not followed");
    }

    // An allowed target (loopback is allowed on the dev server) is followed.
    lms.redirect_to(&lms.jwks_url());
    h.clock.advance(MIN_FETCH_INTERVAL);
    let answer = h.launch(&lms, "user-1").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(lms.jwks_hits(), 1);
    h.server.stop().await;
}

#[tokio::test]
async fn stale_keys_are_served_while_the_lms_jwks_answers_500() {
    let h = start().await;
    let lms = h.lms("client-stale", None).await;
    let body = jwks_of(&[&lms.key]);
    lms.serve_jwks(jwks(body.clone(), &[("cache-control", "max-age=60")]));
    assert_eq!(h.launch(&lms, "user-1").await.status, 200);

    lms.serve_jwks(JwksReply {
        status: 500,
        body: b"internal error".to_vec(),
        headers: vec![],
    });
    h.clock.advance(61);
    let answer = h.launch(&lms, "user-1").await;
    assert_eq!(answer.status, 200, "stale keys served: {}", answer.body);
    assert_eq!(lms.jwks_hits(), 2, "the LMS was asked first");
    // Right after: no new attempt, still served.
    assert_eq!(h.launch(&lms, "user-2").await.status, 200);
    assert_eq!(lms.jwks_hits(), 2);
    // An hour past the lifetime: refused.
    h.clock.advance(STALE_WINDOW);
    let answer = h.launch(&lms, "user-1").await;
    assert_eq!(
        status_code(&answer),
        (502, "LTI_PLATFORM_KEYS_UNAVAILABLE".to_string())
    );
    // Back up: accepted again.
    lms.serve_jwks(jwks(body, &[]));
    h.clock.advance(MIN_FETCH_INTERVAL);
    assert_eq!(h.launch(&lms, "user-1").await.status, 200);
    h.server.stop().await;
}

#[tokio::test]
async fn stale_keys_are_not_served_for_a_no_store_jwks_nor_when_nothing_was_fetched() {
    let h = start().await;
    let lms = h.lms("client-no-stale", None).await;
    lms.serve_jwks(jwks(jwks_of(&[&lms.key]), &[("cache-control", "no-store")]));
    assert_eq!(h.launch(&lms, "user-1").await.status, 200);
    lms.serve_jwks(JwksReply {
        status: 503,
        body: vec![],
        headers: vec![],
    });
    h.clock.advance(MIN_FETCH_INTERVAL);
    let answer = h.launch(&lms, "user-1").await;
    assert_eq!(
        status_code(&answer),
        (502, "LTI_PLATFORM_KEYS_UNAVAILABLE".to_string())
    );

    let never = Lms::start("client-never-up").await;
    never.serve_jwks(JwksReply {
        status: 500,
        body: vec![],
        headers: vec![],
    });
    never.register(&h.tool, ADMIN).await;
    let answer = h.launch(&never, "user-1").await;
    assert_eq!(
        status_code(&answer),
        (502, "LTI_PLATFORM_KEYS_UNAVAILABLE".to_string())
    );
    h.server.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_internal_addresses_credentials_and_foreign_landing_urls() {
    let h = start().await;
    let lms = Lms::start("client-admin").await;
    let fields_of = |answer: &common::lms::Answer| -> Vec<String> {
        answer.json()["error"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };

    // All at once: each is its own field error in the one 400.
    let mut registration = lms.registration();
    registration["keysetUrl"] = json!("https://169.254.169.254/latest/meta-data/");
    registration["authTokenUrl"] = json!("https://10.0.0.1/token");
    registration["authLoginUrl"] = json!("https://admin:secret@lms.example.edu/auth");
    registration["launchProfile"] = json!("direct");
    registration["audience"] = json!("tool-audience");
    registration["landingUrl"] = json!("https://evil.example/steal-app-tokens");
    let answer = lms.admin_post(&h.tool, ADMIN, &registration).await;
    assert_eq!(
        status_code(&answer),
        (400, "ADMIN_INVALID_PLATFORM".to_string()),
        "{}",
        answer.body
    );
    assert_eq!(
        fields_of(&answer),
        vec!["authLoginUrl", "authTokenUrl", "keysetUrl", "landingUrl"]
    );
    assert!(!answer.body.contains("secret"), "no credentials echoed");

    // One at a time, as keysetUrl.
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/",
        "https://10.0.0.1/jwks",
        "https://192.168.1.10/jwks",
        "https://[fd00:ec2::254]/jwks",
        "https://[::ffff:169.254.169.254]/jwks",
        "https://0.0.0.0/jwks",
        "https://user:pass@lms.example.edu/jwks",
    ] {
        let mut registration = lms.registration();
        registration["keysetUrl"] = json!(url);
        let answer = lms.admin_post(&h.tool, ADMIN, &registration).await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.body);
        assert_eq!(fields_of(&answer), vec!["keysetUrl"], "{url}");
    }

    // The app's own origin is a fine landing URL; loopback is fine on the dev server.
    let mut registration = lms.registration();
    registration["launchProfile"] = json!("direct");
    registration["audience"] = json!("tool-audience");
    registration["landingUrl"] = json!(format!("{}/app", h.tool));
    let answer = lms.admin_post(&h.tool, ADMIN, &registration).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    h.server.stop().await;
}
