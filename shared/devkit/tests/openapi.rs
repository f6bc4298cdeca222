//! The OpenAPI 3.1 document of the app-facing API (`GET /lti/services/openapi.json`)
//! checked against the real answers of a running dev server: every route it lists is
//! served, and every answer of a full scenario — successes and errors — validates
//! against the schema the document gives for its path, method and status.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Lms, LTI};
use lti_dev::scripted::LmsServices;
use serde_json::{json, Value};

const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

struct Checker {
    doc: Value,
    tool: String,
    checked: Vec<String>,
}

impl Checker {
    /// The response schema of `template` `method` `status`, refs resolved against the
    /// document's components (a JSON Schema 2020-12 root).
    fn schema(&self, template: &str, method: &str, status: u16) -> Value {
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let mut response = operation["responses"][status.to_string()].clone();
        assert!(
            response.is_object(),
            "{method} {template} does not document status {status}"
        );
        if let Some(reference) = response["$ref"].as_str() {
            let name = reference.rsplit('/').next().expect("name");
            response = self.doc["components"]["responses"][name].clone();
        }
        let schema = response["content"]["application/json"]["schema"].clone();
        assert!(
            schema.is_object(),
            "{method} {template} {status} has no JSON schema"
        );
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        })
    }

    /// Calls the tool and checks the answer against the document.
    async fn call(
        &mut self,
        method: reqwest::Method,
        template: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("{}{path_and_query}", self.tool))
            .header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        let value: Value = response.json().await.expect("a JSON answer");
        let schema = self.schema(template, &method.as_str().to_lowercase(), status);
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path_and_query} {status} does not match the document: {errors:#?}\n{value:#}"
        );
        self.checked.push(format!("{method} {template} {status}"));
        (status, value)
    }
}

#[tokio::test]
async fn every_answer_of_the_services_matches_the_openapi_document() {
    let dev = Dev::start().await;
    let doc: Value = reqwest::get(format!("{}/lti/services/openapi.json", dev.tool))
        .await
        .expect("document")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut c = Checker {
        doc,
        tool: dev.tool.clone(),
        checked: vec![],
    };
    // The checker does check: an answer of the wrong shape is refused.
    let schema = c.schema("/lti/ags/lineitems", "get", 200);
    let validator = jsonschema::validator_for(&schema).expect("schema");
    assert!(!validator.is_valid(&json!({"lineItems": "not a list"})));
    assert!(!validator.is_valid(&json!({"lineItems": [{"scoreMaximum": "ten"}]})));
    assert!(validator.is_valid(&json!({"lineItems": [{"label": "x", "scoreMaximum": 10}]})));
    let problem = c.schema("/lti/nrps/members", "get", 404);
    let validator = jsonschema::validator_for(&problem).expect("schema");
    assert!(!validator.is_valid(&json!({"error": {"code": "x"}})));

    let lms = Lms::start("openapi-client").await;
    let services = LmsServices::start(
        &format!("{}/.well-known/jwks.json", dev.tool),
        "openapi-client",
    )
    .await;
    let mut registration = lms.registration();
    registration["authTokenUrl"] = json!(services.token_url());
    assert_eq!(
        lms.admin_post(&dev.tool, ADMIN, &registration).await.status,
        201
    );
    let lineitem = services.add_line_item("Activity 1", Some("rl-1"));
    let tool = dev.tool.clone();
    let now = dev.now();
    let launch = |role: &'static str, deep: bool| {
        let mut claims = lms.claims(&tool, "u-1", now);
        claims[format!("{LTI}roles")] = json!([role]);
        claims[format!("{LTI}context")] = json!({"id": "course-1"});
        for (name, value) in services.claims(Some(&lineitem)) {
            claims[name] = value;
        }
        if deep {
            claims
                .as_object_mut()
                .expect("object")
                .remove(&format!("{LTI}resource_link"));
            claims[format!("{LTI}message_type")] = json!("LtiDeepLinkingRequest");
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = json!({
                "deep_link_return_url": format!("{}/return", lms.url), "accept_types": ["link"],
                "accept_multiple": false
            });
        }
        let (lms, tool) = (&lms, tool.clone());
        async move { lms.launch(&tool, claims).await.app_token().expect("token") }
    };
    let teacher = launch(INSTRUCTOR, false).await;
    let learner = launch(LEARNER, false).await;
    let picker = launch(INSTRUCTOR, true).await;
    let admin = format!("Bearer {ADMIN}");
    let bearer = |t: &str| format!("Bearer {t}");
    let key = dev.server.service_key.clone();
    use reqwest::Method as M;

    // Service keys.
    let keys = "/admin/service-keys";
    let (_, made) = c
        .call(
            M::POST,
            keys,
            keys,
            &[("authorization", &admin)],
            Some(json!({"name": "docs"})),
        )
        .await;
    c.call(M::GET, keys, keys, &[("authorization", &admin)], None)
        .await;
    c.call(
        M::POST,
        keys,
        keys,
        &[("authorization", &admin)],
        Some(json!({})),
    )
    .await;
    c.call(M::GET, keys, keys, &[], None).await;
    let one = format!("{keys}/{}", made["id"].as_str().expect("id"));
    c.call(
        M::DELETE,
        "/admin/service-keys/{id}",
        &one,
        &[("authorization", &admin)],
        None,
    )
    .await;
    c.call(
        M::DELETE,
        "/admin/service-keys/{id}",
        &one,
        &[("authorization", &admin)],
        None,
    )
    .await;

    // Registrations, deployments and routing rules (admin).
    let platforms = "/admin/platforms";
    let auth = [("authorization", admin.as_str())];
    let moodle = json!({
        "issuer": "https://moodle.example.edu", "clientId": "docs", "name": "Moodle",
        "authLoginUrl": "https://moodle.example.edu/auth", "authTokenUrl": "https://moodle.example.edu/token",
        "keysetUrl": "https://moodle.example.edu/jwks", "deploymentId": "1"
    });
    let (_, saved) = c
        .call(M::POST, platforms, platforms, &auth, Some(moodle.clone()))
        .await;
    c.call(M::POST, platforms, platforms, &auth, Some(moodle))
        .await;
    c.call(
        M::POST,
        platforms,
        platforms,
        &auth,
        Some(json!({"issuer": "ftp://x"})),
    )
    .await;
    let (_, page) = c
        .call(M::GET, platforms, "/admin/platforms?limit=1", &auth, None)
        .await;
    assert!(page["nextCursor"].is_string());
    c.call(M::GET, platforms, "/admin/platforms?limit=0", &auth, None)
        .await;
    c.call(M::GET, platforms, platforms, &[], None).await;
    let one = format!("{platforms}/{}", saved["id"].as_str().expect("id"));
    let by_id = "/admin/platforms/{id}";
    c.call(M::GET, by_id, &one, &auth, None).await;
    c.call(
        M::GET,
        by_id,
        &format!("{platforms}/{}", uuid::Uuid::nil()),
        &auth,
        None,
    )
    .await;
    c.call(
        M::PATCH,
        by_id,
        &one,
        &auth,
        Some(json!({"name": "Moodle 4.5"})),
    )
    .await;
    c.call(M::PATCH, by_id, &one, &auth, Some(json!({"name": null})))
        .await;
    let mut whole = saved.clone();
    for generated in [
        "id",
        "createdAt",
        "updatedAt",
        "userIdentity",
        "userScope",
        "deploymentId",
    ] {
        whole.as_object_mut().expect("object").remove(generated);
    }
    c.call(M::PUT, by_id, &one, &auth, Some(whole)).await;
    let deployments = format!("{one}/deployments");
    let deps = "/admin/platforms/{id}/deployments";
    c.call(
        M::POST,
        deps,
        &deployments,
        &auth,
        Some(json!({"deploymentId": "2"})),
    )
    .await;
    c.call(
        M::POST,
        deps,
        &deployments,
        &auth,
        Some(json!({"deploymentId": "2"})),
    )
    .await;
    c.call(
        M::POST,
        deps,
        &deployments,
        &auth,
        Some(json!({"deploymentId": ""})),
    )
    .await;
    c.call(M::GET, deps, &deployments, &auth, None).await;
    let dep = "/admin/platforms/{id}/deployments/{deploymentId}";
    c.call(M::DELETE, dep, &format!("{deployments}/2"), &auth, None)
        .await;
    c.call(M::DELETE, dep, &format!("{deployments}/2"), &auth, None)
        .await;
    let routes = format!("{one}/routes");
    let rts = "/admin/platforms/{id}/routes";
    let (_, rule) = c
        .call(
            M::POST,
            rts,
            &routes,
            &auth,
            Some(json!({"contextId": "sales", "claims": {"groupId": 7}})),
        )
        .await;
    c.call(
        M::POST,
        rts,
        &routes,
        &auth,
        Some(json!({"contextId": "sales", "claims": {"groupId": 8}})),
    )
    .await;
    c.call(
        M::POST,
        rts,
        &routes,
        &auth,
        Some(json!({"landingUrl": "https://evil.example/"})),
    )
    .await;
    c.call(M::GET, rts, &routes, &auth, None).await;
    let rt = "/admin/platforms/{id}/routes/{routeId}";
    let rule_path = format!("{routes}/{}", rule["id"].as_str().expect("id"));
    c.call(M::DELETE, rt, &rule_path, &auth, None).await;
    c.call(M::DELETE, rt, &rule_path, &auth, None).await;
    c.call(M::GET, "/lti/config", "/lti/config", &auth, None)
        .await;
    c.call(M::GET, "/lti/config", "/lti/config", &[], None)
        .await;
    c.call(
        M::GET,
        "/lti/config/canvas.json",
        "/lti/config/canvas.json",
        &[],
        None,
    )
    .await;
    c.call(M::DELETE, by_id, &one, &auth, None).await;
    c.call(M::DELETE, by_id, &one, &auth, None).await;

    let staff = [
        ("x-api-key", key.as_str()),
        ("authorization", &bearer(&teacher)),
    ];
    let pupil = [
        ("x-api-key", key.as_str()),
        ("authorization", &bearer(&learner)),
    ];

    // AGS.
    let items = "/lti/ags/lineitems";
    let (_, created) = c
        .call(
            M::POST,
            items,
            items,
            &staff,
            Some(json!({"label": "Quiz", "scoreMaximum": 10})),
        )
        .await;
    c.call(
        M::POST,
        items,
        items,
        &staff,
        Some(json!({"label": "", "scoreMaximum": 0})),
    )
    .await;
    c.call(
        M::POST,
        items,
        items,
        &pupil,
        Some(json!({"label": "x", "scoreMaximum": 1})),
    )
    .await;
    c.call(M::GET, items, items, &staff, None).await;
    c.call(
        M::GET,
        items,
        items,
        &[("authorization", &bearer(&teacher))],
        None,
    )
    .await;
    let quiz = created["lineItem"]["id"].as_str().expect("id").to_string();
    let one = format!(
        "/lti/ags/lineitem?url={}",
        &serde_urlencoded::to_string([("u", quiz.as_str())]).expect("q")[2..]
    );
    c.call(M::GET, "/lti/ags/lineitem", &one, &staff, None)
        .await;
    c.call(
        M::PUT,
        "/lti/ags/lineitem",
        &one,
        &staff,
        Some(json!({"label": "Quiz 1", "scoreMaximum": 20})),
    )
    .await;
    let scores = "/lti/ags/scores";
    c.call(
        M::POST,
        scores,
        scores,
        &pupil,
        Some(json!({"scoreGiven": 5, "scoreMaximum": 10})),
    )
    .await;
    c.call(
        M::POST,
        scores,
        scores,
        &pupil,
        Some(json!({"userId": "someone-else", "scoreGiven": 5, "scoreMaximum": 10})),
    )
    .await;
    c.call(
        M::POST,
        scores,
        scores,
        &staff,
        Some(json!({"userId": "u-2", "scoreGiven": 7, "scoreMaximum": 20, "lineItemUrl": quiz})),
    )
    .await;
    let results = format!(
        "/lti/ags/results?lineItemUrl={}",
        &serde_urlencoded::to_string([("u", quiz.as_str())]).expect("q")[2..]
    );
    c.call(M::GET, "/lti/ags/results", &results, &staff, None)
        .await;
    c.call(M::DELETE, "/lti/ags/lineitem", &one, &staff, None)
        .await;

    // NRPS, for a launch and for a backend job.
    c.call(
        M::GET,
        "/lti/nrps/members",
        "/lti/nrps/members",
        &staff,
        None,
    )
    .await;
    c.call(
        M::GET,
        "/lti/nrps/members",
        "/lti/nrps/members",
        &pupil,
        None,
    )
    .await;
    let unknown = format!(
        "/lti/nrps/members?platformId={}&contextId=nowhere",
        uuid::Uuid::nil()
    );
    c.call(
        M::GET,
        "/lti/nrps/members",
        &unknown,
        &[("x-api-key", key.as_str())],
        None,
    )
    .await;
    services.fail_roster(500);
    c.call(
        M::GET,
        "/lti/nrps/members",
        "/lti/nrps/members",
        &staff,
        None,
    )
    .await;
    services.fail_roster(429);
    c.call(
        M::GET,
        "/lti/nrps/members",
        "/lti/nrps/members",
        &staff,
        None,
    )
    .await;

    // Deep linking.
    let dl = "/lti/deep-link";
    let chooser = [
        ("x-api-key", key.as_str()),
        ("authorization", &bearer(&picker)),
    ];
    c.call(
        M::POST,
        dl,
        dl,
        &chooser,
        Some(json!({"contentItems": [{"type": "html", "html": "<p>"}]})),
    )
    .await;
    c.call(
        M::POST,
        dl,
        dl,
        &chooser,
        Some(json!({"contentItems": [{"type": "link", "url": "https://example.com"}]})),
    )
    .await;
    c.call(M::POST, dl, dl, &chooser, Some(json!({"contentItems": []})))
        .await;
    c.call(M::POST, dl, dl, &staff, Some(json!({"contentItems": []})))
        .await;

    // Every documented path answers (no 404 for an unknown route), and the scenario
    // covered successes and each error family.
    for path in c.doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect::<Vec<_>>()
    {
        let concrete = path.replace("{id}", "some-id");
        let status = reqwest::Client::new()
            .get(format!("{}{concrete}", dev.tool))
            .send()
            .await
            .expect("call")
            .status()
            .as_u16();
        let body_is_route = status != 404 || path.contains("{id}") || path == "/lti/ags/lineitem"; // 404 there is a documented missing course
        assert!(
            body_is_route,
            "{path} is documented but not served ({status})"
        );
    }
    for expected in [
        "201", "200", "400", "401", "403", "404", "409", "502", "503",
    ] {
        assert!(
            c.checked.iter().any(|line| line.ends_with(expected)),
            "no answer with status {expected} was checked: {:#?}",
            c.checked
        );
    }
    println!("{} answers checked against the document", c.checked.len());
    dev.server.stop().await;
}

#[test]
fn the_document_in_the_repository_is_the_one_served() {
    let served: Value =
        serde_json::from_str(lti_http::handlers::OPENAPI_DOCUMENT).expect("valid JSON");
    let file = std::fs::read_to_string(format!(
        "{}/../http/src/handlers/services/openapi.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("file");
    assert_eq!(served, serde_json::from_str::<Value>(&file).expect("json"));
    // Every operation documents its errors, and every $ref resolves.
    let text = served.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().expect("ref");
        let pointer = target.trim_start_matches('#');
        assert!(
            served.pointer(pointer).is_some(),
            "{target} does not resolve"
        );
    }
}
