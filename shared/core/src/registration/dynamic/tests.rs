//! Dynamic Registration against platforms played by closures: Moodle (token in the
//! query, plain message names, plain-text refusals), Brightspace (no token, an
//! `authorization_server`), Canvas (no deployment in the answer), and every failure.

use super::*;
use crate::clock::{Clock, FixedClock};
use crate::error::Problem;
use crate::memory::MemoryStore;
use crate::platform::PlatformStore;
use crate::registration::audit::MemoryAudit;
use crate::services::outbound::{OutboundError, OutboundResponse};
use crate::services::testing::{answer, bearer, json_body, ok_json, FakePlatform};
use serde_json::{json, Value};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmMiLCJzY29wZSI6InJlZyJ9.c2lnbmF0dXJl";
const MOODLE: &str = "https://moodle.example.edu";
const MOODLE_CONFIG: &str = "https://moodle.example.edu/mod/lti/openid-configuration.php";
const MOODLE_REGISTER: &str = "https://moodle.example.edu/mod/lti/openid-registration.php";

fn config(settings: &[(&str, &str)]) -> ToolConfig {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ToolConfig::from_lookup(move |name| match name {
        "LTI_BASE_URL" => Some("https://tool.example/prod".into()),
        "LTI_APP_LANDING_URL" => Some("https://app.example/lti".into()),
        other => settings
            .iter()
            .find(|(k, _)| k == other)
            .map(|(_, v)| v.clone()),
    })
    .expect("config")
}

const TOOL: ToolDescription<'static> = ToolDescription {
    name: "lti-lambda",
    scopes: &[
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    ],
    logo_url: Some("https://tool.example/logo.png"),
};

/// Moodle 4.x's configuration, as `mod/lti/openid-configuration.php` serves it.
fn moodle_configuration() -> Value {
    json!({
        "issuer": MOODLE,
        "token_endpoint": "https://moodle.example.edu/mod/lti/token.php",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "jwks_uri": "https://moodle.example.edu/mod/lti/certs.php",
        "authorization_endpoint": "https://moodle.example.edu/mod/lti/auth.php",
        "registration_endpoint": MOODLE_REGISTER,
        "scopes_supported": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-gs/scope/contextgroup.readonly",
            "openid"
        ],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "moodle",
            "version": "4.5.1 (Build: 20241209)",
            "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
            "placements": ["AddContentMenu"],
            "variables": ["basic-lti-launch-request"]
        }
    })
}

/// Moodle's answer: list-shaped members, the deployment (its type id) as a string.
fn moodle_answer() -> Value {
    json!({
        "client_id": "Xq3nH2kVbR9tLw1",
        "token_endpoint_auth_method": "private_key_jwt",
        "response_types": ["id_token"],
        "jwks_uri": "https://tool.example/prod/.well-known/jwks.json",
        "initiate_login_uri": "https://tool.example/prod/lti/login",
        "grant_types": ["client_credentials", "implicit"],
        "redirect_uris": ["https://tool.example/prod/lti/launch"],
        "application_type": ["web"],
        "client_name": "lti-lambda",
        "logo_uri": "",
        "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-tool-configuration": {
            "deployment_id": "12",
            "target_link_uri": "https://tool.example/prod/lti/launch",
            "domain": "tool.example",
            "description": "",
            "claims": ["sub", "iss", "name", "family_name", "middle_name", "email"]
        }
    })
}

/// A platform serving `configuration` at `config_url` and answering registrations
/// with `registration`.
fn platform(
    config_url: &'static str,
    configuration: Value,
    registration: impl Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError>
        + Send
        + Sync
        + 'static,
) -> FakePlatform {
    FakePlatform::new(move |request| match request.method {
        Method::Get if request.url == config_url => ok_json(configuration.clone()),
        Method::Post => registration(request),
        _ => answer(404, &[], "not found"),
    })
}

struct Run {
    result: Result<Outcome, DynRegError>,
    store: MemoryStore,
    audit: MemoryAudit,
    http: FakePlatform,
}

async fn attempt(
    config: &ToolConfig,
    http: FakePlatform,
    configuration_url: &str,
    token: Option<&str>,
) -> Run {
    let store = MemoryStore::new();
    let audit = MemoryAudit::default();
    let now = FixedClock::at(1_750_000_000).now();
    let result = match RegistrationParams::new(
        Some(configuration_url.to_string()),
        token.map(str::to_string),
    ) {
        Ok(params) => {
            register_and_store(
                config,
                &http,
                &TOOL,
                &params,
                &Storage {
                    store: &store,
                    audit: &audit,
                    request_id: "req-1".into(),
                },
                now,
            )
            .await
        }
        Err(e) => Err(e),
    };
    Run {
        result,
        store,
        audit,
        http,
    }
}

impl Run {
    fn error(&self) -> &DynRegError {
        match &self.result {
            Err(e) => e,
            Ok(o) => panic!("registered {:?}", o.stored.platform),
        }
    }

    async fn assert_nothing_stored(&self) {
        let all = self.store.list_platforms().await.expect("list");
        assert!(all.is_empty(), "stored {all:?}");
        assert!(self.audit.lines().is_empty());
    }
}

#[tokio::test]
async fn moodle_registers_with_the_token_from_the_query_and_is_stored_with_its_deployment() {
    let lms = platform(MOODLE_CONFIG, moodle_configuration(), |_| {
        ok_json(moodle_answer())
    });
    let run = attempt(&config(&[]), lms, MOODLE_CONFIG, Some(TOKEN)).await;
    let outcome = run.result.as_ref().expect("registered");

    // The registration request: the token as bearer, what the spec asks for.
    let requests = run.http.requests();
    assert_eq!(requests.len(), 2, "configuration, then registration");
    assert_eq!(requests[0].method, Method::Get);
    assert_eq!(
        bearer(&requests[0]),
        Some(TOKEN),
        "the configuration is asked for with the token too (Canvas requires it)"
    );
    let post = &requests[1];
    assert_eq!(post.url, MOODLE_REGISTER);
    assert_eq!(bearer(post), Some(TOKEN));
    assert_eq!(post.header_value("content-type"), Some("application/json"));
    let body = json_body(post);
    assert_eq!(body["logo_uri"], "https://tool.example/logo.png");
    assert_eq!(body["client_name"], "lti-lambda");
    // Only the offered scopes: Moodle offers no NRPS scope here.
    assert_eq!(
        body["scope"],
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem https://purl.imsglobal.org/spec/lti-ags/scope/score"
    );
    let messages = body[request::TOOL_CONFIGURATION]["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let types: Vec<&str> = messages.iter().filter_map(|m| m["type"].as_str()).collect();
    assert_eq!(types, ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]);
    assert_eq!(
        messages[1]["target_link_uri"], "https://tool.example/prod/lti/launch",
        "Moodle takes the deep-linking URL from the message"
    );

    // What is stored.
    let stored = run
        .store
        .platform(MOODLE, "Xq3nH2kVbR9tLw1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.name, "Moodle moodle.example.edu");
    assert_eq!(
        stored.auth_login_url,
        "https://moodle.example.edu/mod/lti/auth.php"
    );
    assert_eq!(
        stored.auth_token_url,
        "https://moodle.example.edu/mod/lti/token.php"
    );
    assert_eq!(
        stored.keyset_url,
        "https://moodle.example.edu/mod/lti/certs.php"
    );
    assert_eq!(stored.token_audience, None);
    assert!(!stored.accept_new_deployments);
    assert!(run
        .store
        .deployment(MOODLE, "Xq3nH2kVbR9tLw1", "12")
        .await
        .expect("read")
        .is_some());
    assert_eq!(outcome.stored.deployment_id.as_deref(), Some("12"));
    assert!(outcome.stored.created);

    // One audit line, by the platform, without the token.
    let lines = run.audit.lines();
    assert_eq!(lines.len(), 1);
    let line: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(line["action"], "platform.create");
    assert_eq!(line["who"]["kind"], "dynamicRegistration");
    assert_eq!(line["who"]["issuer"], MOODLE);
    assert_eq!(line["who"]["productFamilyCode"], "moodle");
    assert_eq!(line["changed"], json!(["deployment 12"]));
    assert!(!lines[0].contains(TOKEN));
}

#[tokio::test]
async fn brightspace_registers_without_a_token_and_keeps_its_token_audience() {
    const CONFIG: &str = "https://school.brightspace.com/d2l/.well-known/openid-configuration";
    let configuration = json!({
        "issuer": "https://school.brightspace.com",
        "authorization_endpoint": "https://school.brightspace.com/d2l/lti/authenticate",
        "registration_endpoint": "https://school.brightspace.com/d2l/api/lti/dynamic-registration",
        "jwks_uri": "https://school.brightspace.com/d2l/.well-known/jwks",
        "token_endpoint": "https://auth.brightspace.com/core/connect/token",
        "authorization_server": "https://api.brightspace.com/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "scopes_supported": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
        ],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "desire2learn",
            "version": "20.24.11",
            "messages_supported": [
                {"type": "LtiResourceLinkRequest"},
                {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]}
            ]
        }
    });
    let lms = platform(CONFIG, configuration, |_| {
        ok_json(json!({
            "client_id": "4f9a0c5e-21aa-4c1b-9c57-0e3b3c0a77d2",
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                "deployment_id": "b4a7c1de-0000-4e21-a0a0-2b8c5d7e9f10"
            }
        }))
    });
    let run = attempt(&config(&[]), lms, CONFIG, None).await;
    run.result.as_ref().expect("registered");
    let post = &run.http.requests()[1];
    assert_eq!(
        post.header_value("authorization"),
        None,
        "no token, no bearer"
    );
    let body = json_body(post);
    assert_eq!(
        body["scope"],
        "https://purl.imsglobal.org/spec/lti-ags/scope/score https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
    );
    assert_eq!(
        body[request::TOOL_CONFIGURATION]["messages"][1]["placements"],
        json!(["ContentArea"])
    );
    let stored = run
        .store
        .platform(
            "https://school.brightspace.com",
            "4f9a0c5e-21aa-4c1b-9c57-0e3b3c0a77d2",
        )
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.name, "Brightspace school.brightspace.com");
    assert_eq!(
        stored.token_audience.as_deref(),
        Some("https://api.brightspace.com/auth/token")
    );
}

#[tokio::test]
async fn a_platform_that_refuses_says_why_and_nothing_is_stored() {
    // Moodle: plain text and 401 for a token used twice.
    let lms = platform(MOODLE_CONFIG, moodle_configuration(), |_| {
        answer(401, &[("Content-Type", "text/plain")], "token_already_used")
    });
    let run = attempt(&config(&[]), lms, MOODLE_CONFIG, Some(TOKEN)).await;
    let e = run.error();
    assert_eq!(e.code(), "LTI_DYNREG_REFUSED");
    assert_eq!(e.platform_error(), Some("token_already_used"));
    assert!(e.public_message().contains("HTTP 401"));
    run.assert_nothing_stored().await;

    // RFC 7591 JSON that echoes the token back: blanked out.
    let lms = platform(MOODLE_CONFIG, moodle_configuration(), |_| {
        answer(
            400,
            &[("Content-Type", "application/json")],
            json!({"error": "invalid_client_metadata", "error_description": format!("bad token {TOKEN}")}).to_string(),
        )
    });
    let run = attempt(&config(&[]), lms, MOODLE_CONFIG, Some(TOKEN)).await;
    let said = run.error().platform_error().expect("said").to_string();
    assert!(
        said.starts_with("invalid_client_metadata: bad token"),
        "{said}"
    );
    assert!(!said.contains(TOKEN), "{said}");
    run.assert_nothing_stored().await;
}

#[tokio::test]
async fn canvas_without_a_deployment_is_refused_unless_new_deployments_are_accepted() {
    const CONFIG: &str =
        "https://canvas.instructure.com/api/lti/security/openid-configuration?registration_token=abc";
    let configuration = json!({
        "issuer": "https://canvas.instructure.com",
        "authorization_endpoint": "https://canvas.instructure.com/api/lti/authorize_redirect",
        "registration_endpoint": "https://canvas.instructure.com/api/lti/registrations",
        "jwks_uri": "https://canvas.instructure.com/api/lti/security/jwks",
        "token_endpoint": "https://canvas.instructure.com/login/oauth2/token",
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
        "authorization_server": "canvas.instructure.com",
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "canvas",
            "version": "OpenSource",
            "messages_supported": [
                {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
                {"type": "LtiDeepLinkingRequest", "placements": ["link_selection", "assignment_selection"]}
            ],
            "https://canvas.instructure.com/lti/account_name": "Example School"
        }
    });
    let registration = |_: &OutboundRequest| {
        ok_json(json!({
            "client_id": 10000000000042u64,
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                "domain": "tool.example",
                "https://canvas.instructure.com/lti/registration_config_url": "https://canvas.instructure.com/api/lti/registrations/42/view"
            }
        }))
    };

    let run_off = attempt(
        &config(&[]),
        platform(CONFIG, configuration.clone(), registration),
        CONFIG,
        Some("abc"),
    )
    .await;
    let e = run_off.error();
    assert_eq!(e.code(), "LTI_DYNREG_DEPLOYMENT_MISSING");
    assert_eq!(crate::error::ErrorKind::NotAllowed, e.kind());
    assert!(e.public_message().contains("10000000000042"));
    assert!(e
        .advice()
        .contains("LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS"));
    run_off.assert_nothing_stored().await;

    let on = config(&[("LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS", "true")]);
    let run_on = attempt(
        &on,
        platform(CONFIG, configuration, registration),
        CONFIG,
        Some("abc"),
    )
    .await;
    let outcome = run_on.result.as_ref().expect("registered");
    let stored = &outcome.stored.platform;
    assert_eq!(stored.client_id, "10000000000042");
    assert!(stored.accept_new_deployments);
    assert_eq!(stored.name, "Canvas Example School");
    // A bare host as authorization_server is not an audience.
    assert_eq!(stored.token_audience, None);
    assert!(outcome
        .registered
        .extras
        .contains_key("https://canvas.instructure.com/lti/registration_config_url"));
    assert!(outcome
        .registered
        .extras
        .contains_key("https://canvas.instructure.com/lti/account_name"));
    // Canvas's own members were sent.
    let body = json_body(&run_on.http.requests()[1]);
    assert_eq!(
        body[request::TOOL_CONFIGURATION][request::CANVAS_PRIVACY_LEVEL],
        "public"
    );
}

/// Every failure before anything is sent: its code, and nothing stored or posted.
#[tokio::test]
async fn each_failure_has_its_code_and_nothing_is_posted_or_stored() {
    let strict = config(&[]);
    let ok_answer = |_: &OutboundRequest| ok_json(moodle_answer());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = moodle_configuration();
        f(&mut c);
        c
    };
    let cases: Vec<(&str, FakePlatform, &str)> = vec![
        (
            "LTI_DYNREG_CONFIG_UNREACHABLE",
            FakePlatform::new(|_| answer(404, &[], "no such page")),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_CONFIG_UNREACHABLE",
            FakePlatform::new(|_| Err(OutboundError::Timeout)),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_CONFIG_UNREACHABLE",
            FakePlatform::new(|_| Err(OutboundError::TooLarge(1 << 20))),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_CONFIG_NOT_JSON",
            FakePlatform::new(|_| answer(200, &[], "<html>Log in</html>")),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_ISSUER_MISMATCH",
            platform(
                MOODLE_CONFIG,
                with(&|c| c["issuer"] = json!("https://other.example.edu")),
                ok_answer,
            ),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_CONFIG_INVALID",
            platform(
                MOODLE_CONFIG,
                with(&|c| {
                    c.as_object_mut().map(|o| o.remove("registration_endpoint"));
                }),
                ok_answer,
            ),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_UNSUPPORTED",
            platform(
                MOODLE_CONFIG,
                with(&|c| c["id_token_signing_alg_values_supported"] = json!(["HS256"])),
                ok_answer,
            ),
            MOODLE_CONFIG,
        ),
        (
            // A registration endpoint at a private address.
            "LTI_DYNREG_URL_REFUSED",
            platform(
                MOODLE_CONFIG,
                with(&|c| c["registration_endpoint"] = json!("https://10.0.0.5/register")),
                ok_answer,
            ),
            MOODLE_CONFIG,
        ),
        (
            // A key set URL the admin API would refuse too.
            "LTI_DYNREG_PLATFORM_INVALID",
            platform(
                MOODLE_CONFIG,
                with(&|c| c["jwks_uri"] = json!("http://moodle.example.edu/certs.php")),
                ok_answer,
            ),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_URL_REFUSED",
            FakePlatform::new(|_| panic!("never called")),
            "https://169.254.169.254/latest/meta-data/",
        ),
        (
            "LTI_DYNREG_URL_REFUSED",
            FakePlatform::new(|_| panic!("never called")),
            "http://127.0.0.1:8080/openid-configuration",
        ),
        (
            "LTI_DYNREG_URL_REFUSED",
            FakePlatform::new(|_| panic!("never called")),
            "http://moodle.example.edu/mod/lti/openid-configuration.php",
        ),
        (
            "LTI_DYNREG_URL_REFUSED",
            FakePlatform::new(|_| panic!("never called")),
            "file:///etc/passwd",
        ),
        (
            // The adapter refuses a name resolving to a private address.
            "LTI_DYNREG_URL_REFUSED",
            FakePlatform::new(|_| {
                Err(OutboundError::UrlRefused(
                    "it resolves to a non-public address (internal.example)".into(),
                ))
            }),
            "https://internal.example/openid",
        ),
        (
            "LTI_DYNREG_REDIRECT_REFUSED",
            FakePlatform::new(|_| {
                answer(302, &[("Location", "https://169.254.169.254/latest")], "")
            }),
            MOODLE_CONFIG,
        ),
        (
            "LTI_DYNREG_PARAM_MISSING",
            FakePlatform::new(|_| panic!("never called")),
            " ",
        ),
    ];
    for (code, lms, url) in cases {
        let run = attempt(&strict, lms, url, Some(TOKEN)).await;
        let e = run.error();
        assert_eq!(e.code(), code, "{url}: {e}");
        let sentence = e.public_message();
        assert!(!sentence.contains(TOKEN), "{sentence}");
        assert!(
            run.http.requests().iter().all(|r| r.method == Method::Get),
            "{code}: nothing posted"
        );
        run.assert_nothing_stored().await;
    }
}

#[tokio::test]
async fn failures_after_the_post_have_their_codes_and_store_nothing() {
    let cases: Vec<(&str, Result<OutboundResponse, OutboundError>)> = vec![
        ("LTI_DYNREG_ANSWER_INVALID", answer(200, &[], "OK")),
        (
            "LTI_DYNREG_ANSWER_INVALID",
            ok_json(json!({"client_name": "no id"})),
        ),
        (
            "LTI_DYNREG_REDIRECT_REFUSED",
            answer(
                307,
                &[("Location", "https://elsewhere.example/register")],
                "",
            ),
        ),
        (
            "LTI_DYNREG_REGISTRATION_UNREACHABLE",
            Err(OutboundError::Unreachable(
                "cannot connect to moodle.example.edu".into(),
            )),
        ),
        ("LTI_DYNREG_REFUSED", answer(500, &[], "")),
    ];
    for (code, reply) in cases {
        let lms = platform(MOODLE_CONFIG, moodle_configuration(), move |_| {
            reply.clone()
        });
        let run = attempt(&config(&[]), lms, MOODLE_CONFIG, Some(TOKEN)).await;
        assert_eq!(run.error().code(), code, "{}", run.error());
        run.assert_nothing_stored().await;
    }
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_configuration_site() {
    let lms = FakePlatform::new(|request| match (request.method, request.url.as_str()) {
        (Method::Get, "https://moodle.example.edu/old") => answer(
            301,
            &[("Location", "/mod/lti/openid-configuration.php")],
            "",
        ),
        (Method::Get, MOODLE_CONFIG) => ok_json(moodle_configuration()),
        (Method::Post, MOODLE_REGISTER) => ok_json(moodle_answer()),
        _ => answer(404, &[], ""),
    });
    let run = attempt(&config(&[]), lms, "https://moodle.example.edu/old", None).await;
    run.result
        .as_ref()
        .expect("registered after a same-site redirect");

    // Round and round: refused after MAX_REDIRECTS.
    let lms = FakePlatform::new(|_| answer(302, &[("Location", "/again")], ""));
    let run = attempt(&config(&[]), lms, "https://moodle.example.edu/again", None).await;
    assert_eq!(run.error().code(), "LTI_DYNREG_CONFIG_UNREACHABLE");
    assert!(run.error().to_string().contains("more than 3"));
    assert_eq!(run.http.requests().len(), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn loopback_platforms_register_only_where_loopback_is_allowed() {
    const LOCAL: &str = "http://127.0.0.1:8081/platform/.well-known/openid-configuration";
    let local_config = || {
        let mut c = moodle_configuration();
        for (key, path) in [
            ("issuer", ""),
            ("authorization_endpoint", "/auth"),
            ("token_endpoint", "/token"),
            ("jwks_uri", "/jwks"),
            ("registration_endpoint", "/register"),
        ] {
            c[key] = json!(format!("http://127.0.0.1:8081/platform{path}"));
        }
        c
    };
    let lms = platform(LOCAL, local_config(), |_| ok_json(moodle_answer()));
    let strict = attempt(&config(&[]), lms, LOCAL, None).await;
    assert_eq!(strict.error().code(), "LTI_DYNREG_URL_REFUSED");

    let lms = platform(LOCAL, local_config(), |_| ok_json(moodle_answer()));
    let allowed = config(&[("LTI_INSECURE_ALLOW_LOOPBACK_URLS", "true")]);
    let run = attempt(&allowed, lms, LOCAL, None).await;
    assert_eq!(
        run.result
            .as_ref()
            .expect("registered")
            .stored
            .platform
            .issuer,
        "http://127.0.0.1:8081/platform"
    );
}

#[tokio::test]
async fn a_second_identical_registration_of_the_same_client_goes_through_the_same_upsert_and_changes_nothing(
) {
    let config = config(&[]);
    let store = MemoryStore::new();
    let audit = MemoryAudit::default();
    let params = RegistrationParams::new(Some(MOODLE_CONFIG.into()), None).expect("params");
    for _ in 0..2 {
        let lms = platform(MOODLE_CONFIG, moodle_configuration(), |_| {
            ok_json(moodle_answer())
        });
        register_and_store(
            &config,
            &lms,
            &TOOL,
            &params,
            &Storage {
                store: &store,
                audit: &audit,
                request_id: "r".into(),
            },
            1_750_000_000,
        )
        .await
        .expect("registered");
    }
    let actions: Vec<String> = audit
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["action"].to_string())
        .collect();
    // The admin API's upsert: the same values again write nothing and audit nothing.
    assert_eq!(actions, ["\"platform.create\""]);
    assert_eq!(store.list_platforms().await.expect("list").len(), 1);
}

#[test]
fn parameters_are_checked_for_presence_and_size() {
    assert!(matches!(
        RegistrationParams::new(None, Some("t".into())),
        Err(DynRegError::ConfigurationUrlMissing)
    ));
    let long = format!("https://lms.example/{}", "a".repeat(2100));
    assert_eq!(
        RegistrationParams::new(Some(long), None)
            .map(|_| ())
            .map_err(|e| e.code()),
        Err("LTI_DYNREG_PARAM_INVALID")
    );
    assert_eq!(
        RegistrationParams::new(Some(MOODLE_CONFIG.into()), Some("t".repeat(5000)))
            .map(|_| ())
            .map_err(|e| e.code()),
        Err("LTI_DYNREG_PARAM_INVALID")
    );
    let blank =
        RegistrationParams::new(Some(MOODLE_CONFIG.into()), Some("  ".into())).expect("params");
    assert!(
        blank.registration_token.is_none(),
        "a blank token is no token"
    );
}
