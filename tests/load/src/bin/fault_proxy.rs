//! `lti-fault-proxy --port P --target URL`: the fault-injecting AWS proxy
//! (`lti_dev::faults`) as a process, for the Lambda binaries under cargo lambda
//! (their `AWS_ENDPOINT_URL`). Faults are set with `POST /__faults` and cleared with
//! `DELETE /__faults`. Prints `listening on URL` once ready.

#[tokio::main]
async fn main() {
    let mut port = 0u16;
    let mut target = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "--target" => target = args.next(),
            _ => {
                eprintln!("usage: lti-fault-proxy --port P --target URL");
                std::process::exit(2);
            }
        }
    }
    let Some(target) = target else {
        eprintln!("usage: lti-fault-proxy --port P --target URL");
        std::process::exit(2);
    };
    match lti_dev::faults::FaultProxy::start(&target, port).await {
        Ok(proxy) => {
            println!("listening on {}", proxy.url);
            std::future::pending::<()>().await;
        }
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    }
}
