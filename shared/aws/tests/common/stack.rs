//! The four functions built as the binaries build them, on moto, with a platform of
//! their own: what the moto test files that launch and call services share.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_aws::calls::CallCounter;
use lti_aws::dynamo::DynamoStore;
use lti_aws::functions::{self, Clients, Function};
use lti_core::clock::{Clock, SystemClock};
use lti_core::signer::LocalRsaSigner;
use lti_http::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

pub const TOOL: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
pub const ADMIN: &str = "local-admin-token-0123456789abcdef0123456789abcdef";
pub const ISS: &str = "https://blackboard.example";

/// The settings the functions get from template.yaml, for `table` and `key`, plus
/// `extra` (the platforms of the tests run on 127.0.0.1).
pub fn function_vars(table: &str, key: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("LTI_BASE_URL", TOOL),
        ("LTI_APP_LANDING_URL", "https://app.example/landing"),
        ("LTI_TABLE_NAME", table),
        ("LTI_KMS_KEY_ID", key),
        ("LTI_ADMIN_TOKEN", ADMIN),
        ("LTI_INSECURE_ALLOW_LOOPBACK_URLS", "true"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `vars` as the functions read their configuration.
pub fn lookup(vars: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// A platform's login initiation (`GET /lti/login`) for issuer [`ISS`], naming
/// `client_id` when given.
pub fn login_request(client_id: Option<&str>) -> HttpRequest {
    let mut params = vec![
        ("iss", ISS.to_string()),
        ("login_hint", "h".to_string()),
        ("target_link_uri", format!("{TOOL}/lti/launch")),
    ];
    if let Some(client_id) = client_id {
        params.push(("client_id", client_id.to_string()));
    }
    let query = serde_urlencoded::to_string(params).expect("query");
    request("GET", &format!("/lti/login?{query}"), "", String::new())
}

pub struct Env {
    pub clients: Clients,
    pub counter: CallCounter,
    pub store: DynamoStore,
    pub vars: Vec<(String, String)>,
}

pub async fn env() -> Env {
    let counter = CallCounter::default();
    let clients = super::moto(Some(counter.clone())).await;
    let table = super::fresh_table(&clients).await;
    let (key, _) = super::fresh_key(&clients).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let vars = function_vars(&table, &key, &[]);
    Env {
        clients,
        counter,
        store,
        vars,
    }
}

impl Env {
    pub fn var(&self) -> impl Fn(&str) -> Option<String> + '_ {
        lookup(&self.vars)
    }
}

pub fn ready<H>(f: Function<H>) -> H {
    match f {
        Function::Ready(h) => h,
        Function::NotConfigured(e) => panic!("{e}"),
    }
}

pub fn request(method: &str, uri: &str, content_type: &str, body: String) -> HttpRequest {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(bytes::Bytes::from(body))
        .expect("request")
}

pub fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(response.body()).unwrap_or(Value::Null)
}

/// A platform of issuer [`ISS`] with its own key and JWKS endpoint.
pub struct Lms {
    pub client_id: String,
    pub key: LocalRsaSigner,
    pub jwks_url: String,
}

impl Lms {
    pub async fn start(client_id: &str) -> Self {
        let key = LocalRsaSigner::generate().expect("key");
        let jwks_url = super::serve_jwks(json!({"keys": [key.public_jwk()]})).await;
        Self {
            client_id: client_id.into(),
            key,
            jwks_url,
        }
    }

    pub fn registration(&self) -> Value {
        json!({
            "issuer": ISS, "clientId": self.client_id, "name": "Blackboard",
            "authLoginUrl": format!("{ISS}/auth"), "authTokenUrl": format!("{ISS}/token"),
            "keysetUrl": self.jwks_url, "deploymentId": "inst-1"
        })
    }

    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key.public_jwk().kid});
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", part(&header), part(claims));
        let signature = self.key.sign_now(input.as_bytes()).expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A login initiation answered by `login`: (state, nonce, cookie header).
    pub async fn login_with(
        &self,
        login: &lti_http::handlers::LoginHandler,
    ) -> (String, String, String) {
        let response = login.handle(login_request(Some(&self.client_id))).await;
        assert_eq!(response.status(), 302);
        let location =
            url::Url::parse(response.headers()["location"].to_str().expect("ascii")).expect("url");
        let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_string)
            .collect();
        (q["state"].clone(), q["nonce"].clone(), cookies.join("; "))
    }

    /// The signed id_token of a resource-link launch of `sub` answering `nonce`, with
    /// its claims changed by `edit`.
    pub fn id_token(&self, sub: &str, nonce: &str, edit: impl FnOnce(&mut Value)) -> String {
        let now = SystemClock.now();
        let lti = "https://purl.imsglobal.org/spec/lti/claim/";
        let mut claims = json!({
            "iss": ISS, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 300,
            "nonce": nonce,
            format!("{lti}message_type"): "LtiResourceLinkRequest",
            format!("{lti}version"): "1.3.0",
            format!("{lti}deployment_id"): "inst-1",
            format!("{lti}target_link_uri"): format!("{TOOL}/lti/launch"),
            format!("{lti}resource_link"): {"id": "rl-1"},
            format!("{lti}roles"): [],
        });
        edit(&mut claims);
        self.sign(&claims)
    }

    /// Posts `token` and `state` (with `cookie`) to `launch`.
    pub async fn post_launch_with(
        &self,
        launch: &lti_http::handlers::LaunchHandler,
        token: &str,
        state: &str,
        cookie: &str,
    ) -> HttpResponse {
        let mut post = request(
            "POST",
            "/lti/launch",
            "application/x-www-form-urlencoded",
            serde_urlencoded::to_string([("id_token", token), ("state", state)]).expect("form"),
        );
        post.headers_mut().insert(
            "cookie",
            http::HeaderValue::from_str(cookie).expect("cookie"),
        );
        launch.handle(post).await
    }

    /// Login then launch through the login and launch functions, with the claims of a
    /// resource-link launch of `sub` changed by `edit`; returns the app token.
    pub async fn launch(&self, env: &Env, sub: &str, edit: impl FnOnce(&mut Value)) -> String {
        let var = env.var();
        let login = ready(functions::login(&env.clients, &var));
        let launch = ready(functions::launch(&env.clients, &var));
        let (state, nonce, cookie) = self.login_with(&login).await;
        let token = self.id_token(sub, &nonce, edit);
        let response = self
            .post_launch_with(&launch, &token, &state, &cookie)
            .await;
        assert_eq!(
            response.status(),
            200,
            "{}",
            String::from_utf8_lossy(response.body())
        );
        let page = String::from_utf8_lossy(response.body()).to_string();
        let start = page
            .find("name=\"app_token\" value=\"")
            .expect("token field")
            + 24;
        page[start..start + page[start..].find('"').expect("end")].to_string()
    }

    /// A launch of `sub` with `email`; returns the app user id (the app token's `sub`).
    pub async fn launch_user(&self, env: &Env, sub: &str, email: &str) -> String {
        let token = self.launch(env, sub, |c| c["email"] = json!(email)).await;
        let claims: Value =
            lti_core::jwt::decode_part(token.split('.').nth(1).expect("payload")).expect("claims");
        claims["sub"].as_str().expect("sub").to_string()
    }
}
