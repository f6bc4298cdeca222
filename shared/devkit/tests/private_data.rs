//! The dev server's data folder holds every launched user's name and email and two
//! private keys: only its owner may read it (folder 0700, files 0600), also when the
//! folder or the files were left wider by an earlier version.
#![cfg(unix)]

use lti_core::clock::SystemClock;
use lti_dev::browser::{Browser, Next};
use lti_dev::{DevOptions, DevServer};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

mod common;
use common::TempDir;

const FILES: [&str; 4] = [
    "store.json",
    "tool-key.der",
    "platform-key.der",
    "service-key",
];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn start(data_dir: &Path) -> DevServer {
    DevServer::start(DevOptions {
        port: 0,
        data_dir: data_dir.to_path_buf(),
        admin_token: Some("p".repeat(40)),
        clock: Arc::new(SystemClock),
        settings: vec![],
    })
    .await
    .expect("dev server")
}

/// Launches the demo learner, so the store is written with a user in it.
async fn launch(server: &DevServer) {
    let page = Browser::new()
        .run(Next::Get(format!(
            "{}/platform/launch?user=learner",
            server.base_url
        )))
        .await
        .expect("flow");
    assert_eq!(page.status, 200, "{}", page.body);
}

fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for file in FILES {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !FILES.contains(&name.as_str()))
        .collect();
    assert!(
        left.is_empty(),
        "no other file (no temporary file) left: {left:?}"
    );
}

#[tokio::test]
async fn a_new_data_folder_and_its_files_are_readable_by_their_owner_only() {
    let tmp = TempDir::new("lti-dev-private");
    let dir = tmp.0.join("nested").join("data");
    let server = start(&dir).await;
    launch(&server).await;
    server.stop().await;
    assert_private(&dir);
    let store = std::fs::read_to_string(dir.join("store.json")).expect("store");
    assert!(
        store.contains("lea.learner@demo.example"),
        "the user is stored"
    );
}

#[tokio::test]
async fn a_world_readable_data_folder_and_files_are_narrowed_at_start_and_on_write() {
    let tmp = TempDir::new("lti-dev-private");
    let dir = tmp.0.join("data");
    start(&dir).await.stop().await;
    // As an earlier version left them: folder 0755, files 0644, and a temporary file
    // from an interrupted write.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for file in FILES {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let tmp_file = dir.join("store.json.tmp");
    std::fs::write(&tmp_file, b"{}").expect("tmp");
    std::fs::set_permissions(&tmp_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let server = start(&dir).await;
    assert_eq!(mode(&dir), 0o700);
    for file in FILES {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file} narrowed at start");
    }
    // The next write goes through the temporary file: it is narrowed before the data
    // is written, and renamed over the store.
    launch(&server).await;
    server.stop().await;
    assert_private(&dir);
}
