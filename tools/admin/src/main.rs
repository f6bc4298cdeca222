//! `lti-admin`: connect, correct and remove LMS platforms from the command line,
//! through the tool's admin API.
//!
//! Exit codes: 0 done; 1 the API refused (its sentence and code are printed);
//! 2 wrong usage; 3 the tool could not be reached or did not answer as the admin API;
//! 4 a local problem (a file, JSON, credentials).

mod api;
mod commands;
mod table;

use api::{Api, Auth, CliError};
use clap::{Args, Parser, Subcommand};

/// The command line of the lti-lambda admin API.
#[derive(Parser)]
#[command(name = "lti-admin", version, about, long_about = None)]
struct Cli {
    /// The tool's base URL (the stack's BaseUrl output, or the dev server's URL).
    #[arg(
        long,
        env = "LTI_ADMIN_URL",
        global = true,
        default_value = "http://127.0.0.1:3000"
    )]
    url: String,
    /// The admin token (or set LTI_ADMIN_TOKEN).
    #[arg(long, env = "LTI_ADMIN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Sign requests with AWS SigV4 (stacks deployed with AdminAuth=iam), with the
    /// default AWS credential chain.
    #[arg(long, global = true)]
    iam: bool,
    /// The AWS region for --iam (default: the AWS configuration's).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Platform registrations.
    #[command(subcommand)]
    Platforms(Box<PlatformsCommand>),
    /// Deployment ids of a registration.
    #[command(subcommand)]
    Deployments(DeploymentsCommand),
    /// Per-course routing rules of a registration.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Service keys of the app's backend.
    #[command(subcommand, name = "service-keys")]
    ServiceKeys(ServiceKeysCommand),
    /// Every registration with its deployments and routing rules, as JSON.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// Only the registrations of this issuer.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Registrations from an export (idempotent: run it twice, change nothing).
    Import {
        /// The export file (`-` for standard input).
        file: std::path::PathBuf,
    },
    /// The values to paste into an LMS (Moodle fields, Canvas JSON, URLs).
    Config {
        /// Only the Canvas developer-key JSON.
        #[arg(long)]
        canvas: bool,
        /// With --client-id: the values a direct-launch platform asks for.
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum PlatformsCommand {
    /// Every registration (all pages), or one issuer's.
    List {
        #[arg(long)]
        issuer: Option<String>,
    },
    /// One registration with its deployments and routing rules.
    Show { id: String },
    /// Registers a platform (or updates the one with the same issuer and client id).
    Add(PlatformFields),
    /// Changes fields of a registration (the others stay).
    Update {
        id: String,
        #[command(flatten)]
        fields: PlatformFields,
    },
    /// Deletes a registration, its deployments and routing rules.
    Remove { id: String },
}

/// Registration fields; a JSON file may give them all (`--from-json`).
#[derive(Args, Default)]
pub struct PlatformFields {
    /// A JSON file with the registration (the admin API's field names).
    #[arg(long)]
    from_json: Option<std::path::PathBuf>,
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    auth_login_url: Option<String>,
    #[arg(long)]
    auth_token_url: Option<String>,
    #[arg(long)]
    keyset_url: Option<String>,
    /// A deployment id to record with it.
    #[arg(long)]
    deployment_id: Option<String>,
    /// `aud` of client assertions when it is not the token URL (Brightspace).
    #[arg(long)]
    token_audience: Option<String>,
    /// Accept and record deployment ids not registered yet (true or false).
    #[arg(long)]
    accept_new_deployments: Option<bool>,
    #[arg(long)]
    ags_endpoint: Option<String>,
    #[arg(long)]
    nrps_endpoint: Option<String>,
    /// `standard` or `direct`.
    #[arg(long)]
    launch_profile: Option<String>,
    /// The audience of direct launches.
    #[arg(long)]
    audience: Option<String>,
    /// Where direct launches land.
    #[arg(long)]
    landing_url: Option<String>,
}

#[derive(Subcommand)]
enum DeploymentsCommand {
    List {
        platform_id: String,
    },
    Add {
        platform_id: String,
        deployment_id: String,
    },
    Remove {
        platform_id: String,
        deployment_id: String,
    },
}

#[derive(Subcommand)]
enum RoutesCommand {
    List {
        platform_id: String,
    },
    /// Adds a rule: launches of the deployment and/or course land at the URL, with
    /// the claims in the app token's `lti.route.claims`.
    Add {
        platform_id: String,
        #[arg(long)]
        deployment_id: Option<String>,
        #[arg(long)]
        context_id: Option<String>,
        #[arg(long)]
        landing_url: Option<String>,
        /// A claim, `name=value` (a value that is JSON — a number, true — is kept as
        /// such); repeat for several.
        #[arg(long = "claim")]
        claims: Vec<String>,
    },
    Remove {
        platform_id: String,
        route_id: String,
    },
}

#[derive(Subcommand)]
enum ServiceKeysCommand {
    Create { name: String },
    List,
    Revoke { id: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let auth = if cli.iam {
        api::iam_auth(cli.region.clone()).await?
    } else {
        Auth::Token(cli.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            CliError::Local(
                "no admin token: set LTI_ADMIN_TOKEN or pass --token (or --iam on an AWS_IAM stack)"
                    .into(),
            )
        })?)
    };
    let api = Api::new(&cli.url, auth)?;
    let out = commands::Output { json: cli.json };
    use commands as c;
    match cli.command {
        Command::Platforms(command) => match *command {
            PlatformsCommand::List { issuer } => c::platforms_list(&api, &out, issuer).await,
            PlatformsCommand::Show { id } => c::platforms_show(&api, &out, &id).await,
            PlatformsCommand::Add(fields) => c::platforms_add(&api, &out, fields).await,
            PlatformsCommand::Update { id, fields } => {
                c::platforms_update(&api, &out, &id, fields).await
            }
            PlatformsCommand::Remove { id } => c::platforms_remove(&api, &out, &id).await,
        },
        Command::Deployments(command) => match command {
            DeploymentsCommand::List { platform_id } => {
                c::deployments_list(&api, &out, &platform_id).await
            }
            DeploymentsCommand::Add {
                platform_id,
                deployment_id,
            } => c::deployments_add(&api, &out, &platform_id, &deployment_id).await,
            DeploymentsCommand::Remove {
                platform_id,
                deployment_id,
            } => c::deployments_remove(&api, &out, &platform_id, &deployment_id).await,
        },
        Command::Routes(command) => match command {
            RoutesCommand::List { platform_id } => c::routes_list(&api, &out, &platform_id).await,
            RoutesCommand::Add {
                platform_id,
                deployment_id,
                context_id,
                landing_url,
                claims,
            } => {
                c::routes_add(
                    &api,
                    &out,
                    &platform_id,
                    c::RouteArgs {
                        deployment_id,
                        context_id,
                        landing_url,
                        claims,
                    },
                )
                .await
            }
            RoutesCommand::Remove {
                platform_id,
                route_id,
            } => c::routes_remove(&api, &out, &platform_id, &route_id).await,
        },
        Command::ServiceKeys(command) => match command {
            ServiceKeysCommand::Create { name } => c::keys_create(&api, &out, &name).await,
            ServiceKeysCommand::List => c::keys_list(&api, &out).await,
            ServiceKeysCommand::Revoke { id } => c::keys_revoke(&api, &out, &id).await,
        },
        Command::Export { output, issuer } => c::export(&api, output, issuer).await,
        Command::Import { file } => c::import(&api, &out, &file).await,
        Command::Config {
            canvas,
            issuer,
            client_id,
        } => c::config(&api, &out, canvas, issuer, client_id).await,
    }
}
