//! Calls to the admin API: the admin token as bearer, or SigV4 (AWS_IAM routes)
//! with the default AWS credential chain; answers as JSON, refusals as [`CliError`].

use aws_credential_types::provider::ProvideCredentials;
use serde_json::Value;
use std::time::SystemTime;

/// How the CLI authenticates.
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// Requests signed with SigV4 for `execute-api` in `region`.
    Iam {
        credentials: aws_credential_types::Credentials,
        region: String,
    },
}

/// What went wrong; each kind has its own exit code.
#[derive(Debug)]
pub enum CliError {
    /// The API answered with an error: its status, code, sentence and fields.
    Api {
        status: u16,
        code: String,
        message: String,
        fields: Vec<(String, String)>,
    },
    /// The tool could not be reached, or answered something that is not its JSON.
    Transport(String),
    /// A local problem: a file, JSON, arguments.
    Local(String),
}

impl CliError {
    /// The process exit code: 1 refused by the API, 3 unreachable, 4 local.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Api { .. } => 1,
            Self::Transport(_) => 3,
            Self::Local(_) => 4,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api {
                status,
                code,
                message,
                fields,
            } => {
                write!(f, "{message} ({code}, HTTP {status})")?;
                for (field, problem) in fields {
                    write!(f, "\n  - {field}: {problem}")?;
                }
                Ok(())
            }
            Self::Transport(text) | Self::Local(text) => f.write_str(text),
        }
    }
}

/// The admin API of one tool.
pub struct Api {
    base: url::Url,
    auth: Auth,
    http: reqwest::Client,
}

impl Api {
    /// The API at `base` (the tool's base URL).
    pub fn new(base: &str, auth: Auth) -> Result<Self, CliError> {
        let mut base = url::Url::parse(base.trim())
            .map_err(|e| CliError::Local(format!("--url is not a URL: {e}")))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("lti-admin/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::Transport(e.to_string()))?;
        Ok(Self { base, auth, http })
    }

    /// The absolute URL of `path` (`admin/platforms`, no leading slash) with `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<url::Url, CliError> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| CliError::Local(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Calls `method path?query` with an optional JSON body; the JSON answer.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = self.url(path, query)?;
        let body = match body {
            Some(value) => serde_json::to_vec(value).map_err(|e| CliError::Local(e.to_string()))?,
            None => Vec::new(),
        };
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .header("accept", "application/json");
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let mut request = request
            .body(body)
            .map_err(|e| CliError::Local(e.to_string()))?;
        match &self.auth {
            Auth::Token(token) => {
                let value =
                    http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                        CliError::Local("the admin token is not a valid header value".into())
                    })?;
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
            Auth::Iam {
                credentials,
                region,
            } => sign(&mut request, credentials, region)?,
        }
        let (parts, body) = request.into_parts();
        let mut outgoing = self.http.request(method, url.as_str()).body(body);
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name, value);
        }
        let response = outgoing
            .send()
            .await
            .map_err(|e| CliError::Transport(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Transport(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| {
            CliError::Transport(format!(
                "HTTP {status} from {url}, not the admin API's JSON: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let error = &value["error"];
        Err(CliError::Api {
            status,
            code: error["code"].as_str().unwrap_or("UNKNOWN").to_string(),
            message: error["message"]
                .as_str()
                .unwrap_or("The API refused the request.")
                .to_string(),
            fields: error["fields"]
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .map(|f| {
                            (
                                f["field"].as_str().unwrap_or("").to_string(),
                                f["message"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Credentials from the default AWS chain (environment, profile, SSO, instance role),
/// and the region from `--region` or the same chain.
pub async fn iam_auth(region: Option<String>) -> Result<Auth, CliError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = region
        .or_else(|| config.region().map(|r| r.to_string()))
        .ok_or_else(|| CliError::Local("--iam needs a region: --region or AWS_REGION".into()))?;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| CliError::Local("no AWS credentials provider is configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| CliError::Local(format!("no AWS credentials: {e}")))?;
    Ok(Auth::Iam {
        credentials,
        region,
    })
}

/// Signs `request` with SigV4 for API Gateway (`execute-api`).
fn sign(
    request: &mut http::Request<Vec<u8>>,
    credentials: &aws_credential_types::Credentials,
    region: &str,
) -> Result<(), CliError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CliError::Local(format!("cannot sign: {e}")))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| CliError::Local(format!("cannot sign: {e}")))?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| CliError::Local(format!("cannot sign: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_carries_a_sigv4_authorization_for_execute_api() {
        let mut request = http::Request::builder()
            .method("GET")
            .uri("https://abc123.execute-api.us-east-1.amazonaws.com/admin/platforms?limit=2")
            .body(Vec::new())
            .expect("request");
        let credentials = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        );
        sign(&mut request, &credentials, "us-east-1").expect("signed");
        let authorization = request.headers()["authorization"].to_str().expect("ascii");
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential="));
        assert!(authorization.contains("/us-east-1/execute-api/aws4_request"));
        assert!(request.headers().contains_key("x-amz-date"));
        assert!(request.headers().contains_key("x-amz-security-token"));
    }
}
