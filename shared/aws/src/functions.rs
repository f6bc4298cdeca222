//! What each function builds at cold start: configuration read and checked once, SDK
//! clients made once, outside the handler. A configuration error is kept and answered
//! as 503 on every request (never a panic).

use crate::calls::CallCounter;
use crate::config::AwsConfig;
use crate::dynamo::DynamoStore;
use crate::kms::KmsSigner;
use lti_core::clock::{Clock, SystemClock};
use lti_core::config::{ConfigError, ToolConfig};
use lti_core::keys::PlatformKeys;
use lti_core::launch::Launcher;
use lti_core::login::LoginService;
use lti_core::platform_cache::CachedPlatformStore;
use lti_core::random::SystemRandom;
use lti_http::handlers::{
    not_configured, JwksHandler, LaunchHandler, LoginHandler, ServicesDeps, ServicesHandler,
};
use lti_http::{HttpRequest, HttpResponse};
use lti_outbound::jwks::HttpKeySetFetcher;
use std::sync::Arc;

/// The AWS clients of a function, with an optional call counter on each.
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
}

impl Clients {
    /// Clients from the environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env(counter: Option<CallCounter>) -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_shared(&shared, counter)
    }

    /// Clients from `shared` (tests point it at another endpoint).
    pub fn from_shared(shared: &aws_config::SdkConfig, counter: Option<CallCounter>) -> Self {
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(shared);
        let mut kms = aws_sdk_kms::config::Builder::from(shared);
        if let Some(counter) = counter {
            dynamodb = dynamodb.interceptor(counter.for_service("dynamodb"));
            kms = kms.interceptor(counter.for_service("kms"));
        }
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            kms: aws_sdk_kms::Client::from_conf(kms.build()),
        }
    }
}

/// A function's handler, or the configuration error it answers with.
pub enum Function<H> {
    Ready(H),
    NotConfigured(ConfigError),
}

impl<H> Function<H> {
    /// Answers `request` with `handle` when configured, else 503.
    pub async fn serve<'a, F, Fut>(&'a self, request: HttpRequest, handle: F) -> HttpResponse
    where
        F: FnOnce(&'a H, HttpRequest) -> Fut,
        Fut: std::future::Future<Output = HttpResponse>,
    {
        match self {
            Function::Ready(handler) => handle(handler, request).await,
            Function::NotConfigured(error) => not_configured(&request, error),
        }
    }
}

/// Reads a variable from the process environment; what the binaries pass as `var`.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// How a function reads its configuration (`env` in the binaries, a map in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn config_or_log<T>(built: Result<T, ConfigError>) -> Function<T> {
    match built {
        Ok(handler) => Function::Ready(handler),
        Err(error) => {
            tracing::error!(variable = error.variable, problem = %error.problem, "not configured");
            Function::NotConfigured(error)
        }
    }
}

/// The login function: platforms (cached) and login states.
pub fn login(clients: &Clients, var: Lookup<'_>) -> Function<LoginHandler> {
    config_or_log((|| {
        let config = Arc::new(ToolConfig::from_lookup(var)?);
        let store = Arc::new(DynamoStore::new(
            clients.dynamodb.clone(),
            AwsConfig::table_from(var)?,
        ));
        let clock = clock();
        Ok(LoginHandler {
            service: LoginService {
                config,
                platforms: Arc::new(CachedPlatformStore::new(store.clone(), clock.clone())),
                launches: store,
                clock,
                random: Arc::new(SystemRandom),
            },
        })
    })())
}

/// The launch function: platforms (cached), platform keys (cached), states and users,
/// and the KMS key for the app token.
pub fn launch(clients: &Clients, var: Lookup<'_>) -> Function<LaunchHandler> {
    config_or_log((|| {
        let config = Arc::new(ToolConfig::from_lookup(var)?);
        let aws = AwsConfig::from_lookup(var)?;
        let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), aws.table));
        let fetcher = HttpKeySetFetcher::new(config.url_policy()).map_err(|e| ConfigError {
            variable: "(http client)",
            problem: e.to_string(),
        })?;
        let clock = clock();
        Ok(LaunchHandler {
            launcher: Launcher {
                config,
                platforms: Arc::new(CachedPlatformStore::new(store.clone(), clock.clone())),
                launches: store.clone(),
                keys: Arc::new(
                    PlatformKeys::new(Arc::new(fetcher)).with_shared_cache(store.clone()),
                ),
                signer: Arc::new(
                    KmsSigner::new(
                        clients.kms.clone(),
                        aws.kms_key_id,
                        aws.previous_kms_key_ids,
                    )
                    .with_key_cache(store),
                ),
                clock,
                random: Arc::new(SystemRandom),
            },
        })
    })())
}

/// The jwks function: the KMS key; with the table (`LTI_TABLE_NAME`), it also keeps
/// the active key's public half there for cold launches.
pub fn jwks(clients: &Clients, var: Lookup<'_>) -> Function<JwksHandler> {
    config_or_log((|| {
        let (key, previous) = AwsConfig::key_from(var)?;
        let mut signer = KmsSigner::new(clients.kms.clone(), key, previous);
        if let Ok(table) = AwsConfig::table_from(var) {
            signer =
                signer.with_key_cache(Arc::new(DynamoStore::new(clients.dynamodb.clone(), table)));
        }
        Ok(JwksHandler {
            signer: Arc::new(signer),
        })
    })())
}

/// The services function: configuration, registrations (cached for launch-scoped
/// calls), service keys, what launches recorded, and the KMS key (app tokens are
/// verified with its public half; client assertions and deep-linking responses are
/// signed with it).
pub fn services(clients: &Clients, var: Lookup<'_>) -> Function<ServicesHandler> {
    config_or_log((|| {
        let config = Arc::new(ToolConfig::from_lookup(var)?);
        let aws = AwsConfig::from_lookup(var)?;
        let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), aws.table));
        let clock = clock();
        let http = lti_outbound::ReqwestPlatformHttp::new(config.url_policy()).map_err(|e| {
            ConfigError {
                variable: "(http client)",
                problem: e.to_string(),
            }
        })?;
        Ok(ServicesHandler::new(ServicesDeps {
            config,
            platforms: Arc::new(CachedPlatformStore::new(store.clone(), clock.clone())),
            service_key_store: store.clone(),
            records: store.clone(),
            http: Arc::new(http),
            token_cache: store.clone(),
            users: store,
            signer: Arc::new(KmsSigner::new(
                clients.kms.clone(),
                aws.kms_key_id,
                aws.previous_kms_key_ids,
            )),
            clock,
            random: Arc::new(SystemRandom),
        }))
    })())
}
