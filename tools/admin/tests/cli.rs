//! The `lti-admin` binary against running dev servers: add, list, deployments and
//! routes, export, import into a fresh server (twice: nothing changes the second
//! time), remove; errors shown as their sentence and code, with exit codes.

use lti_core::clock::SystemClock;
use lti_dev::{DevOptions, DevServer};
use serde_json::Value;
use std::process::Output;
use std::sync::Arc;

const ADMIN: &str = "cli-admin-token-0123456789abcdefghijkl";

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(prefix: &str) -> Dir {
    let path = std::env::temp_dir()
        .join(format!("{prefix}-{}", std::process::id()))
        .join(format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
    std::fs::create_dir_all(&path).expect("dir");
    Dir(path)
}

async fn server(data: &Dir, name: &str) -> DevServer {
    DevServer::start(DevOptions {
        port: 0,
        data_dir: data.0.join(name),
        admin_token: Some(ADMIN.into()),
        clock: Arc::new(SystemClock),
        settings: vec![(
            "LTI_ALLOWED_APP_ORIGINS".into(),
            "https://scenarios.example".into(),
        )],
    })
    .await
    .expect("dev server")
}

/// Runs `lti-admin` with `args` against `url` (the token from the environment).
async fn cli(url: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lti-admin"));
    command
        .args(args)
        .env("LTI_ADMIN_URL", url)
        .env("LTI_ADMIN_TOKEN", ADMIN)
        .env_remove("AWS_ENDPOINT_URL");
    command.output().await.expect("lti-admin runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "lti-admin failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        stdout(output)
    );
    stdout(output)
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).expect("JSON on standard output")
}

#[tokio::test]
async fn an_administrator_connects_exports_imports_and_removes_a_platform_with_the_cli() {
    let data = dir("lti-admin-cli");
    let first = server(&data, "first").await;
    let url = first.base_url.clone();
    let issuer = "https://moodle.example.edu";

    // add
    let added = json(
        &cli(
            &url,
            &[
                "--json",
                "platforms",
                "add",
                "--issuer",
                issuer,
                "--client-id",
                "Xy12",
                "--name",
                "Moodle",
                "--auth-login-url",
                "https://moodle.example.edu/mod/lti/auth.php",
                "--auth-token-url",
                "https://moodle.example.edu/mod/lti/token.php",
                "--keyset-url",
                "https://moodle.example.edu/mod/lti/certs.php",
                "--deployment-id",
                "1",
            ],
        )
        .await,
    );
    let id = added["id"].as_str().expect("id").to_string();
    // A wrong deployment fixed: add the right one, remove the wrong one.
    ok(&cli(&url, &["deployments", "add", &id, "2"]).await);
    ok(&cli(&url, &["deployments", "remove", &id, "1"]).await);
    ok(&cli(
        &url,
        &[
            "routes",
            "add",
            &id,
            "--context-id",
            "sales",
            "--landing-url",
            "https://scenarios.example/sales",
            "--claim",
            "scenarioCode=SALES-1",
            "--claim",
            "groupId=7",
        ],
    )
    .await);
    ok(&cli(&url, &["platforms", "update", &id, "--name", "Moodle 4.5"]).await);

    // list: a readable table, and JSON for scripts
    let table = ok(&cli(&url, &["platforms", "list", "--issuer", issuer]).await);
    assert!(
        table.contains("Moodle 4.5") && table.contains("Xy12") && table.contains(&id),
        "{table}"
    );
    let listed = json(&cli(&url, &["--json", "platforms", "list"]).await);
    assert!(listed["platforms"]
        .as_array()
        .expect("list")
        .iter()
        .any(|p| p["id"] == id.as_str()));
    let shown = ok(&cli(&url, &["platforms", "show", &id]).await);
    assert!(
        shown.contains("deployments: 2") && shown.contains("SALES-1"),
        "{shown}"
    );

    // export
    let file = data.0.join("export.json");
    // (The dev server's own demo platform is its own: only the Moodle moves.)
    ok(&cli(
        &url,
        &[
            "export",
            "--issuer",
            issuer,
            "--output",
            file.to_str().expect("path"),
        ],
    )
    .await);
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("file")).expect("json");
    let moodle = exported["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .find(|p| p["issuer"] == issuer)
        .expect("exported")
        .clone();
    assert_eq!(moodle["deployments"], serde_json::json!(["2"]));
    assert_eq!(
        moodle["routes"][0]["claims"],
        serde_json::json!({"scenarioCode": "SALES-1", "groupId": 7})
    );
    assert!(
        moodle.get("id").is_none(),
        "ids belong to the tool that made them"
    );

    // import into a fresh server, twice
    let fresh = server(&data, "fresh").await;
    let imported = json(
        &cli(
            &fresh.base_url,
            &["--json", "import", file.to_str().expect("path")],
        )
        .await,
    );
    let row = imported["imported"]
        .as_array()
        .expect("report")
        .iter()
        .find(|r| r["issuer"] == issuer)
        .expect("imported")
        .clone();
    assert_eq!(
        (
            row["deploymentsAdded"].as_u64(),
            row["routesAdded"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let first_id = row["id"].as_str().expect("id").to_string();
    let shown = |url: String, id: String| async move {
        json(&cli(&url, &["--json", "platforms", "show", &id]).await)["platform"].clone()
    };
    let before = shown(fresh.base_url.clone(), first_id.clone()).await;
    let again = json(
        &cli(
            &fresh.base_url,
            &["--json", "import", file.to_str().expect("path")],
        )
        .await,
    );
    assert_eq!(
        shown(fresh.base_url.clone(), first_id).await["updatedAt"],
        before["updatedAt"],
        "an unchanged registration is not written again"
    );
    for row in again["imported"].as_array().expect("report") {
        assert_eq!(
            (
                row["deploymentsAdded"].as_u64(),
                row["routesAdded"].as_u64()
            ),
            (Some(0), Some(0)),
            "{row}"
        );
        assert_eq!(row["created"], false);
        assert_eq!(row["unchanged"], true, "{row}");
    }
    let new_id = row["id"].as_str().expect("id").to_string();
    let copy = json(&cli(&fresh.base_url, &["--json", "platforms", "show", &new_id]).await);
    assert_eq!(copy["platform"]["name"], "Moodle 4.5");
    assert_eq!(
        copy["platform"]["userScope"], added["userScope"],
        "the user scope travels, so app user ids stay the same"
    );
    assert_eq!(copy["deployments"][0]["deploymentId"], "2");
    assert_eq!(
        copy["routes"][0]["landingUrl"],
        "https://scenarios.example/sales"
    );

    // remove
    let removed = ok(&cli(&fresh.base_url, &["platforms", "remove", &new_id]).await);
    assert!(
        removed.contains("1 deployment(s), 1 routing rule(s)") && removed.contains("60 seconds"),
        "{removed}"
    );
    let table = ok(&cli(&fresh.base_url, &["platforms", "list"]).await);
    assert!(!table.contains("Xy12"), "{table}");

    // errors: the API's sentence and code, exit code 1; unreachable: 3; no token: 4
    let missing = cli(&fresh.base_url, &["platforms", "show", &new_id]).await;
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("ADMIN_PLATFORM_NOT_FOUND")
            && stderr.contains("No platform registration has this id"),
        "{stderr}"
    );
    let invalid = cli(
        &fresh.base_url,
        &["platforms", "add", "--issuer", "http://x"],
    )
    .await;
    assert_eq!(invalid.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains("ADMIN_INVALID_PLATFORM") && stderr.contains("- clientId: is required"),
        "{stderr}"
    );
    let unreachable = cli("http://127.0.0.1:9", &["platforms", "list"]).await;
    assert_eq!(unreachable.status.code(), Some(3));
    let mut no_token = tokio::process::Command::new(env!("CARGO_BIN_EXE_lti-admin"));
    no_token
        .args(["--url", &url, "platforms", "list"])
        .env_remove("LTI_ADMIN_TOKEN");
    assert_eq!(
        no_token.output().await.expect("runs").status.code(),
        Some(4)
    );

    // config: the values to paste into an LMS
    let config = ok(&cli(&url, &["config"]).await);
    assert!(
        config.contains("Initiate login URL") && config.contains(&format!("{url}/lti/login")),
        "{config}"
    );
    let canvas = json(&cli(&url, &["config", "--canvas"]).await);
    assert_eq!(canvas["oidc_initiation_url"], format!("{url}/lti/login"));

    first.stop().await;
    fresh.stop().await;
}
