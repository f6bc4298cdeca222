//! `lti-aws-proxy --port P --target URL [--delay-ms N]`: the delaying, recording
//! proxy of [`lti_e2e::aws_proxy`] as a process of its own, for the Lambda binaries
//! (give them its URL as `AWS_ENDPOINT_URL`). Prints `listening on URL` once ready.

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    args.position(|a| a == name).and_then(|_| args.next())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (Some(port), Some(target)) = (
        arg("--port").and_then(|p| p.parse::<u16>().ok()),
        arg("--target"),
    ) else {
        eprintln!(
            "usage: lti-aws-proxy --port PORT --target http://127.0.0.1:5000 [--delay-ms 10]"
        );
        return std::process::ExitCode::from(2);
    };
    let delay = match arg("--delay-ms").map(|d| d.parse::<u64>()) {
        None => 0,
        Some(Ok(ms)) => ms,
        Some(Err(_)) => {
            eprintln!("lti-aws-proxy: --delay-ms takes a whole number of milliseconds");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("lti-aws-proxy: cannot listen on port {port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on http://127.0.0.1:{port} (to {target}, every call held {delay} ms)");
    let _ =
        lti_e2e::aws_proxy::serve(listener, target, std::time::Duration::from_millis(delay)).await;
    std::process::ExitCode::SUCCESS
}
