//! Creates the table and the signing key the way template.yaml does, on whatever
//! AWS_ENDPOINT_URL points at (a moto server in tests/run.sh).
//!
//! `cargo run -p lti-aws --example provision -- <table> <key-alias>` prints the key id.

use lti_aws::functions::Clients;
use lti_aws::provision;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let (Some(table), Some(alias)) = (args.next(), args.next()) else {
        eprintln!("usage: provision <table> <key-alias>");
        std::process::exit(2);
    };
    let clients = Clients::from_env(None).await;
    provision::create_table(&clients.dynamodb, &table).await?;
    let key_id = provision::create_signing_key(&clients.kms, &alias).await?;
    println!("{key_id}");
    Ok(())
}
