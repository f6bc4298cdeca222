//! The handlers as a platform, a browser and an admin see them: status codes, headers,
//! error codes, JSON or HTML.

use bytes::Bytes;
use lti_core::clock::FixedClock;
use lti_core::config::ToolConfig;
use lti_core::contract::sample_platform;
use lti_core::keys::PlatformKeys;
use lti_core::launch::Launcher;
use lti_core::login::LoginService;
use lti_core::memory::MemoryStore;
use lti_core::platform::PlatformStore;
use lti_core::random::SystemRandom;
use lti_core::signer::LocalRsaSigner;
use lti_http::handlers::{
    not_configured, JwksHandler, LaunchHandler, LoginHandler, ServicesDeps, ServicesHandler,
    ToolRouter,
};
use lti_http::HttpRequest;
use lti_outbound::jwks::HttpKeySetFetcher;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

const NOW: i64 = 1_900_000_000;
const ADMIN: &str = "admin-token-0123456789-0123456789-abc";

fn key() -> Arc<LocalRsaSigner> {
    static KEY: OnceLock<Arc<LocalRsaSigner>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(LocalRsaSigner::generate().expect("key")))
        .clone()
}

fn config(extra: &[(&str, &str)]) -> ToolConfig {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ToolConfig::from_lookup(move |name| {
        extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or(match name {
                "LTI_BASE_URL" => Some("https://tool.example".into()),
                "LTI_APP_LANDING_URL" => Some("https://app.example/landing".into()),
                _ => None,
            })
    })
    .expect("config")
}

async fn make_router(config: ToolConfig) -> (ToolRouter, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    store
        .save_platform(sample_platform("https://lms.example.edu", "client-1", NOW))
        .await
        .expect("save");
    let config = Arc::new(config);
    let config_policy = config.url_policy();
    let clock = Arc::new(FixedClock::at(NOW));
    let random = Arc::new(SystemRandom);
    let router = ToolRouter {
        base_path: config.base_url.path().to_string(),
        login: LoginHandler {
            service: LoginService {
                config: config.clone(),
                platforms: store.clone(),
                launches: store.clone(),
                clock: clock.clone(),
                random: random.clone(),
            },
        },
        launch: LaunchHandler {
            launcher: Launcher {
                config: config.clone(),
                platforms: store.clone(),
                launches: store.clone(),
                keys: Arc::new(PlatformKeys::new(Arc::new(
                    HttpKeySetFetcher::new(config.url_policy()).expect("client"),
                ))),
                signer: key(),
                clock: clock.clone(),
                random: random.clone(),
            },
        },
        jwks: JwksHandler { signer: key() },
        services: ServicesHandler::new(ServicesDeps {
            config,
            platforms: store.clone(),
            service_key_store: store.clone(),
            records: store.clone(),
            signer: key(),
            clock,
            random,
            http: Arc::new(lti_outbound::ReqwestPlatformHttp::new(config_policy).expect("client")),
            token_cache: store.clone(),
            users: store.clone(),
        }),
    };
    (router, store)
}

fn get(uri: &str) -> HttpRequest {
    http::Request::get(uri).body(Bytes::new()).expect("request")
}

fn get_json(uri: &str) -> HttpRequest {
    http::Request::get(uri)
        .header("accept", "application/json")
        .body(Bytes::new())
        .expect("request")
}

fn post_form(uri: &str, body: &str) -> HttpRequest {
    http::Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("request")
}

fn admin(method: &str, token: Option<&str>, body: Value) -> HttpRequest {
    let mut builder = http::Request::builder()
        .method(method)
        .uri("https://tool.example/admin/platforms")
        .header("content-type", "application/json");
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    builder
        .body(Bytes::from(body.to_string()))
        .expect("request")
}

fn get_admin(uri: &str) -> HttpRequest {
    http::Request::get(uri)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Bytes::new())
        .expect("request")
}

fn body_json(response: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).expect("json body")
}

fn code(response: &http::Response<Bytes>) -> String {
    body_json(response)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const LOGIN_QUERY: &str = "iss=https%3A%2F%2Flms.example.edu&login_hint=u1&target_link_uri=https%3A%2F%2Ftool.example%2Flti%2Flaunch&lti_message_hint=m%201&client_id=client-1";

#[tokio::test]
async fn login_by_get_redirects_to_the_platform_with_every_oidc_parameter_and_a_bound_cookie() {
    let (router, store) = make_router(config(&[])).await;
    let response = router
        .handle(get(&format!(
            "https://tool.example/lti/login?{LOGIN_QUERY}"
        )))
        .await;
    assert_eq!(response.status(), 302);
    let location =
        url::Url::parse(response.headers()["location"].to_str().expect("ascii")).expect("url");
    assert_eq!(location.path(), "/auth");
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "openid");
    assert_eq!(q["response_type"], "id_token");
    assert_eq!(q["response_mode"], "form_post");
    assert_eq!(q["prompt"], "none");
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["redirect_uri"], "https://tool.example/lti/launch");
    assert_eq!(q["login_hint"], "u1");
    assert_eq!(q["lti_message_hint"], "m 1");
    assert!(
        q["state"].len() >= 43 && q["nonce"].len() >= 43,
        "256-bit values"
    );
    assert_ne!(q["state"], q["nonce"]);
    let stored = store.stored_state(&q["state"]).expect("state stored");
    assert_eq!(stored.login.nonce, q["nonce"]);
    assert_eq!(stored.login.expires_at, NOW + 600);

    let cookie = response.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cookie.starts_with(&format!(
        "__Host-lti-state-{0}={1}.{0};",
        q["state"],
        NOW * 1000
    )));
    assert!(
        !cookie.contains("Domain"),
        "{cookie}: a __Host- cookie has no Domain"
    );
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Partitioned",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
}

#[tokio::test]
async fn login_by_form_post_works_like_get() {
    let (router, _) = make_router(config(&[])).await;
    let response = router
        .handle(post_form("https://tool.example/lti/login", LOGIN_QUERY))
        .await;
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn login_errors_have_their_codes_and_statuses() {
    let (router, store) = make_router(config(&[])).await;
    let cases = [
        ("login_hint=u&target_link_uri=https%3A%2F%2Ftool.example%2Fx", 400, "LTI_LOGIN_PARAM_MISSING"),
        ("iss=https%3A%2F%2Fother.example&login_hint=u&target_link_uri=https%3A%2F%2Ftool.example%2Fx", 404, "LTI_PLATFORM_NOT_REGISTERED"),
        ("iss=https%3A%2F%2Flms.example.edu&login_hint=u&target_link_uri=https%3A%2F%2Fevil.example%2Fx", 400, "LTI_TARGET_LINK_URI_INVALID"),
        ("iss=https%3A%2F%2Flms.example.edu&login_hint=u&target_link_uri=https%3A%2F%2Ftool.example%2Fx&client_id=nope", 404, "LTI_CLIENT_ID_UNKNOWN"),
    ];
    for (query, status, expected) in cases {
        let response = router
            .handle(get_json(&format!("https://tool.example/lti/login?{query}")))
            .await;
        assert_eq!(
            (response.status().as_u16(), code(&response).as_str()),
            (status, expected),
            "{query}"
        );
    }
    // An issuer with two registrations needs the client_id.
    store
        .save_platform(sample_platform("https://lms.example.edu", "client-2", NOW))
        .await
        .expect("save");
    let response = router
        .handle(get_json("https://tool.example/lti/login?iss=https%3A%2F%2Flms.example.edu&login_hint=u&target_link_uri=https%3A%2F%2Ftool.example%2Fx"))
        .await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (400, "LTI_CLIENT_ID_REQUIRED")
    );
}

#[tokio::test]
async fn errors_are_pages_for_browsers_and_json_for_clients() {
    let (router, _) = make_router(config(&[])).await;
    let page = router
        .handle(get("https://tool.example/lti/login?login_hint=x"))
        .await;
    assert_eq!(page.status(), 400);
    assert!(page.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let html = String::from_utf8_lossy(page.body());
    assert!(html.contains("LTI_LOGIN_PARAM_MISSING"));
    assert!(html.contains("The login request has no iss."));
    assert!(page.headers().contains_key("content-security-policy"));

    let json = router
        .handle(get_json("https://tool.example/lti/login?login_hint=x"))
        .await;
    let body = body_json(&json);
    assert_eq!(body["error"]["code"], "LTI_LOGIN_PARAM_MISSING");
    assert_eq!(body["error"]["message"], "The login request has no iss.");
    assert!(body["error"]["requestId"].is_string());
}

#[tokio::test]
async fn bad_launch_bodies_are_refused_before_any_lti_check() {
    let (router, _) = make_router(config(&[])).await;
    let huge = format!("id_token={}&state=s", "a".repeat(70 * 1024));
    let response = router
        .handle(post_form("https://tool.example/lti/launch", &huge))
        .await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (413, "HTTP_BODY_TOO_LARGE")
    );

    let mut json_body = post_form("https://tool.example/lti/launch", "{}");
    json_body.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    let response = router.handle(json_body).await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (400, "HTTP_UNSUPPORTED_MEDIA_TYPE")
    );

    let response = router
        .handle(post_form(
            "https://tool.example/lti/launch",
            "id_token=a&id_token=b&state=s",
        ))
        .await;
    assert_eq!(code(&response), "HTTP_DUPLICATE_PARAMETER");

    let response = router
        .handle(get_json("https://tool.example/lti/launch"))
        .await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (405, "HTTP_METHOD_NOT_ALLOWED")
    );
    assert_eq!(
        response
            .headers()
            .get(http::header::ALLOW)
            .map(|v| v.as_bytes()),
        Some(&b"POST"[..]),
        "a 405 names what the address takes"
    );

    let response = router
        .handle(post_form(
            "https://tool.example/lti/launch",
            "id_token=not-a-jwt&state=s",
        ))
        .await;
    assert_eq!(
        code(&response),
        "LTI_STATE_COOKIE_MISSING",
        "the browser binding is checked first"
    );
}

#[tokio::test]
async fn garbage_never_panics_a_handler() {
    let (router, _) = make_router(config(&[("LTI_ADMIN_TOKEN", ADMIN)])).await;
    let bodies = [
        "",
        "=",
        "&&&",
        "id_token=..&state=x",
        "id_token=a.b.c&state=x",
        "id_token=e30.e30.e30&state=x",
        "state=%00%01&id_token=%FF",
    ];
    for body in bodies {
        for path in [
            "/lti/launch",
            "/lti/login",
            "/admin/platforms",
            "/lti/config",
            "/nope",
        ] {
            let mut request = post_form(&format!("https://tool.example{path}"), body);
            request.headers_mut().insert(
                "cookie",
                http::HeaderValue::from_static("__Host-lti-state-x=1.x"),
            );
            let response = router.handle(request).await;
            assert!(
                response.status().is_client_error(),
                "{path} {body:?} → {}",
                response.status()
            );
        }
    }
}

#[tokio::test]
async fn the_jwks_lists_the_signing_key_with_cache_headers_at_both_addresses() {
    let (router, _) = make_router(config(&[])).await;
    for path in ["/.well-known/jwks.json", "/lti/jwks"] {
        let response = router
            .handle(get(&format!("https://tool.example{path}")))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("max-age"));
        let keys = &body_json(&response)["keys"];
        let k = &keys[0];
        assert_eq!(
            (k["kty"].as_str(), k["alg"].as_str(), k["use"].as_str()),
            (Some("RSA"), Some("RS256"), Some("sig"))
        );
        assert_eq!(k["kid"], key().public_jwk().kid);
        assert_eq!(k["e"], "AQAB");
    }
}

#[tokio::test]
async fn an_unconfigured_function_answers_503_naming_the_variable() {
    let error = ToolConfig::from_lookup(|_| None).expect_err("unconfigured");
    let response = not_configured(&get_json("https://tool.example/lti/login"), &error);
    assert_eq!(response.status(), 503);
    let body = body_json(&response);
    assert_eq!(body["error"]["code"], "LTI_NOT_CONFIGURED");
    assert!(body["error"]["message"]
        .as_str()
        .expect("text")
        .contains("LTI_BASE_URL"));
}

#[tokio::test]
async fn the_admin_api_requires_the_bearer_token() {
    let (router, _) = make_router(config(&[("LTI_ADMIN_TOKEN", ADMIN)])).await;
    for token in [None, Some("wrong"), Some(&ADMIN[1..])] {
        let response = router.handle(admin("GET", token, json!({}))).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let (disabled, _) = make_router(config(&[])).await;
    let response = disabled.handle(admin("GET", Some(ADMIN), json!({}))).await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (503, "ADMIN_DISABLED")
    );
}

#[tokio::test]
async fn a_platform_is_registered_then_updated_in_place() {
    let (router, store) = make_router(config(&[("LTI_ADMIN_TOKEN", ADMIN)])).await;
    let body = json!({
        "issuer": "https://moodle.example.edu", "clientId": "abc", "name": "Moodle",
        "authLoginUrl": "https://moodle.example.edu/mod/lti/auth.php",
        "authTokenUrl": "https://moodle.example.edu/mod/lti/token.php",
        "keysetUrl": "https://moodle.example.edu/mod/lti/certs.php",
        "deploymentId": "43"
    });
    let created = router
        .handle(admin("POST", Some(ADMIN), body.clone()))
        .await;
    assert_eq!(created.status(), 201);
    let created = body_json(&created);
    assert!(uuid::Uuid::parse_str(created["id"].as_str().expect("id")).is_ok());
    assert_eq!(created["createdAt"], NOW);
    assert_eq!(created["deploymentId"], "43");
    assert!(store
        .deployment("https://moodle.example.edu", "abc", "43")
        .await
        .expect("read")
        .is_some());

    let mut renamed = body.clone();
    renamed["name"] = json!("Moodle (prod)");
    let updated = router.handle(admin("POST", Some(ADMIN), renamed)).await;
    assert_eq!(updated.status(), 200);
    let updated = body_json(&updated);
    assert_eq!(updated["id"], created["id"], "upsert on issuer + clientId");
    assert_eq!(updated["name"], "Moodle (prod)");

    let list = router.handle(admin("GET", Some(ADMIN), json!({}))).await;
    assert_eq!(
        body_json(&list)["platforms"]
            .as_array()
            .expect("list")
            .len(),
        2
    );
}

#[tokio::test]
async fn an_invalid_registration_lists_every_bad_field_and_stores_nothing() {
    let (router, store) = make_router(config(&[("LTI_ADMIN_TOKEN", ADMIN)])).await;
    let response = router
        .handle(admin(
            "POST",
            Some(ADMIN),
            json!({"issuer": "http://moodle.example.edu", "clientId": "", "keysetUrl": "nope"}),
        ))
        .await;
    assert_eq!(response.status(), 400);
    let body = body_json(&response);
    assert_eq!(body["error"]["code"], "ADMIN_INVALID_PLATFORM");
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        vec![
            "issuer",
            "clientId",
            "name",
            "authLoginUrl",
            "authTokenUrl",
            "keysetUrl"
        ]
    );
    assert_eq!(
        store.list_platforms().await.expect("list").len(),
        1,
        "nothing written"
    );

    let response = router
        .handle(admin("POST", Some(ADMIN), json!({"issuer": 5})))
        .await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (400, "HTTP_INVALID_JSON")
    );
    let response = router
        .handle(admin("POST", Some(ADMIN), json!({"unknownField": 1})))
        .await;
    assert_eq!(
        code(&response),
        "HTTP_INVALID_JSON",
        "unknown fields are refused"
    );
}

#[tokio::test]
async fn the_config_endpoint_gives_the_values_to_paste_into_an_lms_to_admins_only() {
    let (router, _) = make_router(config(&[("LTI_ADMIN_TOKEN", ADMIN)])).await;
    for denied in [
        get("https://tool.example/lti/config"),
        http::Request::get("https://tool.example/lti/config")
            .header("authorization", "Bearer wrong")
            .body(Bytes::new())
            .expect("request"),
    ] {
        let response = router.handle(denied).await;
        assert_eq!(
            (response.status().as_u16(), code(&response).as_str()),
            (401, "ADMIN_UNAUTHORIZED")
        );
    }
    let response = router
        .handle(get_admin("https://tool.example/lti/config"))
        .await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    assert_eq!(body["loginUrl"], "https://tool.example/lti/login");
    assert_eq!(body["redirectUrl"], "https://tool.example/lti/launch");
    assert_eq!(
        body["jwksUrl"],
        "https://tool.example/.well-known/jwks.json"
    );
    assert_eq!(body["domain"], "tool.example");
    assert_eq!(
        body["canvasConfigUrl"],
        "https://tool.example/lti/config/canvas.json"
    );
    let moodle: Vec<(&str, &str)> = body["moodle"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("Tool URL", "https://tool.example/lti/launch"),
        ("LTI version", "LTI 1.3"),
        ("Public key type", "Keyset URL"),
        (
            "Public keyset",
            "https://tool.example/.well-known/jwks.json",
        ),
        ("Initiate login URL", "https://tool.example/lti/login"),
        ("Redirection URI(s)", "https://tool.example/lti/launch"),
    ] {
        assert!(moodle.contains(&expected), "{expected:?} in {moodle:?}");
    }
    assert_eq!(
        body["canvas"],
        lti_http::handlers::canvas_json(&config(&[])),
        "the Canvas JSON is part of it"
    );
    // The Canvas JSON alone is public: Canvas fetches it by URL without credentials.
    let canvas = router
        .handle(get("https://tool.example/lti/config/canvas.json"))
        .await;
    assert_eq!(canvas.status(), 200);
    assert_eq!(body_json(&canvas), body["canvas"]);
}

/// Canvas's published schema of an LTI 1.3 developer key JSON configuration
/// (`Schemas::Lti::ToolConfiguration` in canvas-lms, and the "Anatomy of a JSON
/// configuration" table of its `lti_dev_key_config` document): the required fields,
/// their types and the allowed values of the enumerations this tool uses.
#[tokio::test]
async fn the_canvas_json_has_every_field_canvas_requires_with_allowed_values() {
    let (router, _) = make_router(config(&[])).await;
    let canvas = body_json(
        &router
            .handle(get("https://tool.example/lti/config/canvas.json"))
            .await,
    );
    for required in [
        "title",
        "description",
        "target_link_uri",
        "oidc_initiation_url",
    ] {
        assert!(
            canvas[required].as_str().is_some_and(|v| !v.is_empty()),
            "{required} is a required string"
        );
    }
    assert_eq!(
        canvas["oidc_initiation_url"],
        "https://tool.example/lti/login"
    );
    assert_eq!(canvas["target_link_uri"], "https://tool.example/lti/launch");
    // public_jwk_url is required when public_jwk is omitted.
    assert!(canvas.get("public_jwk").is_none());
    assert_eq!(
        canvas["public_jwk_url"],
        "https://tool.example/.well-known/jwks.json"
    );
    let allowed_scopes = [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        "https://canvas.instructure.com/lti/public_jwk/scope/update",
    ];
    let scopes: Vec<&str> = canvas["scopes"]
        .as_array()
        .expect("scopes is a string array")
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect();
    assert!(
        scopes.iter().all(|s| allowed_scopes.contains(s)),
        "{scopes:?}"
    );
    assert!(scopes.contains(&"https://purl.imsglobal.org/spec/lti-ags/scope/score"));
    assert!(scopes
        .contains(&"https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"));
    let extensions = canvas["extensions"]
        .as_array()
        .expect("extensions is an array");
    assert_eq!(extensions.len(), 1);
    let extension = &extensions[0];
    // Each extension requires platform and settings; settings requires placements.
    assert_eq!(extension["platform"], "canvas.instructure.com");
    assert_eq!(extension["domain"], "tool.example");
    assert!(["anonymous", "public", "name_only", "email_only"]
        .contains(&extension["privacy_level"].as_str().expect("privacy_level")));
    let placements = extension["settings"]["placements"]
        .as_array()
        .expect("settings.placements is an array");
    let mut seen = Vec::new();
    for placement in placements {
        let name = placement["placement"]
            .as_str()
            .expect("placement is required");
        let message_type = placement["message_type"].as_str().expect("message_type");
        assert!(["LtiResourceLinkRequest", "LtiDeepLinkingRequest"].contains(&message_type));
        // Canvas's placements by message type (Lti::ResourcePlacement).
        let supported: &[&str] = match message_type {
            "LtiDeepLinkingRequest" => &["assignment_selection", "link_selection", "editor_button"],
            _ => &[
                "course_navigation",
                "assignment_selection",
                "link_selection",
            ],
        };
        assert!(supported.contains(&name), "{name} with {message_type}");
        assert_eq!(
            placement["target_link_uri"],
            "https://tool.example/lti/launch"
        );
        for text in ["text", "target_link_uri"] {
            assert!(placement[text].is_string(), "{text} is a string");
        }
        seen.push((name, message_type));
    }
    assert_eq!(
        seen,
        vec![
            ("course_navigation", "LtiResourceLinkRequest"),
            ("link_selection", "LtiDeepLinkingRequest"),
            ("assignment_selection", "LtiDeepLinkingRequest"),
        ]
    );
    assert!(canvas["custom_fields"].is_object());
}

#[tokio::test]
async fn a_tool_under_a_path_prefix_routes_by_the_relative_path() {
    let (router, _) = make_router(config(&[
        ("LTI_BASE_URL", "https://api.example/prod"),
        ("LTI_ADMIN_TOKEN", ADMIN),
    ]))
    .await;
    let response = router
        .handle(get("https://api.example/prod/lti/jwks"))
        .await;
    assert_eq!(response.status(), 200);
    let response = router
        .handle(get_admin("https://api.example/prod/lti/config"))
        .await;
    assert_eq!(
        body_json(&response)["loginUrl"],
        "https://api.example/prod/lti/login"
    );
    let response = router
        .handle(get("https://api.example/prod/lti/config/canvas.json"))
        .await;
    assert_eq!(
        body_json(&response)["oidc_initiation_url"],
        "https://api.example/prod/lti/login"
    );
}

#[tokio::test]
async fn a_direct_platform_is_registered_by_an_admin_and_its_values_are_shown_by_config() {
    let (router, _) = make_router(config(&[("LTI_ADMIN_TOKEN", ADMIN)])).await;
    let body = json!({
        "issuer": "https://timeback.example", "clientId": "tb", "name": "TimeBack",
        "authLoginUrl": "https://timeback.example/auth", "authTokenUrl": "https://timeback.example/token",
        "keysetUrl": "https://timeback.example/jwks",
        "launchProfile": "direct", "audience": "tool-aud-1", "landingUrl": "https://app.example/tb"
    });
    let created = router
        .handle(admin("POST", Some(ADMIN), body.clone()))
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(body_json(&created)["launchProfile"], "direct");

    // What a direct-launch platform asks for: the admin reads it from the tool and
    // enters it in the platform; nobody else may ask which platforms are registered.
    let anonymous = router
        .handle(get(
            "https://tool.example/lti/config?issuer=https%3A%2F%2Ftimeback.example&clientId=tb",
        ))
        .await;
    assert_eq!(
        (anonymous.status().as_u16(), code(&anonymous).as_str()),
        (401, "ADMIN_UNAUTHORIZED")
    );
    let response = router
        .handle(get_admin(
            "https://tool.example/lti/config?issuer=https%3A%2F%2Ftimeback.example&clientId=tb",
        ))
        .await;
    let direct = &body_json(&response)["directLaunch"];
    assert_eq!(direct["launchUrl"], "https://tool.example/lti/launch");
    assert_eq!(direct["audience"], "tool-aud-1");
    assert_eq!(direct["landingUrl"], "https://app.example/tb");

    let mut no_audience = body;
    no_audience
        .as_object_mut()
        .expect("object")
        .remove("audience");
    let refused = router.handle(admin("POST", Some(ADMIN), no_audience)).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        body_json(&refused)["error"]["fields"][0]["field"],
        "audience"
    );

    let standard = router
        .handle(get_admin("https://tool.example/lti/config?issuer=https%3A%2F%2Flms.example.edu&clientId=client-1"))
        .await;
    assert_eq!(
        standard.status(),
        404,
        "only direct platforms have direct-launch values"
    );
}
