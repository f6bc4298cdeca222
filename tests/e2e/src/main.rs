//! `lti-gateway --port P --lambda-url URL`: the local stand-in for API Gateway in front
//! of `cargo lambda watch`, with the demo platform and demo app beside it, as a process
//! of its own (tests/run.sh points the interoperability suite at it).

use lti_core::clock::SystemClock;
use lti_core::signer::LocalRsaSigner;
use lti_dev::app::DemoApp;
use lti_dev::platform::DemoPlatform;
use std::sync::Arc;

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    args.position(|a| a == name).and_then(|_| args.next())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (Some(port), Some(lambda_url)) = (
        arg("--port").and_then(|p| p.parse::<u16>().ok()),
        arg("--lambda-url"),
    ) else {
        eprintln!("usage: lti-gateway --port PORT --lambda-url http://127.0.0.1:9000");
        return std::process::ExitCode::from(2);
    };
    let base = format!("http://127.0.0.1:{port}");
    let key = match LocalRsaSigner::generate() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("lti-gateway: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let fetcher = match lti_outbound::jwks::HttpKeySetFetcher::new(
        lti_core::url_policy::UrlPolicy::ALLOW_LOOPBACK,
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("lti-gateway: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lti-gateway: cannot listen on {base}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let platform = Arc::new(DemoPlatform::new(&base, key, Arc::new(SystemClock)));
    let mut app = DemoApp::new(&base, &base, fetcher);
    // The demo app's backend answers deep-linking requests with LTI_SERVICE_KEY (a key
    // created with the functions' admin API), when given.
    if let Some(key) = std::env::var("LTI_SERVICE_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        app = app.with_service_key(key.trim());
    }
    let server = lti_e2e::serve(listener, lambda_url, platform, app);
    println!("listening on {base}");
    let _ = server.await;
    std::process::ExitCode::SUCCESS
}
