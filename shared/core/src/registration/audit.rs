//! The audit trail of the admin API: one JSON line per change — who (the admin
//! token's fingerprint or the caller's IAM ARN), what, the ids before and after, when.
//! Never a secret: no token, no service key, no key hash.

use serde::Serialize;
use std::sync::Mutex;

/// Who made an admin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum AdminActor {
    /// The admin bearer token, known by the first 8 hex digits of its SHA-256.
    Token { fingerprint: String },
    /// An AWS identity API Gateway authenticated (SigV4, `AWS_IAM` routes).
    Iam {
        arn: String,
        #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
}

impl AdminActor {
    /// The actor for admin token `token`.
    pub fn token(token: &str) -> Self {
        Self::Token {
            fingerprint: fingerprint(token),
        }
    }
}

/// The first 8 hex digits of the SHA-256 of `secret`: enough to tell tokens apart in
/// logs, nothing to guess one from.
pub fn fingerprint(secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One change made through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Always `"audit"`, to filter log lines on.
    pub log: &'static str,
    /// Epoch seconds.
    pub at: i64,
    pub who: AdminActor,
    /// `platform.create`, `platform.update`, `platform.delete`, `deployment.add`,
    /// `deployment.remove`, `route.add`, `route.remove`, `serviceKey.create`,
    /// `serviceKey.revoke`.
    pub action: &'static str,
    /// The registration concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The id of what the change touched before it (`None`: it did not exist).
    pub before: Option<String>,
    /// Its id after the change (`None`: it no longer exists).
    pub after: Option<String>,
    /// Names of the fields an update changed (never their values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    pub request_id: String,
}

impl AuditEntry {
    /// An entry for `action` by `who` at `at`; the rest is filled in by the caller.
    pub fn new(at: i64, who: AdminActor, action: &'static str, request_id: String) -> Self {
        Self {
            log: "audit",
            at,
            who,
            action,
            platform_id: None,
            issuer: None,
            client_id: None,
            before: None,
            after: None,
            changed: vec![],
            request_id,
        }
    }
}

/// Where audit lines go.
pub trait AuditSink: Send + Sync {
    /// Records one change.
    fn record(&self, entry: &AuditEntry);
}

/// Writes each entry as one JSON line on standard output (CloudWatch Logs on Lambda).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutAudit;

impl AuditSink for StdoutAudit {
    fn record(&self, entry: &AuditEntry) {
        use std::io::Write;
        if let Ok(line) = serde_json::to_string(entry) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Keeps the lines in memory (tests, the dev server) and passes them on.
#[derive(Default)]
pub struct MemoryAudit {
    lines: Mutex<Vec<String>>,
    then: Option<Box<dyn AuditSink>>,
}

/// Most lines a [`MemoryAudit`] keeps.
const MEMORY_LINES: usize = 10_000;

impl MemoryAudit {
    /// Keeps lines and also writes them to `then`.
    pub fn forwarding_to(then: Box<dyn AuditSink>) -> Self {
        Self {
            lines: Mutex::default(),
            then: Some(then),
        }
    }

    /// Every line recorded so far (the newest [`MEMORY_LINES`]).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, entry: &AuditEntry) {
        if let Ok(line) = serde_json::to_string(entry) {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() >= MEMORY_LINES {
                lines.remove(0);
            }
            lines.push(line);
        }
        if let Some(then) = &self.then {
            then.record(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_8_hex_digits_and_never_the_token() {
        let token = "admin-token-0123456789-0123456789-abc";
        let f = fingerprint(token);
        assert_eq!(f.len(), 8);
        assert!(f.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!token.contains(&f));
        assert_ne!(f, fingerprint("another-token-0123456789-0123456789"));
    }

    #[test]
    fn an_entry_is_one_json_line() {
        let audit = MemoryAudit::default();
        let mut entry = AuditEntry::new(7, AdminActor::token("t"), "platform.delete", "r-1".into());
        entry.before = Some("id-1".into());
        audit.record(&entry);
        let lines = audit.lines();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(value["who"]["kind"], "token");
        assert_eq!(value["before"], "id-1");
        assert_eq!(value["after"], serde_json::Value::Null);
    }
}
