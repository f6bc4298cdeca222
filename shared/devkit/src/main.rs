//! `cargo run -p lti-dev -- [--port 3000] [--data-dir ./.lti-dev]`

use lti_core::clock::SystemClock;
use lti_dev::{DevOptions, DevServer};
use std::path::PathBuf;
use std::sync::Arc;

const USAGE: &str = "usage: lti-dev [--port PORT] [--data-dir DIR]\n\
  --port PORT      port on 127.0.0.1 (default 3000; 0 picks a free one)\n\
  --data-dir DIR   where registrations, users and keys are kept (default ./.lti-dev)\n\
  LTI_ADMIN_TOKEN  admin API token (at least 32 characters; generated if unset)";

fn parse_args() -> Result<(u16, PathBuf), String> {
    let mut port = 3000u16;
    let mut data_dir = PathBuf::from(".lti-dev");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = value.parse().map_err(|_| {
                    format!("--port must be a number from 0 to 65535, not {value:?}")
                })?;
            }
            "--data-dir" => {
                data_dir = PathBuf::from(args.next().ok_or("--data-dir needs a value")?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((port, data_dir))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        // Colours for a terminal only, not for a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let (port, data_dir) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("lti-dev: {message}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let admin_token = std::env::var("LTI_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let server = match DevServer::start(DevOptions {
        port,
        data_dir,
        admin_token,
        clock: Arc::new(SystemClock),
        settings: vec![],
    })
    .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("lti-dev: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", server.banner());
    println!("listening on {}", server.base_url);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            println!("stopping");
            server.stop().await;
        }
        _ = wait_for_term() => {
            server.stop().await;
        }
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(unix)]
async fn wait_for_term() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn wait_for_term() {
    std::future::pending::<()>().await
}
