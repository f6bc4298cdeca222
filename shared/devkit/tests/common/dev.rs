//! A dev server for HTTP-level tests: its own data folder, a known admin token and a
//! clock the test moves.
#![allow(dead_code)]

use super::TempDir;
use lti_core::clock::{Clock, FixedClock, SystemClock};
use lti_dev::{DevOptions, DevServer};
use std::sync::Arc;

pub const ADMIN: &str = "test-admin-token-0123456789abcdefghijkl";

pub struct Dev {
    pub server: DevServer,
    pub clock: Arc<FixedClock>,
    /// `http://127.0.0.1:<port>`
    pub tool: String,
    _dir: TempDir,
}

impl Dev {
    /// A dev server with default settings.
    pub async fn start() -> Self {
        Self::with_settings(&[]).await
    }

    /// A dev server with configuration variables set for it alone.
    pub async fn with_settings(settings: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("lti-dev-http");
        let clock = Arc::new(FixedClock::at(SystemClock.now()));
        let server = DevServer::start(DevOptions {
            port: 0,
            data_dir: dir.0.clone(),
            admin_token: Some(ADMIN.into()),
            clock: clock.clone(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .await
        .expect("dev server");
        let tool = server.base_url.clone();
        Self {
            server,
            clock,
            tool,
            _dir: dir,
        }
    }

    /// The data folder.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.0.clone()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
