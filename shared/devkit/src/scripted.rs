//! The LTI Advantage side of a scripted LMS, over HTTP on 127.0.0.1, for the tests of
//! every crate that exercise the services through a running tool (dev server or
//! Lambda functions): a token endpoint that verifies the tool's client
//! assertion against the tool's JWKS (signature, `iss`/`sub`, `aud`, `exp`, `jti`
//! never seen before), a gradebook behind Moodle-shaped AGS URLs (line item URLs with
//! a query string), and a roster of 35 members served 10 per page with `Link` headers.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lti_core::signer::PublicJwk;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const SCOPE_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
pub const SCOPE_RESULT: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly";
pub const SCOPE_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
pub const SCOPE_NRPS: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";
/// Members of the roster.
pub const MEMBERS: usize = 35;
/// Members per roster page.
pub const PAGE: usize = 10;

#[derive(Default)]
struct Book {
    /// Line items by number.
    line_items: Vec<Value>,
    /// Scores by line item number.
    scores: HashMap<usize, Vec<Value>>,
    tokens: HashSet<String>,
    jtis: HashSet<String>,
    token_requests: usize,
    /// Every service request: (method, path and query, bearer).
    requests: Vec<(String, String, String)>,
    /// Answer the roster with this status instead.
    roster_status: Option<u16>,
}

/// The services of a scripted LMS.
pub struct LmsServices {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The JWKS URL of the tool whose client assertions the token endpoint accepts.
    pub tool_jwks: String,
    pub client_id: String,
    book: Arc<Mutex<Book>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LmsServices {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    book: Arc<Mutex<Book>>,
    url: String,
    tool_jwks: String,
    client_id: String,
}

impl LmsServices {
    /// Starts the services for `client_id`'s registration with the tool whose keys are
    /// published at `tool_jwks`.
    pub async fn start(tool_jwks: &str, client_id: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let book = Arc::new(Mutex::new(Book::default()));
        let ctx = Ctx {
            book: book.clone(),
            url: url.clone(),
            tool_jwks: tool_jwks.to_string(),
            client_id: client_id.to_string(),
        };
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .route(
                "/courses/c1/lineitems",
                axum::routing::get(list_line_items).post(create_line_item),
            )
            .route(
                "/courses/c1/lineitems/{n}/lineitem",
                axum::routing::get(get_line_item)
                    .put(put_line_item)
                    .delete(delete_line_item),
            )
            .route(
                "/courses/c1/lineitems/{n}/lineitem/scores",
                axum::routing::post(post_score),
            )
            .route(
                "/courses/c1/lineitems/{n}/lineitem/results",
                axum::routing::get(results),
            )
            .route("/courses/c1/memberships", axum::routing::get(roster))
            .with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            tool_jwks: tool_jwks.to_string(),
            client_id: client_id.to_string(),
            book,
            task,
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    pub fn lineitems_url(&self) -> String {
        format!("{}/courses/c1/lineitems", self.url)
    }

    /// The URL of line item `n` (Moodle-shaped: with a query string).
    pub fn line_item_url(&self, n: usize) -> String {
        format!("{}/courses/c1/lineitems/{n}/lineitem?type_id=1", self.url)
    }

    pub fn memberships_url(&self) -> String {
        format!("{}/courses/c1/memberships", self.url)
    }

    /// Adds a line item (for resource link `rl`), as the platform itself would; returns
    /// its URL.
    pub fn add_line_item(&self, label: &str, rl: Option<&str>) -> String {
        let mut book = self.book.lock().expect("lock");
        let n = book.line_items.len() + 1;
        let id = self.line_item_url(n);
        let mut item = json!({"id": id, "label": label, "scoreMaximum": 100});
        if let Some(rl) = rl {
            item["resourceLinkId"] = json!(rl);
        }
        book.line_items.push(item);
        id
    }

    /// The AGS and NRPS claims of a launch from course `c1`, resource link `rl`.
    pub fn claims(&self, lineitem: Option<&str>) -> Vec<(String, Value)> {
        let mut ags = json!({
            "scope": [SCOPE_LINEITEM, SCOPE_RESULT, SCOPE_SCORE],
            "lineitems": self.lineitems_url(),
        });
        if let Some(lineitem) = lineitem {
            ags["lineitem"] = json!(lineitem);
        }
        vec![
            (
                "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint".into(),
                ags,
            ),
            (
                "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice".into(),
                json!({"context_memberships_url": self.memberships_url(), "service_versions": ["2.0"]}),
            ),
        ]
    }

    /// Token requests the token endpoint answered.
    pub fn token_requests(&self) -> usize {
        self.book.lock().expect("lock").token_requests
    }

    /// Service requests (method, path?query), in order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.book
            .lock()
            .expect("lock")
            .requests
            .iter()
            .map(|(m, p, _)| (m.clone(), p.clone()))
            .collect()
    }

    /// The scores line item `n` received.
    pub fn scores(&self, n: usize) -> Vec<Value> {
        self.book
            .lock()
            .expect("lock")
            .scores
            .get(&n)
            .cloned()
            .unwrap_or_default()
    }

    /// The line items of the gradebook.
    pub fn line_items(&self) -> Vec<Value> {
        self.book.lock().expect("lock").line_items.clone()
    }

    /// Makes the roster answer `status`.
    pub fn fail_roster(&self, status: u16) {
        self.book.lock().expect("lock").roster_status = Some(status);
    }
}

fn error(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn media(media: &'static str, body: Value) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, media)],
        body.to_string(),
    )
        .into_response()
}

async fn token(State(ctx): State<Ctx>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    ctx.book.lock().expect("lock").token_requests += 1;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return error(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    }
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    // The tool's keys, fetched like a platform does.
    let jwks: Value = match reqwest::get(&ctx.tool_jwks).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let kid = jsonwebtoken::decode_header(&assertion)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default();
    let jwk: Option<PublicJwk> = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .and_then(|k| serde_json::from_value(k.clone()).ok());
    let Some(jwk) = jwk else {
        return error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    };
    let token_url = format!("{}/token", ctx.url);
    let claims = match lti_core::services::testing::check_assertion(&assertion, &jwk, &token_url) {
        Ok(claims) => claims,
        Err(why) => {
            return error(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "error_description": why}),
            )
        }
    };
    if claims["iss"] != ctx.client_id.as_str() || claims["sub"] != ctx.client_id.as_str() {
        return error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_string();
    let mut book = ctx.book.lock().expect("lock");
    if jti.is_empty() || !book.jtis.insert(jti) {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "jti replayed"}),
        );
    }
    let token = format!("token-{}", book.token_requests);
    book.tokens.insert(token.clone());
    let answer = json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 3600,
        "scope": form.get("scope").cloned().unwrap_or_default()
    });
    error(StatusCode::OK, answer)
}

/// Records the request and checks its bearer token; `Err` is the refusal.
fn authorized(
    ctx: &Ctx,
    headers: &HeaderMap,
    method: &str,
    path: String,
) -> Result<(), Box<Response>> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let mut book = ctx.book.lock().expect("lock");
    book.requests
        .push((method.to_string(), path, bearer.clone()));
    if book.tokens.contains(&bearer) {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token"}),
        )))
    }
}

async fn list_line_items(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "GET", format!("/lineitems?{query:?}")) {
        return *r;
    }
    let book = ctx.book.lock().expect("lock");
    let items: Vec<Value> = book
        .line_items
        .iter()
        .filter(|item| {
            query
                .get("resource_link_id")
                .is_none_or(|rl| item["resourceLinkId"] == rl.as_str())
        })
        .cloned()
        .collect();
    media(
        "application/vnd.ims.lis.v2.lineitemcontainer+json",
        json!(items),
    )
}

async fn create_line_item(State(ctx): State<Ctx>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "POST", "/lineitems".into()) {
        return *r;
    }
    let mut item: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut book = ctx.book.lock().expect("lock");
    let n = book.line_items.len() + 1;
    item["id"] = json!(format!(
        "{}/courses/c1/lineitems/{n}/lineitem?type_id=1",
        ctx.url
    ));
    book.line_items.push(item.clone());
    media("application/vnd.ims.lis.v2.lineitem+json", item)
}

fn line_item_of(book: &Book, n: usize) -> Option<Value> {
    book.line_items.get(n.wrapping_sub(1)).cloned()
}

async fn get_line_item(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(n): Path<usize>,
) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "GET", format!("/lineitems/{n}")) {
        return *r;
    }
    match line_item_of(&ctx.book.lock().expect("lock"), n) {
        Some(item) => media("application/vnd.ims.lis.v2.lineitem+json", item),
        None => error(StatusCode::NOT_FOUND, json!({"error": "no such line item"})),
    }
}

async fn put_line_item(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(n): Path<usize>,
    body: String,
) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "PUT", format!("/lineitems/{n}")) {
        return *r;
    }
    let item: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut book = ctx.book.lock().expect("lock");
    match book.line_items.get_mut(n.wrapping_sub(1)) {
        Some(slot) => {
            *slot = item.clone();
            media("application/vnd.ims.lis.v2.lineitem+json", item)
        }
        None => error(StatusCode::NOT_FOUND, json!({"error": "no such line item"})),
    }
}

async fn delete_line_item(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(n): Path<usize>,
) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "DELETE", format!("/lineitems/{n}")) {
        return *r;
    }
    let mut book = ctx.book.lock().expect("lock");
    match book.line_items.get_mut(n.wrapping_sub(1)) {
        Some(slot) => {
            *slot = json!({"deleted": true});
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, json!({"error": "no such line item"})),
    }
}

async fn post_score(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(n): Path<usize>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "POST", format!("/lineitems/{n}/scores")) {
        return *r;
    }
    if query.get("type_id").map(String::as_str) != Some("1")
        || headers.get("content-type").and_then(|v| v.to_str().ok())
            != Some("application/vnd.ims.lis.v1.score+json")
    {
        return error(StatusCode::BAD_REQUEST, json!({"error": "not a score"}));
    }
    let score: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    ctx.book
        .lock()
        .expect("lock")
        .scores
        .entry(n)
        .or_default()
        .push(score);
    StatusCode::NO_CONTENT.into_response()
}

async fn results(State(ctx): State<Ctx>, headers: HeaderMap, Path(n): Path<usize>) -> Response {
    if let Err(r) = authorized(&ctx, &headers, "GET", format!("/lineitems/{n}/results")) {
        return *r;
    }
    let book = ctx.book.lock().expect("lock");
    let results: Vec<Value> = book
        .scores
        .get(&n)
        .into_iter()
        .flatten()
        .map(|s| {
            json!({
                "id": format!("{}/r/{}", ctx.url, s["userId"].as_str().unwrap_or_default()),
                "scoreOf": format!("{}/courses/c1/lineitems/{n}/lineitem?type_id=1", ctx.url),
                "userId": s["userId"], "resultScore": s["scoreGiven"], "resultMaximum": s["scoreMaximum"]
            })
        })
        .collect();
    media(
        "application/vnd.ims.lis.v2.resultcontainer+json",
        json!(results),
    )
}

async fn roster(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    if let Err(r) = authorized(&ctx, &headers, "GET", format!("/memberships?page={page}")) {
        return *r;
    }
    if let Some(status) = ctx.book.lock().expect("lock").roster_status {
        return error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({"error": "the roster is down"}),
        );
    }
    let members: Vec<Value> = (page * PAGE..((page + 1) * PAGE).min(MEMBERS))
        .map(|i| {
            let role = if i == 0 { "Instructor" } else { "Learner" };
            json!({"user_id": format!("student-{i}"), "name": format!("Student {i}"),
                   "email": format!("student{i}@example.edu"), "status": "Active", "roles": [role]})
        })
        .collect();
    let mut response = media(
        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
        json!({"id": format!("{}/courses/c1/memberships", ctx.url),
               "context": {"id": "course-1", "title": "Course 1"}, "members": members}),
    );
    if (page + 1) * PAGE < MEMBERS {
        // lowercase header name, bare rel (as Moodle)
        response.headers_mut().insert(
            "link",
            format!(
                "<{}/courses/c1/memberships?page={}>; rel=next",
                ctx.url,
                page + 1
            )
            .parse()
            .expect("header"),
        );
    }
    response
}
