//! Connections go only to addresses the tool's URL rules allow: names are resolved
//! here and every refused address (private, link-local, loopback outside local runs)
//! is dropped before connecting.

use lti_core::url_policy::UrlPolicy;
use std::net::SocketAddr;

/// Resolves names with the system resolver and keeps only the addresses `policy`
/// allows, so the connection can only go there.
pub(crate) struct PolicyResolver {
    pub(crate) policy: UrlPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let allowed = resolve_allowed(policy, &host).await?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses `host` resolves to that `policy` allows ([`UrlPolicy::check_ip`]);
/// an error when it resolves only to refused ones. What the fetcher connects to.
pub async fn resolve_allowed(policy: UrlPolicy, host: &str) -> Result<Vec<SocketAddr>, String> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("{host} could not be resolved: {e}"))?
        .collect();
    let allowed: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|a| policy.check_ip(a.ip()).is_ok())
        .collect();
    if allowed.is_empty() && !resolved.is_empty() {
        return Err(format!(
            "{host} resolves only to addresses the URL rules refuse (private, link-local \
             or loopback)"
        ));
    }
    Ok(allowed)
}
