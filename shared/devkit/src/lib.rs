//! # lti-dev
//!
//! The local dev server: the tool's four handlers (the same code the Lambda functions
//! run) behind one port, on an embedded store that keeps registrations, users and the
//! signing key in `--data-dir`, plus a demo platform at `/platform` and a demo app at
//! `/app`. Also a tiny scripted browser ([`browser`]) used by the tests.

pub mod app;
pub mod browser;
pub mod faults;
pub mod platform;
pub mod scripted;
pub mod store;

use app::DemoApp;
use lti_core::clock::Clock;
use lti_core::config::{paths, ToolConfig};
use lti_core::keys::PlatformKeys;
use lti_core::launch::Launcher;
use lti_core::login::LoginService;
use lti_core::platform::{Deployment, PlatformInput, PlatformStore};
use lti_core::random::{Random, SystemRandom};
use lti_core::signer::LocalRsaSigner;
use lti_http::handlers::{
    JwksHandler, LaunchHandler, LoginHandler, ServicesDeps, ServicesHandler, ToolRouter,
};
use lti_http::observe::RequestLog;
use lti_http::request::{RequestError, MAX_REQUEST_BODY};
use lti_http::{respond, RequestId};
use lti_outbound::jwks::HttpKeySetFetcher;
use platform::DemoPlatform;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use store::FileStore;

/// How to run the dev server.
pub struct DevOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where the store and keys live.
    pub data_dir: PathBuf,
    /// Admin API token; generated if `None`.
    pub admin_token: Option<String>,
    /// The clock (tests move it).
    pub clock: Arc<dyn Clock>,
    /// Configuration variables (`LTI_HANDOFF_MODE`, `LTI_ALLOWED_APP_ORIGINS`…) that
    /// take precedence over the process environment: tests set them per server.
    pub settings: Vec<(String, String)>,
}

/// The dev server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("cannot use the data directory {0}: {1}")]
    DataDir(PathBuf, String),
    #[error("cannot listen on 127.0.0.1:{0}: {1}")]
    Bind(u16, std::io::Error),
    #[error("{0}")]
    Setup(String),
}

struct Inner {
    tool: ToolRouter,
    platform: Arc<DemoPlatform>,
    /// The same demo platform on `http://localhost:<port>`: requests with that Host
    /// get it, so its pages embed the tool (on 127.0.0.1) from another site.
    localhost_platform: Arc<DemoPlatform>,
    app: DemoApp,
    requests: AtomicU64,
}

/// A running dev server.
pub struct DevServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The admin API token.
    pub admin_token: String,
    /// True when the admin token was generated (not from `LTI_ADMIN_TOKEN`).
    pub admin_token_generated: bool,
    /// The service key of the app's backend (`LTI_SERVICE_KEY`, or generated once and
    /// kept in the data folder).
    pub service_key: String,
    /// True when the service key was generated.
    pub service_key_generated: bool,
    /// The demo platform (tests rotate its key).
    pub platform: Arc<DemoPlatform>,
    /// The demo platform as seen on `http://localhost:<port>` (issuer
    /// `http://localhost:<port>/platform`, its own registration with the tool): the
    /// tool it shows in an iframe is on another site (127.0.0.1), as in a real LMS.
    pub localhost_platform: Arc<DemoPlatform>,
    /// The embedded store (tests read it).
    pub store: Arc<FileStore>,
    /// The admin API's audit lines (also logged).
    pub audit: Arc<lti_core::registration::audit::MemoryAudit>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl DevServer {
    /// Builds everything and starts serving.
    pub async fn start(options: DevOptions) -> Result<Self, DevError> {
        let data_dir = options.data_dir.clone();
        // Users' names and emails and private keys live there: owner only.
        store::create_private_dir(&data_dir)
            .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?;
        for key in ["tool-key.der", "platform-key.der"] {
            store::make_private_file(&data_dir.join(key))
                .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| DevError::Bind(options.port, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DevError::Bind(options.port, e))?;
        let base_url = format!("http://{addr}");

        let (admin_token, admin_token_generated) = match options.admin_token {
            Some(t) => (t, false),
            None => (SystemRandom.token(24), true),
        };
        let config = Arc::new(
            ToolConfig::from_lookup(|name| match name {
                "LTI_BASE_URL" => Some(base_url.clone()),
                "LTI_APP_LANDING_URL" => Some(format!("{base_url}/app")),
                "LTI_ADMIN_TOKEN" => Some(admin_token.clone()),
                // The dev server is a developer's own machine: its demo platform and
                // the LMSs people try against it run on 127.0.0.1.
                "LTI_INSECURE_ALLOW_LOOPBACK_URLS" => Some("true".into()),
                other => options
                    .settings
                    .iter()
                    .find(|(name, _)| name == other)
                    .map(|(_, value)| value.clone())
                    .or_else(|| std::env::var(other).ok()),
            })
            .map_err(|e| DevError::Setup(e.to_string()))?,
        );

        let store = Arc::new(
            FileStore::open(data_dir.join("store.json"))
                .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?,
        );
        let tool_key = LocalRsaSigner::load_or_create(&data_dir.join("tool-key.der"))
            .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?;
        let platform_key = LocalRsaSigner::load_or_create(&data_dir.join("platform-key.der"))
            .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?;
        let platform = Arc::new(DemoPlatform::new(
            &base_url,
            platform_key,
            options.clock.clone(),
        ));
        register_demo_platform(
            store.as_ref(),
            &platform,
            &config,
            &format!("{base_url}/app"),
            options.clock.now(),
        )
        .await?;
        let localhost_key = LocalRsaSigner::load_or_create(&data_dir.join("platform-key.der"))
            .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?;
        let localhost_platform = Arc::new(DemoPlatform::on_origin(
            &format!("http://localhost:{}", addr.port()),
            &base_url,
            localhost_key,
            options.clock.clone(),
        ));
        register_demo_platform(
            store.as_ref(),
            &localhost_platform,
            &config,
            &format!("{base_url}/app"),
            options.clock.now(),
        )
        .await?;

        let fetcher = HttpKeySetFetcher::new(config.url_policy())
            .map_err(|e| DevError::Setup(e.to_string()))?;
        let signer: Arc<LocalRsaSigner> = Arc::new(tool_key);
        let random: Arc<dyn Random> = Arc::new(SystemRandom);
        let audit = Arc::new(lti_core::registration::audit::MemoryAudit::forwarding_to(
            Box::new(LoggedAudit),
        ));
        let mut tool = ToolRouter {
            base_path: config.base_url.path().to_string(),
            login: LoginHandler {
                service: LoginService {
                    config: config.clone(),
                    platforms: store.clone(),
                    launches: store.clone(),
                    clock: options.clock.clone(),
                    random: random.clone(),
                },
            },
            launch: LaunchHandler {
                launcher: Launcher {
                    config: config.clone(),
                    platforms: store.clone(),
                    launches: store.clone(),
                    keys: Arc::new(PlatformKeys::new(Arc::new(fetcher.clone()))),
                    signer: signer.clone(),
                    clock: options.clock.clone(),
                    random: random.clone(),
                },
            },
            jwks: JwksHandler {
                signer: signer.clone(),
            },
            services: ServicesHandler::new(ServicesDeps {
                config: config.clone(),
                platforms: store.clone(),
                service_key_store: store.clone(),
                records: store.clone(),
                signer: signer.clone(),
                clock: options.clock.clone(),
                random: random.clone(),
                http: Arc::new(
                    lti_outbound::ReqwestPlatformHttp::new(config.url_policy())
                        .map_err(|e| DevError::Setup(e.to_string()))?,
                ),
                token_cache: store.clone(),
                users: store.clone(),
            }),
        };
        tool.services.audit = audit.clone();
        // The app backend's service key: LTI_SERVICE_KEY, else one generated once.
        let chosen = options
            .settings
            .iter()
            .find(|(name, _)| name == "LTI_SERVICE_KEY")
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var("LTI_SERVICE_KEY").ok())
            .filter(|k| !k.trim().is_empty());
        let service_key_generated = chosen.is_none();
        let service_key = match chosen {
            Some(key) => key.trim().to_string(),
            None => store::load_or_create_secret(&data_dir.join("service-key"), || {
                format!("lsk_dev_{}", SystemRandom.token(32))
            })
            .map_err(|e| DevError::DataDir(data_dir.clone(), e.to_string()))?,
        };
        tool.services
            .service_keys
            .install(
                &lti_core::error::Secret::new(service_key.clone()),
                "dev server",
            )
            .await
            .map_err(|e| {
                DevError::Setup(format!(
                    "LTI_SERVICE_KEY must be at least 32 characters: {e}"
                ))
            })?;

        let inner = Arc::new(Inner {
            tool,
            platform: platform.clone(),
            localhost_platform: localhost_platform.clone(),
            // The demo app's backend answers deep-linking requests with the dev
            // server's service key.
            app: DemoApp::new(&config.issuer(), &config.app_audience, fetcher)
                .with_service_key(service_key.clone()),
            requests: AtomicU64::new(0),
        });

        let router = axum::Router::new().fallback(dispatch).with_state(inner);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the dev server stopped");
            }
        });
        Ok(Self {
            addr,
            base_url,
            admin_token,
            admin_token_generated,
            service_key,
            service_key_generated,
            platform,
            localhost_platform,
            store,
            audit,
            shutdown: Some(tx),
            task,
        })
    }

    /// Stops serving and waits for open connections to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server stops (Ctrl-C in `main`).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }

    /// What to print at start: every URL a person needs.
    pub fn banner(&self) -> String {
        let b = &self.base_url;
        let service_key_line = if self.service_key_generated {
            format!(
                "{} (kept in the data folder; set LTI_SERVICE_KEY to choose one)",
                self.service_key
            )
        } else {
            "from LTI_SERVICE_KEY".to_string()
        };
        let token_line = if self.admin_token_generated {
            format!(
                "{} (generated; set LTI_ADMIN_TOKEN to choose one)",
                self.admin_token
            )
        } else {
            "from LTI_ADMIN_TOKEN".to_string()
        };
        format!(
            "lti-lambda dev server\n\
             \n  Try it:        open {b}/platform, pick a user, press Launch\n\
             \x20                (Add content: the instructor picks content in the demo app; it lands in the course)\n\
             \x20                (as the instructor: Submit a score, Show roster; the score lands in {b}/platform/gradebook)\n\
             \n  Tool (paste these into Moodle or Canvas)\n\
             \x20   Login URL:     {b}{login}\n\
             \x20   Redirect URL:  {b}{launch}   (also the target link URI and deep-link URL)\n\
             \x20   JWKS URL:      {b}{jwks}\n\
             \x20   Config:        {b}{config}\n\
             \n  Demo platform: {b}/platform  (issuer {b}/platform, client_id {client}, deployment {dep})\n\
             \x20 In an iframe:  http://localhost:{port}/platform > Launch in an iframe (the platform on localhost,\n\
             \x20                the tool on 127.0.0.1: another site, as in an LMS; works with third-party cookies blocked)\n\
             \x20 Other tools:   POST {b}/platform/tools  with JSON {{\"url\": \"<tool base URL>\"}} gives another tool its own\n\
             \x20                client_id (redirect URI <tool>/lti/launch); launch with {b}/platform/launch?user=learner&tool=<id>\n\
             \x20 Demo app:      {b}/app\n\
             \x20 Admin API:     POST {b}/admin/platforms  with  Authorization: Bearer <token>\n\
             \x20 Admin token:   {token_line}\n\
             \x20 Service key:   {service_key_line}\n\
             \x20                (the x-api-key of the app's backend for /lti/ags, /lti/nrps, /lti/deep-link)\n\
             \n  Moodle: Site administration > Plugins > External tool > Manage tools > configure a tool manually:\n\
             \x20   LTI version 1.3, Public key type 'Keyset URL' = JWKS URL, Initiate login URL = Login URL,\n\
             \x20   Redirection URI(s) = Redirect URL. Then register Moodle here with POST /admin/platforms\n\
             \x20   (issuer = Moodle's URL, clientId and deploymentId from Moodle's 'Tool configuration details').\n\
             \x20 Canvas: Developer Keys > + LTI Key: Redirect URIs = Redirect URL, Target Link URI = Redirect URL,\n\
             \x20   OpenID Connect Initiation Url = Login URL, JWK Method 'Public JWK URL' = JWKS URL; then register\n\
             \x20   issuer https://canvas.instructure.com with the key's client id.\n",
            login = paths::LOGIN,
            launch = paths::LAUNCH,
            jwks = paths::JWKS,
            config = paths::CONFIG,
            client = platform::CLIENT_ID,
            port = self.addr.port(),
            dep = platform::DEPLOYMENT_ID,
        )
    }
}

/// Audit lines in the dev server's log.
struct LoggedAudit;

impl lti_core::registration::audit::AuditSink for LoggedAudit {
    fn record(&self, entry: &lti_core::registration::audit::AuditEntry) {
        if let Ok(line) = serde_json::to_string(entry) {
            tracing::info!(target: "audit", "{line}");
        }
    }
}

async fn register_demo_platform(
    store: &FileStore,
    platform: &DemoPlatform,
    config: &ToolConfig,
    app_url: &str,
    now: i64,
) -> Result<(), DevError> {
    // A second registration of the same platform with the direct launch profile.
    let direct = PlatformInput {
        issuer: Some(platform.issuer.clone()),
        client_id: Some(platform::DIRECT_CLIENT_ID.into()),
        name: Some("lti-lambda demo platform (direct launch)".into()),
        auth_login_url: Some(platform.auth_url()),
        auth_token_url: Some(platform.token_url()),
        keyset_url: Some(platform.jwks_url()),
        launch_profile: Some(lti_core::platform::LaunchProfile::Direct),
        audience: Some(platform::DIRECT_AUDIENCE.into()),
        landing_url: Some(app_url.to_string()),
        ..Default::default()
    }
    .validate(now, config)
    .map_err(|e| DevError::Setup(e.to_string()))?;
    store
        .save_platform(direct.platform)
        .await
        .map_err(|e| DevError::Setup(e.to_string()))?;
    let input = PlatformInput {
        issuer: Some(platform.issuer.clone()),
        client_id: Some(platform::CLIENT_ID.into()),
        name: Some("lti-lambda demo platform".into()),
        auth_login_url: Some(platform.auth_url()),
        auth_token_url: Some(platform.token_url()),
        keyset_url: Some(platform.jwks_url()),
        ..Default::default()
    };
    let registration = input
        .validate(now, config)
        .map_err(|e| DevError::Setup(e.to_string()))?;
    store
        .save_platform(registration.platform)
        .await
        .map_err(|e| DevError::Setup(e.to_string()))?;
    store
        .save_deployment(Deployment {
            issuer: platform.issuer.clone(),
            client_id: platform::CLIENT_ID.into(),
            deployment_id: platform::DEPLOYMENT_ID.into(),
            created_at: now,
        })
        .await
        .map_err(|e| DevError::Setup(e.to_string()))
}

async fn dispatch(
    axum::extract::State(inner): axum::extract::State<Arc<Inner>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let n = inner.requests.fetch_add(1, Ordering::Relaxed);
    let request_id = format!("dev-{n:06}-{}", SystemRandom.token(3));
    let (body, too_large) = match axum::body::to_bytes(body, MAX_REQUEST_BODY + 1).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (bytes::Bytes::new(), true),
    };
    let mut request = http::Request::from_parts(parts, body);
    request.extensions_mut().insert(RequestId(request_id));
    // One line per request, as on Lambda (without the metrics).
    let response = lti_http::observe::serve(&RequestLog::Tracing, request, |request| async move {
        if too_large {
            return respond::problem(&request, &RequestError::TooLarge(MAX_REQUEST_BODY));
        }
        let path = request.uri().path();
        if path == "/platform" || path.starts_with("/platform/") {
            let on_localhost = request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h.split(':').next() == Some("localhost"));
            if on_localhost {
                inner.localhost_platform.handle(request).await
            } else {
                inner.platform.handle(request).await
            }
        } else if path == "/app" || path.starts_with("/app/") || path == "/" {
            inner.app.handle(request).await
        } else {
            inner.tool.handle(request).await
        }
    })
    .await;
    response.map(axum::body::Body::from)
}
