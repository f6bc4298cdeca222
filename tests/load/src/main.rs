//! The load test driver (`tests/load.sh` runs it): plays a platform — its own key,
//! a JWKS endpoint, a registration made through the admin API — and runs complete
//! login → launch flows against the tool at a fixed concurrency, then a replay storm
//! (one launch form posted many times at once), then, on the Lambda stack, the same
//! flows while the store fails for a few seconds. Afterwards it reads the store: one
//! consumed login state per successful launch, one user per (registration scope, sub),
//! nothing half-written. Prints figures, one line per phase, e.g.
//!
//! ```text
//! load: flows=1000 errors=0 p50_ms=… p95_ms=… p99_ms=… throughput_per_s=…
//! replay: posts=100 succeeded=1 replayed=99 other=0
//! store: launches=1000 consumed_states=1000 users=250 duplicate_users=0 missing=0
//! outage: flows=… ok=… store_unavailable=… unclean=0 half_written=0 recovered=50/50
//! ```
//!
//! Settings (environment): `LOAD_FLOWS` (1000), `LOAD_CONCURRENCY` (20),
//! `LOAD_TARGET` (`dev`: a dev server started in this process; `lambda`: the tool at
//! `LOAD_TOOL_URL` with admin token `LOAD_ADMIN_TOKEN`, table `LOAD_TABLE` read through
//! `AWS_ENDPOINT_URL`, and the fault proxy at `LOAD_FAULT_URL`), `LOAD_REPLAYS` (100),
//! `LOAD_OUTAGE_SECONDS` (3; 0 skips the outage), `LOAD_OUTAGE_FLOWS` (400).
//! Exits non-zero when a check fails (never on a latency figure).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_core::clock::{Clock, SystemClock};
use lti_core::signer::LocalRsaSigner;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://lms.load.example";
const DEPLOYMENT: &str = "load-1";
const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The platform the driver plays.
struct Platform {
    key: LocalRsaSigner,
    client_id: String,
    jwks_url: String,
}

impl Platform {
    async fn start(client_id: String) -> Self {
        let key = LocalRsaSigner::generate().expect("platform key");
        let body = json!({"keys": [key.public_jwk()]}).to_string();
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let jwks_url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            key,
            client_id,
            jwks_url,
        }
    }

    fn registration(&self) -> Value {
        json!({
            "issuer": ISSUER, "clientId": self.client_id, "name": "Load LMS",
            "authLoginUrl": format!("{ISSUER}/auth"), "authTokenUrl": format!("{ISSUER}/token"),
            "keysetUrl": self.jwks_url, "deploymentId": DEPLOYMENT,
        })
    }

    fn id_token(&self, tool: &str, sub: &str, nonce: &str) -> String {
        let now = SystemClock.now();
        let claims = json!({
            "iss": ISSUER, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 300,
            "nonce": nonce, "name": "Load Learner",
            format!("{LTI}message_type"): "LtiResourceLinkRequest",
            format!("{LTI}version"): "1.3.0",
            format!("{LTI}deployment_id"): DEPLOYMENT,
            format!("{LTI}target_link_uri"): format!("{tool}/lti/launch"),
            format!("{LTI}resource_link"): {"id": "rl-1"},
            format!("{LTI}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            format!("{LTI}context"): {"id": "course-1"},
        });
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key.public_jwk().kid});
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", part(&header), part(&claims));
        let signature = self.key.sign_now(input.as_bytes()).expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn user_id(&self, sub: &str) -> String {
        lti_core::user::stable_user_id(ISSUER, &self.jwks_url, sub)
    }
}

/// How one step ended: its status and error code.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    status: u16,
    code: String,
}

async fn step(response: reqwest::Response) -> Step {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Step { status, code }
}

/// One flow: which login state it got, and how each step ended.
#[derive(Debug, Clone)]
struct Flow {
    sub: String,
    state: Option<String>,
    login: Step,
    launch: Option<Step>,
    took: Duration,
}

impl Flow {
    fn succeeded(&self) -> bool {
        self.launch.as_ref().is_some_and(|s| s.status == 200)
    }
}

/// A login form the tool answered: (state, nonce, cookie header), or how it failed.
async fn login(
    client: &reqwest::Client,
    tool: &str,
    platform: &Platform,
) -> Result<(String, String, String), Step> {
    let response = client
        .post(format!("{tool}/lti/login"))
        .header("accept", "application/json")
        .form(&[
            ("iss", ISSUER),
            ("login_hint", "load"),
            ("target_link_uri", &format!("{tool}/lti/launch")),
            ("client_id", &platform.client_id),
            ("lti_deployment_id", DEPLOYMENT),
        ])
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Err(Step {
                status: 0,
                code: format!("connection: {e}"),
            })
        }
    };
    if response.status().as_u16() != 302 {
        return Err(step(response).await);
    }
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_string)
        .collect();
    let query: HashMap<String, String> = location
        .map(|l| l.query_pairs().into_owned().collect())
        .unwrap_or_default();
    match (query.get("state"), query.get("nonce")) {
        (Some(state), Some(nonce)) => Ok((state.clone(), nonce.clone(), cookies.join("; "))),
        _ => Err(Step {
            status: 302,
            code: "no state in the redirect".into(),
        }),
    }
}

async fn post_launch(
    client: &reqwest::Client,
    tool: &str,
    token: &str,
    state: &str,
    cookie: &str,
) -> Step {
    let response = client
        .post(format!("{tool}/lti/launch"))
        .header("accept", "application/json")
        .header("cookie", cookie)
        .form(&[("id_token", token), ("state", state)])
        .send()
        .await;
    match response {
        Ok(r) => step(r).await,
        Err(e) => Step {
            status: 0,
            code: format!("connection: {e}"),
        },
    }
}

async fn flow(client: &reqwest::Client, tool: &str, platform: &Platform, sub: String) -> Flow {
    let started = Instant::now();
    match login(client, tool, platform).await {
        Err(login) => Flow {
            sub,
            state: None,
            login,
            launch: None,
            took: started.elapsed(),
        },
        Ok((state, nonce, cookie)) => {
            let token = platform.id_token(tool, &sub, &nonce);
            let launch = post_launch(client, tool, &token, &state, &cookie).await;
            Flow {
                sub,
                state: Some(state),
                login: Step {
                    status: 302,
                    code: String::new(),
                },
                launch: Some(launch),
                took: started.elapsed(),
            }
        }
    }
}

/// Runs `count` flows, `concurrency` at a time; `sub_of(i)` names flow i's user.
async fn run_flows(
    client: &reqwest::Client,
    tool: &str,
    platform: &Arc<Platform>,
    count: usize,
    concurrency: usize,
    sub_of: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Vec<Flow> {
    let next = Arc::new(AtomicUsize::new(0));
    let flows = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, tool, platform) = (client.clone(), tool.to_string(), platform.clone());
        let (next, flows, sub_of) = (next.clone(), flows.clone(), sub_of.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let done = flow(&client, &tool, &platform, sub_of(i)).await;
                flows.lock().expect("lock").push(done);
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let flows = std::mem::take(&mut *flows.lock().expect("lock"));
    flows
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Where the tool keeps its data, to check it after the run.
enum Store {
    Dev(Arc<lti_dev::store::FileStore>),
    Dynamo {
        store: lti_aws::dynamo::DynamoStore,
        client: aws_sdk_dynamodb::Client,
        table: String,
    },
}

impl Store {
    /// (consumed, user exists) for a flow.
    async fn written(&self, state: &str, user_id: &str) -> (bool, bool) {
        use lti_core::user::UserStore;
        match self {
            Store::Dev(store) => {
                let memory = store.memory();
                let consumed = memory
                    .stored_state(state)
                    .is_some_and(|s| s.consumed_at.is_some());
                let user = memory.user(user_id).await.ok().flatten().is_some();
                (consumed, user)
            }
            Store::Dynamo { store, .. } => {
                let consumed = store
                    .stored_state(state, SystemClock.now())
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.consumed_at.is_some());
                let user = store.user(user_id).await.ok().flatten().is_some();
                (consumed, user)
            }
        }
    }

    /// How many user records each (issuer, user scope, sub) has.
    async fn users_per_identity(&self) -> HashMap<(String, String, String), usize> {
        let mut counts = HashMap::new();
        match self {
            Store::Dev(store) => {
                for user in store.memory().snapshot().users {
                    *counts
                        .entry((user.issuer, user.user_scope, user.sub))
                        .or_insert(0) += 1;
                }
            }
            Store::Dynamo { client, table, .. } => {
                use aws_sdk_dynamodb::types::AttributeValue;
                let mut start = None;
                loop {
                    let page = client
                        .scan()
                        .table_name(table)
                        .filter_expression("entity = :user")
                        .expression_attribute_values(":user", AttributeValue::S("user".into()))
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .expect("scan the table");
                    for item in page.items() {
                        let get = |name: &str| {
                            item.get(name)
                                .and_then(|v| v.as_s().ok())
                                .cloned()
                                .unwrap_or_default()
                        };
                        *counts
                            .entry((get("issuer"), get("user_scope"), get("sub")))
                            .or_insert(0) += 1;
                    }
                    start = page.last_evaluated_key().cloned();
                    if start.is_none() {
                        break;
                    }
                }
            }
        }
        counts
    }
}

/// The tool under test: its URL, admin token, store, and (Lambda) fault proxy.
struct Target {
    tool: String,
    admin_token: String,
    store: Store,
    fault_url: Option<String>,
    _dev: Option<lti_dev::DevServer>,
}

async fn target() -> Target {
    match std::env::var("LOAD_TARGET").as_deref().unwrap_or("dev") {
        "lambda" => {
            let var = |name: &str| {
                std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (tests/load.sh)"))
            };
            let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let client = aws_sdk_dynamodb::Client::new(&shared);
            let table = var("LOAD_TABLE");
            Target {
                tool: var("LOAD_TOOL_URL"),
                admin_token: var("LOAD_ADMIN_TOKEN"),
                store: Store::Dynamo {
                    store: lti_aws::dynamo::DynamoStore::new(client.clone(), table.clone()),
                    client,
                    table,
                },
                fault_url: std::env::var("LOAD_FAULT_URL").ok(),
                _dev: None,
            }
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("lti-load-{}", std::process::id()));
            let admin_token = format!("load-admin-token-{}-0123456789abcdef", std::process::id());
            let server = lti_dev::DevServer::start(lti_dev::DevOptions {
                port: 0,
                data_dir: dir,
                admin_token: Some(admin_token.clone()),
                clock: Arc::new(SystemClock),
                settings: vec![],
            })
            .await
            .expect("dev server");
            Target {
                tool: server.base_url.clone(),
                admin_token,
                store: Store::Dev(server.store.clone()),
                fault_url: None,
                _dev: Some(server),
            }
        }
    }
}

/// Phase checks that failed, printed at the end.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: String) {
        if !ok {
            eprintln!("CHECK FAILED: {what}");
            self.0.push(what);
        }
    }
}

#[tokio::main]
async fn main() {
    let flows_wanted = setting("LOAD_FLOWS", 1000);
    let concurrency = setting("LOAD_CONCURRENCY", 20);
    let replays = setting("LOAD_REPLAYS", 100);
    let outage_seconds = setting("LOAD_OUTAGE_SECONDS", 3);
    let outage_flows = setting("LOAD_OUTAGE_FLOWS", 400);
    let recovery_flows = 50;
    let target = target().await;
    let tool = target.tool.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let run = SystemClock.now();
    let platform = Arc::new(Platform::start(format!("load-client-{run}")).await);
    let registered = client
        .post(format!("{tool}/admin/platforms"))
        .bearer_auth(&target.admin_token)
        .json(&platform.registration())
        .send()
        .await
        .expect("register the platform");
    assert_eq!(registered.status().as_u16(), 201, "registration refused");
    let mut failures = Failures::default();

    // 1. Complete flows; four launches per user, so users are updated concurrently.
    let users = (flows_wanted / 4).max(1);
    let started = Instant::now();
    let flows = run_flows(
        &client,
        &tool,
        &platform,
        flows_wanted,
        concurrency,
        Arc::new(move |i| format!("learner-{}", i % users)),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = flows.iter().map(|f| f.took.as_secs_f64() * 1e3).collect();
    latencies.sort_by(f64::total_cmp);
    let errors: Vec<&Flow> = flows.iter().filter(|f| !f.succeeded()).collect();
    let mut error_codes: HashMap<String, usize> = HashMap::new();
    for f in &errors {
        let s = f.launch.as_ref().unwrap_or(&f.login);
        *error_codes
            .entry(format!("{} {}", s.status, s.code))
            .or_insert(0) += 1;
    }
    println!(
        "load: flows={} errors={} p50_ms={:.1} p95_ms={:.1} p99_ms={:.1} throughput_per_s={:.1}",
        flows.len(),
        errors.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        flows.len() as f64 / elapsed
    );
    if !error_codes.is_empty() {
        println!("load errors by status and code: {error_codes:?}");
    }
    failures.check(errors.is_empty(), format!("{} flows failed", errors.len()));

    // 2. Replay storm: one launch form posted `replays` times at once.
    let (state, nonce, cookie) = login(&client, &tool, &platform)
        .await
        .expect("login for the replay storm");
    let token = Arc::new(platform.id_token(&tool, "replayed-learner", &nonce));
    let barrier = Arc::new(tokio::sync::Barrier::new(replays));
    let mut posts = Vec::new();
    for _ in 0..replays {
        let (client, tool, token, state, cookie, barrier) = (
            client.clone(),
            tool.clone(),
            token.clone(),
            state.clone(),
            cookie.clone(),
            barrier.clone(),
        );
        posts.push(tokio::spawn(async move {
            barrier.wait().await;
            post_launch(&client, &tool, &token, &state, &cookie).await
        }));
    }
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for post in posts {
        if let Ok(s) = post.await {
            *outcomes
                .entry(format!("{} {}", s.status, s.code))
                .or_insert(0) += 1;
        }
    }
    let succeeded = outcomes.get("200 ").copied().unwrap_or(0);
    let replayed = outcomes.get("409 LTI_NONCE_REPLAYED").copied().unwrap_or(0);
    println!(
        "replay: posts={replays} succeeded={succeeded} replayed={replayed} other={}",
        replays - succeeded - replayed
    );
    if succeeded + replayed != replays {
        println!("replay outcomes: {outcomes:?}");
    }
    failures.check(
        succeeded == 1,
        format!("replay storm: {succeeded} successes"),
    );
    failures.check(
        replayed == replays - 1,
        format!("replay storm: outcomes {outcomes:?}"),
    );

    // 3. The store afterwards.
    let (mut consumed, mut missing) = (0, 0);
    for f in flows.iter().filter(|f| f.succeeded()) {
        let state = f.state.as_deref().unwrap_or_default();
        match target.store.written(state, &platform.user_id(&f.sub)).await {
            (true, true) => consumed += 1,
            _ => missing += 1,
        }
    }
    let (replay_consumed, _) = target
        .store
        .written(&state, &platform.user_id("replayed-learner"))
        .await;
    let identities = target.store.users_per_identity().await;
    let ours: Vec<usize> = identities
        .iter()
        .filter(|((issuer, scope, _), _)| issuer == ISSUER && *scope == platform.jwks_url)
        .map(|(_, n)| *n)
        .collect();
    let duplicates = ours.iter().filter(|n| **n > 1).count();
    println!(
        "store: launches={} consumed_states={consumed} users={} duplicate_users={duplicates} missing={missing}",
        flows.len() - errors.len(),
        ours.len()
    );
    failures.check(
        missing == 0,
        format!("{missing} launches without their state or user"),
    );
    failures.check(
        duplicates == 0,
        format!("{duplicates} identities with several users"),
    );
    failures.check(
        replay_consumed,
        "the replayed launch's state is not consumed".into(),
    );
    failures.check(
        ours.len() == users.min(flows_wanted) + 1,
        format!("{} users for {} subs", ours.len(), users + 1),
    );

    // 4. The store down for a few seconds in the middle of a run (Lambda stack).
    match (&target.fault_url, outage_seconds) {
        (Some(fault_url), seconds) if seconds > 0 => {
            let control = format!("{fault_url}/__faults");
            let phase = run_flows(
                &client,
                &tool,
                &platform,
                outage_flows,
                concurrency,
                Arc::new(move |i| format!("outage-{run}-{i}")),
            );
            let outage = async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                client
                    .post(&control)
                    .json(&json!({"target": "DynamoDB", "status": 400, "errorType": "ThrottlingException"}))
                    .send()
                    .await
                    .expect("store down");
                tokio::time::sleep(Duration::from_secs(seconds as u64)).await;
                client.delete(&control).send().await.expect("store back");
            };
            let (phase, ()) = tokio::join!(phase, outage);
            let mut ok = 0;
            let mut unavailable = 0;
            let mut unclean: HashMap<String, usize> = HashMap::new();
            // A user without its consumed state or the reverse: never allowed.
            let mut half_written = 0;
            // A login used up although the user got an error (the write landed after
            // its answer timed out): allowed, the user launches again; counted.
            let mut used_up_on_error = 0;
            for f in &phase {
                let last = f.launch.as_ref().unwrap_or(&f.login);
                if f.succeeded() {
                    ok += 1;
                } else if last.status == 503 && last.code == "LTI_STORE_UNAVAILABLE" {
                    unavailable += 1;
                } else {
                    *unclean
                        .entry(format!("{} {}", last.status, last.code))
                        .or_insert(0) += 1;
                }
                if let Some(state) = &f.state {
                    let (consumed, user) =
                        target.store.written(state, &platform.user_id(&f.sub)).await;
                    if consumed != user || (f.succeeded() && !consumed) {
                        half_written += 1;
                    } else if consumed && !f.succeeded() {
                        used_up_on_error += 1;
                    }
                }
            }
            let recovery = run_flows(
                &client,
                &tool,
                &platform,
                recovery_flows,
                concurrency,
                Arc::new(move |i| format!("recovered-{run}-{i}")),
            )
            .await;
            let recovered = recovery.iter().filter(|f| f.succeeded()).count();
            let unclean_total: usize = unclean.values().sum();
            println!(
                "outage: seconds={seconds} flows={} ok={ok} store_unavailable={unavailable} unclean={unclean_total} half_written={half_written} used_up_on_error={used_up_on_error} recovered={recovered}/{recovery_flows}",
                phase.len()
            );
            if !unclean.is_empty() {
                println!("outage: unclean answers {unclean:?}");
            }
            failures.check(unavailable > 0, "the outage refused nothing".into());
            failures.check(unclean.is_empty(), format!("unclean answers {unclean:?}"));
            failures.check(half_written == 0, format!("{half_written} half-written launches"));
            failures.check(
                recovered == recovery_flows,
                format!("{recovered}/{recovery_flows} flows after recovery"),
            );
        }
        _ => println!(
            "outage: skipped (LOAD_TARGET=dev keeps its store in the server's process; LOAD_TARGET=lambda runs it)"
        ),
    }

    if !failures.0.is_empty() {
        eprintln!("load: {} check(s) failed", failures.0.len());
        std::process::exit(1);
    }
}
