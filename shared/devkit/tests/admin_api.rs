//! The admin API of a running dev server as an administrator uses it: every field
//! rule, upsert, update, patch, delete (and the launches refused after it),
//! deployments, pages, who may call, and the audit line each change writes.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Lms, LTI};
use serde_json::{json, Value};

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn registration(issuer: &str, client_id: &str) -> Value {
    json!({
        "issuer": issuer, "clientId": client_id, "name": "Moodle",
        "authLoginUrl": format!("{issuer}/mod/lti/auth.php"),
        "authTokenUrl": format!("{issuer}/mod/lti/token.php"),
        "keysetUrl": format!("{issuer}/mod/lti/certs.php"),
    })
}

fn fields(body: &Value) -> Vec<String> {
    body["error"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

use reqwest::Method as M;

/// One row per rule: the field, a value that breaks it, and a word of the sentence.
#[tokio::test]
async fn every_field_rule_of_a_registration_is_enforced_and_named() {
    let dev = Dev::start().await;
    let url = format!("{}/admin/platforms", dev.tool);
    let long_url = format!("https://lms.example.edu/{}", "a".repeat(2048));
    let table: Vec<(&str, Value, &str)> = vec![
        ("issuer", json!(""), "required"),
        (
            "issuer",
            json!(format!("https://{}.edu", "i".repeat(500))),
            "longer than 500",
        ),
        ("issuer", json!("http://lms.example.edu"), "https"),
        ("clientId", json!(""), "required"),
        ("clientId", json!("c".repeat(256)), "longer than 255"),
        ("name", json!(" "), "required"),
        ("name", json!("n".repeat(256)), "longer than 255"),
        ("authLoginUrl", json!("https://10.0.0.1/auth"), "non-public"),
        (
            "authTokenUrl",
            json!("https://u:p@lms.example.edu/token"),
            "user name or password",
        ),
        (
            "keysetUrl",
            json!("https://169.254.169.254/jwks"),
            "non-public",
        ),
        ("keysetUrl", json!(long_url), "longer than 2048"),
        ("agsEndpoint", json!("ftp://lms.example.edu/ags"), "https"),
        (
            "nrpsEndpoint",
            json!("https://[::ffff:192.168.0.1]/nrps"),
            "non-public",
        ),
        ("deploymentId", json!(""), "1 to 255"),
        ("deploymentId", json!("d".repeat(256)), "1 to 255"),
        (
            "landingUrl",
            json!("https://evil.example/steal"),
            "LTI_ALLOWED_APP_ORIGINS",
        ),
        (
            "userScope",
            json!(format!("https://x/{}", "s".repeat(2048))),
            "longer than 2048",
        ),
    ];
    for (field, value, words) in &table {
        let mut body = registration("https://lms.example.edu", "rules");
        body[*field] = value.clone();
        let (status, answer) = call(M::POST, &url, Some(ADMIN), Some(body)).await;
        assert_eq!(status, 400, "{field}={value}: {answer}");
        assert_eq!(answer["error"]["code"], "ADMIN_INVALID_PLATFORM");
        let named = answer["error"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["field"] == *field)
            .unwrap_or_else(|| panic!("{field} not listed: {answer}"));
        assert!(
            named["message"].as_str().is_some_and(|m| m.contains(words)),
            "{field}: {named}"
        );
    }
    // The direct profile needs an audience; wrong types are refused as JSON errors.
    let mut direct = registration("https://lms.example.edu", "rules");
    direct["launchProfile"] = json!("direct");
    let (status, answer) = call(M::POST, &url, Some(ADMIN), Some(direct)).await;
    assert_eq!(
        (status, fields(&answer)),
        (400, vec!["audience".to_string()])
    );
    let mut typed = registration("https://lms.example.edu", "rules");
    typed["acceptNewDeployments"] = json!("yes");
    let (status, answer) = call(M::POST, &url, Some(ADMIN), Some(typed)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("HTTP_INVALID_JSON"))
    );
    // Nothing was stored by any of them.
    let (_, page) = call(
        M::GET,
        &format!("{url}?issuer=https%3A%2F%2Flms.example.edu"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(page["platforms"], json!([]));
}

#[tokio::test]
async fn a_registration_is_upserted_replaced_patched_and_read_by_id() {
    let dev = Dev::start().await;
    let url = format!("{}/admin/platforms", dev.tool);
    let body = registration("https://moodle.example.edu", "abc");
    let (status, created) = call(M::POST, &url, Some(ADMIN), Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let one = format!("{url}/{id}");

    // Upsert on issuer + clientId keeps id and createdAt.
    dev.clock.advance(10);
    let mut renamed = body.clone();
    renamed["name"] = json!("Moodle (prod)");
    let (status, updated) = call(M::POST, &url, Some(ADMIN), Some(renamed)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (updated["id"].clone(), updated["createdAt"].clone()),
        (created["id"].clone(), created["createdAt"].clone())
    );
    assert!(updated["message"]
        .as_str()
        .is_some_and(|m| m.contains("60 seconds")));

    // PUT: every field, issuer and clientId may be left out but never changed.
    let mut replaced = body.clone();
    replaced["name"] = json!("Moodle 4.5");
    replaced["tokenAudience"] = json!("https://moodle.example.edu/token-aud");
    replaced.as_object_mut().expect("object").remove("issuer");
    let (status, put) = call(M::PUT, &one, Some(ADMIN), Some(replaced)).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["name"], "Moodle 4.5");
    assert_eq!(put["tokenAudience"], "https://moodle.example.edu/token-aud");
    assert_eq!(put["id"], id.as_str());
    let mut moved = body.clone();
    moved["clientId"] = json!("other");
    let (status, refused) = call(M::PUT, &one, Some(ADMIN), Some(moved)).await;
    assert_eq!(
        (status, fields(&refused)),
        (400, vec!["clientId".to_string()])
    );

    // PATCH: a merge patch; null removes an optional field, never a required one.
    let (status, patched) = call(
        M::PATCH,
        &one,
        Some(ADMIN),
        Some(json!({"acceptNewDeployments": true, "tokenAudience": null})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["acceptNewDeployments"], true);
    assert!(patched.get("tokenAudience").is_none(), "{patched}");
    assert_eq!(patched["name"], "Moodle 4.5", "untouched fields stay");
    let (status, refused) = call(
        M::PATCH,
        &one,
        Some(ADMIN),
        Some(json!({"name": null, "keysetUrl": "http://x.example/jwks"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(fields(&refused), vec!["name", "keysetUrl"]);
    let (status, refused) = call(
        M::PATCH,
        &one,
        Some(ADMIN),
        Some(json!({"userScope": "another"})),
    )
    .await;
    assert_eq!(
        (status, fields(&refused)),
        (400, vec!["userScope".to_string()])
    );

    let (status, shown) = call(M::GET, &one, Some(ADMIN), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["name"], "Moodle 4.5");
    assert_eq!(shown["createdAt"], created["createdAt"]);
    assert!(shown["userIdentity"]["userScope"].is_string());
    for missing in [
        format!("{url}/{}", uuid::Uuid::new_v4()),
        format!("{url}/not-a-uuid"),
    ] {
        let (status, answer) = call(M::GET, &missing, Some(ADMIN), None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (404, Some("ADMIN_PLATFORM_NOT_FOUND"))
        );
    }
}

#[tokio::test]
async fn deleting_a_registration_refuses_its_launches_at_once_and_says_when_others_follow() {
    let dev = Dev::start().await;
    let lms = Lms::start("to-delete").await;
    let created = lms.register(&dev.tool, ADMIN).await.json();
    let id = created["id"].as_str().expect("id").to_string();
    // A launch works, and one more login is under way when the admin deletes it.
    let claims = lms.claims(&dev.tool, "u-1", dev.now());
    assert!(lms
        .launch(&dev.tool, claims.clone())
        .await
        .app_token()
        .is_some());
    let pending = lms.login(&dev.tool).await;

    let (status, deleted) = call(
        M::DELETE,
        &format!("{}/admin/platforms/{id}", dev.tool),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["deploymentsRemoved"], 1);
    let message = deleted["message"].as_str().expect("message");
    assert!(
        message.contains("at once") && message.contains("60 seconds"),
        "{message}"
    );

    // The login started before: its launch is refused, the issuer is unknown now.
    let mut late = claims.clone();
    late["nonce"] = json!(pending.nonce);
    let token = common::lms::sign_with(&lms.key, &lms.kid(), &late);
    let refused = lms
        .post_launch(
            &dev.tool,
            &[("id_token", &token), ("state", &pending.state)],
            &pending.cookie_header(),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (401, "LTI_ISS_UNKNOWN")
    );
    // A new login is refused too.
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/lti/login", dev.tool))
        .header("accept", "application/json")
        .form(&[
            ("iss", lms.issuer.as_str()),
            ("login_hint", "hint"),
            ("target_link_uri", &format!("{}/lti/launch", dev.tool)),
            ("client_id", lms.client_id.as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 404);
    let (status, again) = call(
        M::DELETE,
        &format!("{}/admin/platforms/{id}", dev.tool),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (404, Some("ADMIN_PLATFORM_NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_wrong_deployment_can_be_removed_and_its_launches_are_refused() {
    let dev = Dev::start().await;
    let lms = Lms::start("deployments").await;
    let id = lms.register(&dev.tool, ADMIN).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let deployments = format!("{}/admin/platforms/{id}/deployments", dev.tool);
    let (status, added) = call(
        M::POST,
        &deployments,
        Some(ADMIN),
        Some(json!({"deploymentId": "wrong-42"})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let (status, _) = call(
        M::POST,
        &deployments,
        Some(ADMIN),
        Some(json!({"deploymentId": "wrong-42"})),
    )
    .await;
    assert_eq!(status, 200, "adding it again changes nothing");
    let (status, bad) = call(
        M::POST,
        &deployments,
        Some(ADMIN),
        Some(json!({"deploymentId": ""})),
    )
    .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("ADMIN_INVALID_DEPLOYMENT"))
    );
    let (_, listed) = call(M::GET, &deployments, Some(ADMIN), None).await;
    let ids: Vec<&str> = listed["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["deploymentId"].as_str())
        .collect();
    assert_eq!(ids, vec!["1", "wrong-42"]);

    let mut claims = lms.claims(&dev.tool, "u-1", dev.now());
    claims[format!("{LTI}deployment_id")] = json!("wrong-42");
    assert!(lms
        .launch(&dev.tool, claims.clone())
        .await
        .app_token()
        .is_some());

    let (status, removed) = call(
        M::DELETE,
        &format!("{deployments}/wrong-42"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    let refused = lms.launch(&dev.tool, claims).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (403, "LTI_DEPLOYMENT_UNKNOWN")
    );
    let (status, again) = call(
        M::DELETE,
        &format!("{deployments}/wrong-42"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (404, Some("ADMIN_DEPLOYMENT_NOT_FOUND"))
    );
    // The right one still launches; an id with a slash is addressed percent-encoded.
    assert!(lms
        .launch(&dev.tool, lms.claims(&dev.tool, "u-1", dev.now()))
        .await
        .app_token()
        .is_some());
    call(
        M::POST,
        &deployments,
        Some(ADMIN),
        Some(json!({"deploymentId": "a/b"})),
    )
    .await;
    let (status, _) = call(
        M::DELETE,
        &format!("{deployments}/a%2Fb"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn registrations_are_listed_in_pages_with_an_issuer_filter() {
    let dev = Dev::start().await;
    let url = format!("{}/admin/platforms", dev.tool);
    for client in ["a", "b", "c", "d", "e"] {
        let (status, _) = call(
            M::POST,
            &url,
            Some(ADMIN),
            Some(registration("https://canvas.example.edu", client)),
        )
        .await;
        assert_eq!(status, 201);
    }
    let mut seen = Vec::new();
    let mut next = format!("{url}?issuer=https%3A%2F%2Fcanvas.example.edu&limit=2");
    let mut pages = 0;
    loop {
        let (status, page) = call(M::GET, &next, Some(ADMIN), None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(
            page["platforms"]
                .as_array()
                .expect("list")
                .iter()
                .map(|p| p["clientId"].as_str().unwrap_or_default().to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                next =
                    format!("{url}?issuer=https%3A%2F%2Fcanvas.example.edu&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(
        (seen, pages),
        (
            vec!["a", "b", "c", "d", "e"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            3
        )
    );
    let (_, all) = call(M::GET, &url, Some(ADMIN), None).await;
    assert!(
        all["platforms"].as_array().expect("list").len() >= 7,
        "the demo platform's two too"
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=bogus", "cursor"),
    ] {
        let (status, answer) = call(M::GET, &format!("{url}?{query}"), Some(ADMIN), None).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(answer["error"]["code"], "ADMIN_INVALID_QUERY");
        assert_eq!(fields(&answer), vec![field.to_string()], "{query}");
    }
}

#[tokio::test]
async fn every_admin_route_needs_the_admin_token() {
    let dev = Dev::start().await;
    let id = uuid::Uuid::new_v4();
    let routes = [
        (M::GET, "/admin/platforms".to_string()),
        (M::POST, "/admin/platforms".to_string()),
        (M::GET, format!("/admin/platforms/{id}")),
        (M::PUT, format!("/admin/platforms/{id}")),
        (M::PATCH, format!("/admin/platforms/{id}")),
        (M::DELETE, format!("/admin/platforms/{id}")),
        (M::GET, format!("/admin/platforms/{id}/deployments")),
        (M::POST, format!("/admin/platforms/{id}/deployments")),
        (M::DELETE, format!("/admin/platforms/{id}/deployments/1")),
        (M::GET, format!("/admin/platforms/{id}/routes")),
        (M::POST, format!("/admin/platforms/{id}/routes")),
        (M::DELETE, format!("/admin/platforms/{id}/routes/{id}")),
        (M::GET, "/admin/service-keys".to_string()),
        (M::GET, "/lti/config".to_string()),
    ];
    for (method, path) in routes {
        for token in [
            None,
            Some("wrong-token-0123456789-0123456789-x"),
            Some(&ADMIN[1..]),
        ] {
            let (status, answer) = call(
                method.clone(),
                &format!("{}{path}", dev.tool),
                token,
                Some(json!({})),
            )
            .await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (401, Some("ADMIN_UNAUTHORIZED")),
                "{method} {path} with {token:?}"
            );
        }
    }
    // Not a route: 404 once authenticated; a route with another method: 400.
    let (status, _) = call(
        M::GET,
        &format!("{}/admin/platforms/{id}/nope", dev.tool),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, answer) = call(
        M::PUT,
        &format!("{}/admin/platforms", dev.tool),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (405, Some("HTTP_METHOD_NOT_ALLOWED"))
    );
    let allowed = reqwest::Client::new()
        .delete(format!("{}/admin/platforms/some-id/deployments", dev.tool))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answer");
    assert_eq!(allowed.status(), 405);
    assert_eq!(
        allowed.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST"),
        "a 405 names the methods the address takes"
    );
}

#[tokio::test]
async fn every_change_writes_one_audit_line_without_secrets() {
    let dev = Dev::start().await;
    let url = format!("{}/admin/platforms", dev.tool);
    let mut body = registration("https://audit.example.edu", "c1");
    body["deploymentId"] = json!("1");
    let (_, created) = call(M::POST, &url, Some(ADMIN), Some(body.clone())).await;
    let id = created["id"].as_str().expect("id").to_string();
    body["name"] = json!("Renamed");
    call(M::POST, &url, Some(ADMIN), Some(body)).await;
    call(
        M::POST,
        &format!("{url}/{id}/deployments"),
        Some(ADMIN),
        Some(json!({"deploymentId": "2"})),
    )
    .await;
    call(
        M::DELETE,
        &format!("{url}/{id}/deployments/2"),
        Some(ADMIN),
        None,
    )
    .await;
    let (_, rule) = call(
        M::POST,
        &format!("{url}/{id}/routes"),
        Some(ADMIN),
        Some(json!({"contextId": "sales", "claims": {"groupId": 7}})),
    )
    .await;
    let rule_id = rule["id"].as_str().expect("rule").to_string();
    call(
        M::DELETE,
        &format!("{url}/{id}/routes/{rule_id}"),
        Some(ADMIN),
        None,
    )
    .await;
    let (_, key) = call(
        M::POST,
        &format!("{}/admin/service-keys", dev.tool),
        Some(ADMIN),
        Some(json!({"name": "sync"})),
    )
    .await;
    let key_id = key["id"].as_str().expect("key id").to_string();
    call(
        M::DELETE,
        &format!("{}/admin/service-keys/{key_id}", dev.tool),
        Some(ADMIN),
        None,
    )
    .await;
    call(M::DELETE, &format!("{url}/{id}"), Some(ADMIN), None).await;
    // Reads and refusals change nothing and write nothing.
    call(M::GET, &url, Some(ADMIN), None).await;
    call(
        M::DELETE,
        &format!("{url}/{id}"),
        Some("wrong-token-0123456789-0123456789-x"),
        None,
    )
    .await;

    let lines = dev.server.audit.lines();
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "platform.create",
            "platform.update",
            "deployment.add",
            "deployment.remove",
            "route.add",
            "route.remove",
            "serviceKey.create",
            "serviceKey.revoke",
            "platform.delete",
        ]
    );
    let fingerprint = lti_core::registration::audit::fingerprint(ADMIN);
    for entry in &entries {
        assert_eq!(entry["log"], "audit");
        assert_eq!(
            entry["who"],
            json!({"kind": "token", "fingerprint": fingerprint})
        );
        assert!(entry["at"].as_i64().is_some_and(|at| at > 0));
        assert!(entry["requestId"]
            .as_str()
            .is_some_and(|r| r.starts_with("dev-")));
    }
    assert_eq!(entries[0]["after"], id.as_str());
    assert_eq!(entries[0]["before"], Value::Null);
    assert_eq!(entries[1]["changed"], json!(["name", "deployment 1"]));
    assert_eq!(entries[4]["after"], rule_id.as_str());
    assert_eq!(entries[8]["before"], id.as_str());
    assert_eq!(entries[8]["after"], Value::Null);
    let all = lines.join("\n");
    let secret = key["key"].as_str().expect("key");
    for never in [
        ADMIN,
        secret,
        secret.rsplit('_').next().expect("secret part"),
        &dev.server.service_key,
    ] {
        assert!(!all.contains(never), "an audit line holds a secret");
    }
}
