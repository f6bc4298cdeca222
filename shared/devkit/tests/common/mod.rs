//! What the dev server's test files share.

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system's temp dir.
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
pub mod dev;
pub mod lms;

/// The claims of the app token handed off by the last launch `browser` went
/// through (its auto-submitted form).
#[allow(dead_code)]
pub fn last_app_token_claims(browser: &lti_dev::browser::Browser) -> serde_json::Value {
    let handoff = browser
        .hops
        .iter()
        .rev()
        .find(|p| p.url.ends_with("/lti/launch") && p.status == 200)
        .expect("a launch response");
    let form = lti_dev::browser::first_form(&handoff.body).expect("auto-submit form");
    let token = form.field("app_token").expect("app_token");
    lti_core::jwt::decode_part(token.split('.').nth(1).expect("payload")).expect("claims")
}
