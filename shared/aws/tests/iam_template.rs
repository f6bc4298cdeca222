//! IAM proven, not assumed: each function's AWS calls made with credentials holding
//! exactly the policy `template.yaml` gives that function, on a moto server enforcing
//! IAM (tests/moto_server.py with `LTI_MOTO_IAM=1`: table, index and key ARNs as
//! resources, transactions authorized per item, every decision recorded).
//!
//! The policies are extracted from the template at run time by tests/iam_users.py,
//! which also makes one moto IAM user per function. Every AWS-using path of the four
//! functions, built by the same code as the binaries, runs with its function's
//! credentials and asserts what the user sees; a denied call fails the test naming the
//! function, action and resource. Afterwards the template's grants no flow used are
//! printed ("unneeded: …"). Needs `LTI_MOTO_IAM_URL` (that server) and
//! `LTI_MOTO_PYTHON` (a Python with moto's venv): tests/lib.sh `start_moto --iam`.

mod common;

use common::stack::{json_of, ready, request, Lms, ISS, TOOL};
use lti_aws::functions::{self, Clients};
use lti_dev::scripted::{LmsServices, MEMBERS};
use lti_http::handlers::ServicesHandler;
use lti_http::HttpResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const FUNCTIONS: [&str; 4] = [
    "LoginFunction",
    "LaunchFunction",
    "JwksFunction",
    "ServicesFunction",
];
const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
/// The action taken away from the launch function's policy for the negative check.
const TAKEN_AWAY: &str = "dynamodb:UpdateItem";

fn endpoint() -> String {
    std::env::var("LTI_MOTO_IAM_URL").expect(
        "LTI_MOTO_IAM_URL must point at a moto server in IAM mode (tests/lib.sh start_moto --iam)",
    )
}

/// Clients for the IAM moto server, signing with the given access key.
async fn clients_for(key_id: &str, secret: &str) -> Clients {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new(key_id, secret, None, None, "iam-template");
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(credentials)
        .load()
        .await;
    Clients::from_shared(&shared, None)
}

/// A user made by tests/iam_users.py: its ARN, the policy it holds, its clients.
struct Identity {
    arn: String,
    policy: Value,
    clients: Clients,
}

struct Setup {
    table_arn: String,
    key_arn: String,
    identities: BTreeMap<String, Identity>,
    vars: Vec<(String, String)>,
}

impl Setup {
    fn var(&self) -> impl Fn(&str) -> Option<String> + '_ {
        common::stack::lookup(&self.vars)
    }

    fn clients(&self, function: &str) -> &Clients {
        &self.identities[function].clients
    }

    /// Recorded decisions on calls made by this test's users.
    async fn decisions(&self) -> Vec<Value> {
        let url = format!("{}/_lti/iam-decisions", endpoint());
        let all: Vec<Value> = reqwest::get(&url)
            .await
            .expect("the IAM moto server answers its decision record")
            .json()
            .await
            .expect("a JSON array");
        all.into_iter()
            .filter(|d| {
                self.identities
                    .values()
                    .any(|i| d["principal"] == i.arn.as_str())
            })
            .collect()
    }

    /// "<Function>: <action> on <resource>" for every denied call of `functions`.
    async fn denials(&self, functions: &[&str]) -> Vec<String> {
        let decisions = self.decisions().await;
        let mut out = Vec::new();
        for d in decisions.iter().filter(|d| d["allowed"] == false) {
            for name in functions {
                if d["principal"] == self.identities[*name].arn.as_str() {
                    out.push(format!(
                        "{name}: {} on {}",
                        d["action"].as_str().unwrap_or(""),
                        self.short(d["resource"].as_str().unwrap_or(""))
                    ));
                }
            }
        }
        out.dedup();
        out
    }

    /// `arn` as the report names it: table, index <name>, key, or the ARN.
    fn short(&self, arn: &str) -> String {
        if arn == self.table_arn {
            "table".into()
        } else if let Some(index) = arn
            .strip_prefix(self.table_arn.as_str())
            .and_then(|rest| rest.strip_prefix("/index/"))
        {
            format!("index {index}")
        } else if arn == self.key_arn {
            "key".into()
        } else {
            arn.into()
        }
    }

    /// "unneeded: <function> <action> on <resource>" for each Allow grant of `policy`
    /// that none of the allowed `calls` used.
    fn unneeded(&self, function: &str, policy: &Value, calls: &[&Value]) -> Vec<String> {
        grants(policy)
            .into_iter()
            .filter(|(action, resource)| {
                !calls.iter().any(|d| {
                    matches(action, d["action"].as_str().unwrap_or(""))
                        && matches(resource, d["resource"].as_str().unwrap_or(""))
                })
            })
            .map(|(action, resource)| {
                format!("unneeded: {function} {action} on {}", self.short(&resource))
            })
            .collect()
    }

    /// Asserts `response` has `status`; otherwise fails naming any call the template
    /// policies denied.
    async fn expect(&self, what: &str, response: &HttpResponse, status: u16) {
        if response.status().as_u16() != status {
            panic!(
                "{what}: status {} (expected {status}): {}; denied by the template's policies: {:?}",
                response.status(),
                String::from_utf8_lossy(response.body()),
                self.denials(&FUNCTIONS).await
            );
        }
    }
}

/// Provisions a table and key as the moto account's root, then one user per function
/// (and the launch function minus [`TAKEN_AWAY`]) from template.yaml.
async fn setup() -> Setup {
    let admin = clients_for("test", "test").await;
    let table = common::fresh_table(&admin).await;
    let (key, _) = common::fresh_key(&admin).await;
    let table_arn = admin
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe table")
        .table
        .and_then(|t| t.table_arn)
        .expect("table ARN");
    let key_arn = admin
        .kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .expect("describe key")
        .key_metadata
        .and_then(|k| k.arn)
        .expect("key ARN");

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let python = std::env::var("LTI_MOTO_PYTHON")
        .expect("LTI_MOTO_PYTHON must name a Python with boto3 and cfn-lint (moto's venv)");
    let output = std::process::Command::new(python)
        .arg(format!("{root}/tests/iam_users.py"))
        .args(["--endpoint", &endpoint()])
        .args(["--template", &format!("{root}/template.yaml")])
        .args(["--table-arn", &table_arn, "--key-arn", &key_arn])
        .args(["--prefix", &format!("t{}", common::uuid_like())])
        .args(["--without", &format!("LaunchFunction={TAKEN_AWAY}")])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run tests/iam_users.py");
    assert!(
        output.status.success(),
        "tests/iam_users.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let users: BTreeMap<String, Value> =
        serde_json::from_slice(&output.stdout).expect("iam_users.py prints JSON");
    for name in FUNCTIONS {
        assert!(
            users.contains_key(name),
            "template.yaml has no {name}: {:?}",
            users.keys()
        );
    }
    let mut identities = BTreeMap::new();
    for (name, user) in users {
        let clients = clients_for(
            user["accessKeyId"].as_str().expect("key id"),
            user["secretAccessKey"].as_str().expect("secret"),
        )
        .await;
        identities.insert(
            name,
            Identity {
                arn: user["userArn"].as_str().expect("arn").to_string(),
                policy: user["policy"].clone(),
                clients,
            },
        );
    }
    // The key ARN, as template.yaml passes it.
    let vars = common::stack::function_vars(
        &table,
        &key_arn,
        &[("LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS", "true")],
    );
    Setup {
        table_arn,
        key_arn,
        identities,
        vars,
    }
}

/// An admin or services call with JSON in and out.
async fn call(
    services: &ServicesHandler,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> HttpResponse {
    let mut req = request(
        method,
        path,
        "application/json",
        body.map(|b| b.to_string()).unwrap_or_default(),
    );
    for (name, value) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    services.handle(req).await
}

fn app_token_of(response: &HttpResponse) -> String {
    let page = String::from_utf8_lossy(response.body()).to_string();
    let start = page.find("name=\"app_token\" value=\"").expect("hand-off") + 24;
    page[start..start + page[start..].find('"').expect("end")].to_string()
}

fn launch_id_of(app_token: &str) -> String {
    lti_core::jwt::decode_part::<Value>(app_token.split('.').nth(1).expect("payload"))
        .expect("claims")["jti"]
        .as_str()
        .expect("jti")
        .to_string()
}

/// The devkit's demo platform served on 127.0.0.1.
async fn serve_demo_platform() -> std::sync::Arc<lti_dev::platform::DemoPlatform> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let platform = std::sync::Arc::new(lti_dev::platform::DemoPlatform::new(
        &base,
        lti_core::signer::LocalRsaSigner::generate().expect("key"),
        std::sync::Arc::new(lti_core::clock::SystemClock),
    ));
    let served = platform.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let platform = served.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let response = platform
                .handle(http::Request::from_parts(parts, bytes))
                .await;
            let (parts, body) = response.into_parts();
            axum::response::Response::from_parts(parts, axum::body::Body::from(body))
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    platform
}

/// The template's Allow grants of `policy` as (action, resource) pairs.
fn grants(policy: &Value) -> Vec<(String, String)> {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => vec![],
        }
    };
    let mut out = Vec::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        if statement["Effect"] != "Allow" {
            continue;
        }
        for action in list(&statement["Action"]) {
            for resource in list(&statement["Resource"]) {
                out.push((action.clone(), resource));
            }
        }
    }
    out
}

/// IAM's wildcard match (`*` any run, `?` one character), case-sensitive.
fn matches(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[tokio::test]
#[ignore = "needs a moto server in IAM mode: tests/run.sh starts one (start_moto --iam)"]
async fn template_policy_every_function_works_with_exactly_its_own() {
    let setup = setup().await;
    let var = setup.var();
    let lms = Lms::start("iam-client").await;

    // services, admin: a registration, its deployments and routing rules, service keys.
    let services = ready(functions::services(setup.clients("ServicesFunction"), &var));
    let mut registration = lms.registration();
    registration["acceptNewDeployments"] = json!(true);
    let saved = call(
        &services,
        "POST",
        "/admin/platforms",
        &[],
        Some(registration.clone()),
    )
    .await;
    setup.expect("register a platform", &saved, 201).await;
    let platform_id = json_of(&saved)["id"].as_str().expect("id").to_string();
    let page = call(&services, "GET", "/admin/platforms", &[], None).await;
    setup.expect("list platforms", &page, 200).await;
    assert!(json_of(&page)["platforms"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["id"] == platform_id.as_str())));
    let one = format!("/admin/platforms/{platform_id}");
    let got = call(&services, "GET", &one, &[], None).await;
    setup.expect("read a platform", &got, 200).await;
    let mut replaced = lms.registration();
    replaced["acceptNewDeployments"] = json!(true);
    replaced["name"] = json!("Blackboard (replaced)");
    let put = call(&services, "PUT", &one, &[], Some(replaced)).await;
    setup.expect("replace a platform", &put, 200).await;
    let patched = call(
        &services,
        "PATCH",
        &one,
        &[],
        Some(json!({"name": "Blackboard (renamed)"})),
    )
    .await;
    setup.expect("rename a platform", &patched, 200).await;
    assert_eq!(
        json_of(&patched)["name"],
        "Blackboard (renamed)",
        "{}",
        json_of(&patched)
    );
    let deployments = format!("{one}/deployments");
    let added = call(
        &services,
        "POST",
        &deployments,
        &[],
        Some(json!({"deploymentId": "inst-9"})),
    )
    .await;
    setup.expect("add a deployment", &added, 201).await;
    let listed = call(&services, "GET", &deployments, &[], None).await;
    setup.expect("list deployments", &listed, 200).await;
    assert_eq!(
        json_of(&listed)["deployments"].as_array().map(Vec::len),
        Some(2),
        "{}",
        json_of(&listed)
    );
    let removed = call(
        &services,
        "DELETE",
        &format!("{deployments}/inst-9"),
        &[],
        None,
    )
    .await;
    setup.expect("remove a deployment", &removed, 200).await;
    let routes = format!("{one}/routes");
    let rule = call(
        &services,
        "POST",
        &routes,
        &[],
        Some(json!({"contextId": "course-9", "landingUrl": "https://app.example/course-9"})),
    )
    .await;
    setup.expect("add a routing rule", &rule, 201).await;
    let rule_id = json_of(&rule)["id"].as_str().expect("id").to_string();
    let listed = call(&services, "GET", &routes, &[], None).await;
    setup.expect("list routing rules", &listed, 200).await;
    let removed = call(
        &services,
        "DELETE",
        &format!("{routes}/{rule_id}"),
        &[],
        None,
    )
    .await;
    setup.expect("remove a routing rule", &removed, 200).await;
    let created = call(
        &services,
        "POST",
        "/admin/service-keys",
        &[],
        Some(json!({"name": "app backend"})),
    )
    .await;
    setup.expect("create a service key", &created, 201).await;
    let key = json_of(&created)["key"].as_str().expect("key").to_string();
    let spare = call(
        &services,
        "POST",
        "/admin/service-keys",
        &[],
        Some(json!({"name": "spare"})),
    )
    .await;
    setup
        .expect("create a second service key", &spare, 201)
        .await;
    let spare_id = json_of(&spare)["id"].as_str().expect("id").to_string();
    let keys = call(&services, "GET", "/admin/service-keys", &[], None).await;
    setup.expect("list service keys", &keys, 200).await;
    let revoked = call(
        &services,
        "DELETE",
        &format!("/admin/service-keys/{spare_id}"),
        &[],
        None,
    )
    .await;
    setup.expect("revoke a service key", &revoked, 200).await;

    // login, cold and warm, with a client_id (GetItem) and without (the gsi1 index).
    let login = ready(functions::login(setup.clients("LoginFunction"), &var));
    let launch = ready(functions::launch(setup.clients("LaunchFunction"), &var));
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let cold_without_client = ready(functions::login(setup.clients("LoginFunction"), &var));
    let response = cold_without_client
        .handle(common::stack::login_request(None))
        .await;
    setup
        .expect("login without client_id", &response, 302)
        .await;

    // launch, cold on a table without the tool key's public half (BatchGetItem,
    // GetPublicKey, the transaction, Sign), then warm.
    let response = lms
        .post_launch_with(
            &launch,
            &lms.id_token("student-1", &nonce, |_| {}),
            &state,
            &cookie,
        )
        .await;
    setup.expect("launch (cold)", &response, 200).await;

    // jwks, cold (after the first launch, which read the key from KMS itself): the key's public half from KMS, kept in the table (TOOLKEY item).
    let jwks = ready(functions::jwks(setup.clients("JwksFunction"), &var));
    let response = jwks
        .handle(request("GET", "/.well-known/jwks.json", "", String::new()))
        .await;
    setup.expect("jwks (cold)", &response, 200).await;
    let tool_keys = json_of(&response);
    assert_eq!(tool_keys["keys"].as_array().map(Vec::len), Some(1));
    let lms_services = LmsServices::start(&common::serve_jwks(tool_keys).await, "iam-client").await;
    let lineitem = lms_services.add_line_item("Activity 1", Some("rl-1"));

    registration["authTokenUrl"] = json!(lms_services.token_url());
    let again = call(
        &services,
        "POST",
        "/admin/platforms",
        &[],
        Some(registration),
    )
    .await;
    setup
        .expect("register the platform again (update)", &again, 200)
        .await;

    let (state, nonce, cookie) = lms.login_with(&login).await;
    let response = lms
        .post_launch_with(
            &launch,
            &lms.id_token("student-1", &nonce, |_| {}),
            &state,
            &cookie,
        )
        .await;
    setup.expect("launch (warm)", &response, 200).await;

    // A launch from a deployment the tool has not seen (recorded at its first launch).
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let token = lms.id_token("student-2", &nonce, |c| {
        c[format!("{LTI}deployment_id")] = json!("inst-new")
    });
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    setup
        .expect("launch from a new deployment", &response, 200)
        .await;

    // An instructor's launch with AGS and NRPS, then grades and the roster through the
    // services function (Sign for the client assertion, the token cached in the table).
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let claims = lms_services.claims(Some(&lineitem));
    let token = lms.id_token("teacher-1", &nonce, |c| {
        c[format!("{LTI}roles")] = json!([INSTRUCTOR]);
        c[format!("{LTI}context")] = json!({"id": "course-1"});
        for (name, value) in claims {
            c[name] = value;
        }
    });
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    setup.expect("instructor launch", &response, 200).await;
    let app_token = app_token_of(&response);
    let launch_id = launch_id_of(&app_token);
    let bearer = format!("Bearer {launch_id}");
    let with_key = [
        ("x-api-key", key.as_str()),
        ("authorization", bearer.as_str()),
    ];
    let made = call(
        &services,
        "POST",
        "/lti/ags/lineitems",
        &with_key,
        Some(json!({"label": "Quiz", "scoreMaximum": 10, "resourceLinkId": "rl-1"})),
    )
    .await;
    setup.expect("create a line item", &made, 201).await;
    let quiz = json_of(&made)["lineItem"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let score =
        json!({"userId": "student-1", "scoreGiven": 7, "scoreMaximum": 10, "lineItemUrl": quiz});
    let posted = call(
        &services,
        "POST",
        "/lti/ags/scores",
        &with_key,
        Some(score.clone()),
    )
    .await;
    setup.expect("post a score", &posted, 200).await;
    let roster = call(&services, "GET", "/lti/nrps/members", &with_key, None).await;
    setup.expect("read the roster", &roster, 200).await;
    assert_eq!(
        json_of(&roster)["members"].as_array().map(Vec::len),
        Some(MEMBERS)
    );
    let tokens = lms_services.token_requests();
    let second = ready(functions::services(setup.clients("ServicesFunction"), &var));
    let posted = call(&second, "POST", "/lti/ags/scores", &with_key, Some(score)).await;
    setup
        .expect("post a score from a second instance", &posted, 200)
        .await;
    assert_eq!(
        lms_services.token_requests(),
        tokens,
        "the second instance reads the cached platform token from the table"
    );

    // A deep-linking launch answered through the services function (Sign).
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let token = lms.id_token("teacher-1", &nonce, |c| {
        let object = c.as_object_mut().expect("claims");
        object.remove(&format!("{LTI}resource_link"));
        c[format!("{LTI}message_type")] = json!("LtiDeepLinkingRequest");
        c[format!("{LTI}roles")] = json!([INSTRUCTOR]);
        c["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = json!({
            "deep_link_return_url": format!("{ISS}/dl/return"),
            "accept_types": ["ltiResourceLink"],
            "accept_multiple": true
        });
    });
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    setup.expect("deep-linking launch", &response, 200).await;
    let bearer = format!("Bearer {}", launch_id_of(&app_token_of(&response)));
    let answered = call(
        &services,
        "POST",
        "/lti/deep-link",
        &[("x-api-key", key.as_str()), ("authorization", bearer.as_str())],
        Some(json!({"contentItems": [{"type": "ltiResourceLink", "title": "Quiz", "url": format!("{TOOL}/lti/launch")}]})),
    )
    .await;
    setup.expect("deep-linking response", &answered, 200).await;
    assert!(json_of(&answered)["jwt"].is_string());

    // A direct launch (no login step) from a platform set to the direct profile: its
    // registration found by issuer through the gsi1 index, its jti recorded once.
    let direct_issuer = "https://direct.example";
    let saved = call(
        &services,
        "POST",
        "/admin/platforms",
        &[],
        Some(json!({
            "issuer": direct_issuer, "clientId": "direct-client", "name": "Direct",
            "authLoginUrl": format!("{direct_issuer}/auth"),
            "authTokenUrl": format!("{direct_issuer}/token"),
            "keysetUrl": lms.jwks_url, "launchProfile": "direct",
            "audience": "tool-aud-1", "landingUrl": "https://app.example/direct"
        })),
    )
    .await;
    setup
        .expect("register a direct-launch platform", &saved, 201)
        .await;
    let now = lti_core::clock::Clock::now(&lti_core::clock::SystemClock);
    let direct_token = lms.sign(&json!({
        "iss": direct_issuer, "aud": "tool-aud-1", "sub": "learner-1",
        "iat": now, "exp": now + 300, "jti": common::uuid_like()
    }));
    let response = launch
        .handle(request(
            "POST",
            "/lti/launch",
            "application/x-www-form-urlencoded",
            serde_urlencoded::to_string([("id_token", direct_token.as_str())]).expect("form"),
        ))
        .await;
    let status = response.status().as_u16();
    setup
        .expect(
            "direct launch",
            &response,
            if status == 303 { 303 } else { 302 },
        )
        .await;
    let location = response.headers()["location"].to_str().expect("ascii");
    assert!(
        location.starts_with("https://app.example/direct#"),
        "{location}"
    );

    // LTI Dynamic Registration with the devkit's demo platform: the services function
    // fetches its configuration, registers, and stores the registration.
    let platform = serve_demo_platform().await;
    let register = format!(
        "/lti/register?{}",
        serde_urlencoded::to_string([
            ("openid_configuration", platform.openid_configuration_url()),
            ("registration_token", platform.issue_registration_token()),
        ])
        .expect("query")
    );
    let response = services
        .handle(request("GET", &register, "", String::new()))
        .await;
    setup.expect("dynamic registration", &response, 200).await;
    let registered = json_of(&response);
    assert_eq!(
        (&registered["registered"], &registered["created"]),
        (&json!(true), &json!(true)),
        "{registered}"
    );
    assert_eq!(registered["deploymentId"], "dynreg-1");

    // A second registration, deleted with its items (BatchWriteItem).
    let mut other = lms.registration();
    other["clientId"] = json!("iam-client-2");
    let saved = call(&services, "POST", "/admin/platforms", &[], Some(other)).await;
    setup
        .expect("register a second platform", &saved, 201)
        .await;
    let other_id = json_of(&saved)["id"].as_str().expect("id").to_string();
    let deleted = call(
        &services,
        "DELETE",
        &format!("/admin/platforms/{other_id}"),
        &[],
        None,
    )
    .await;
    setup.expect("delete a registration", &deleted, 200).await;
    assert_eq!(json_of(&deleted)["deleted"], true);

    // The report: no call denied; the grants no flow used.
    let denied = setup.denials(&FUNCTIONS).await;
    let decisions = setup.decisions().await;
    let mut unneeded = Vec::new();
    for name in FUNCTIONS {
        let identity = &setup.identities[name];
        let calls: Vec<&Value> = decisions
            .iter()
            .filter(|d| d["principal"] == identity.arn.as_str() && d["allowed"] == true)
            .collect();
        let mut used: Vec<String> = calls
            .iter()
            .map(|d| {
                format!(
                    "{} on {}",
                    d["action"].as_str().unwrap_or(""),
                    setup.short(d["resource"].as_str().unwrap_or(""))
                )
            })
            .collect();
        used.sort();
        used.dedup();
        println!(
            "IAM: {name}: {} calls allowed; used: {}",
            calls.len(),
            used.join(", ")
        );
        unneeded.extend(setup.unneeded(name, &identity.policy, &calls));
    }
    for line in &unneeded {
        println!("IAM {line}");
    }
    if unneeded.is_empty() {
        println!("IAM: every grant of template.yaml was used by a flow");
    }
    assert!(
        denied.is_empty(),
        "calls denied by template.yaml's policies: {denied:?}"
    );
}

#[tokio::test]
#[ignore = "needs a moto server in IAM mode: tests/run.sh starts one (start_moto --iam)"]
async fn template_policy_enforcement_has_teeth() {
    let setup = setup().await;
    let var = setup.var();
    let lms = Lms::start("teeth-client").await;
    let services = ready(functions::services(setup.clients("ServicesFunction"), &var));
    let saved = call(
        &services,
        "POST",
        "/admin/platforms",
        &[],
        Some(lms.registration()),
    )
    .await;
    setup.expect("register a platform", &saved, 201).await;

    // The login function's credentials cannot sign with the key.
    let signed = setup
        .clients("LoginFunction")
        .kms
        .sign()
        .key_id(&setup.key_arn)
        .message(aws_smithy_types::Blob::new(b"x".to_vec()))
        .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
        .send()
        .await;
    let error = signed.expect_err("the login function may not kms:Sign");
    assert_eq!(
        error.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDeniedException")
    );

    // The launch function's policy minus dynamodb:UpdateItem: the state is consumed by
    // an UpdateItem inside the launch transaction, so the launch fails, and the
    // decision names that item's action (not TransactWriteItems).
    let without = format!("LaunchFunction without {TAKEN_AWAY}");
    let login = ready(functions::login(setup.clients("LoginFunction"), &var));
    let launch = ready(functions::launch(setup.clients(&without), &var));
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let response = lms
        .post_launch_with(
            &launch,
            &lms.id_token("student-1", &nonce, |_| {}),
            &state,
            &cookie,
        )
        .await;
    assert!(
        response.status().is_server_error(),
        "a launch without {TAKEN_AWAY} fails: {} {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    let mut denied = setup.denials(&[without.as_str()]).await;
    denied.dedup();
    assert_eq!(denied, vec![format!("{without}: {TAKEN_AWAY} on table")]);
    // The same launch with the template's policy succeeds.
    let launch = ready(functions::launch(setup.clients("LaunchFunction"), &var));
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let response = lms
        .post_launch_with(
            &launch,
            &lms.id_token("student-1", &nonce, |_| {}),
            &state,
            &cookie,
        )
        .await;
    setup
        .expect("launch with the template's policy", &response, 200)
        .await;

    // The report names a grant no call used: the login function's policy plus a
    // dynamodb:Scan of the table, against the login function's calls above (this test
    // logs in with a client_id only, so its gsi1 grant is unused either way).
    let login_arn = setup.identities["LoginFunction"].arn.clone();
    let decisions = setup.decisions().await;
    let calls: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["principal"] == login_arn.as_str() && d["allowed"] == true)
        .collect();
    let mut wider = setup.identities["LoginFunction"].policy.clone();
    wider["Statement"]
        .as_array_mut()
        .expect("statements")
        .push(json!({"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": setup.table_arn}));
    let before = setup.unneeded(
        "LoginFunction",
        &setup.identities["LoginFunction"].policy,
        &calls,
    );
    let after = setup.unneeded("LoginFunction", &wider, &calls);
    let added: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert_eq!(
        added,
        vec!["unneeded: LoginFunction dynamodb:Scan on table"]
    );
}
