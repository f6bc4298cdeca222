//! One function per command: call the API, print a table (or the JSON).

use crate::api::{Api, CliError};
use crate::table;
use crate::PlatformFields;
use http::Method;
use serde_json::{json, Map, Value};

/// How answers are printed.
pub struct Output {
    pub json: bool,
}

impl Output {
    fn json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// Path segment of an id given on the command line.
fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn platform_path(id: &str) -> String {
    format!("admin/platforms/{}", segment(id))
}

/// Every registration, following `nextCursor`.
async fn all_platforms(api: &Api, issuer: Option<&str>) -> Result<Vec<Value>, CliError> {
    let mut platforms = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "200")];
        if let Some(issuer) = issuer {
            query.push(("issuer", issuer));
        }
        if let Some(cursor) = cursor.as_deref() {
            query.push(("cursor", cursor));
        }
        let page = api
            .call(Method::GET, "admin/platforms", &query, None)
            .await?;
        platforms.extend(page["platforms"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(platforms),
        }
    }
}

fn platform_rows(platforms: &[Value]) -> Vec<Vec<String>> {
    platforms
        .iter()
        .map(|p| {
            vec![
                table::text(&p["id"]),
                table::text(&p["issuer"]),
                table::text(&p["clientId"]),
                table::text(&p["name"]),
                table::text(&p["launchProfile"]),
                table::text(&p["acceptNewDeployments"]),
            ]
        })
        .collect()
}

const PLATFORM_HEADER: [&str; 6] = [
    "id",
    "issuer",
    "client id",
    "name",
    "profile",
    "new deployments",
];

pub async fn platforms_list(
    api: &Api,
    out: &Output,
    issuer: Option<String>,
) -> Result<(), CliError> {
    let platforms = all_platforms(api, issuer.as_deref()).await?;
    if out.json {
        out.json(&json!({ "platforms": platforms }));
    } else {
        table::print(&PLATFORM_HEADER, platform_rows(&platforms));
        println!("{} registration(s)", platforms.len());
    }
    Ok(())
}

pub async fn platforms_show(api: &Api, out: &Output, id: &str) -> Result<(), CliError> {
    let platform = api.call(Method::GET, &platform_path(id), &[], None).await?;
    let deployments = api
        .call(
            Method::GET,
            &format!("{}/deployments", platform_path(id)),
            &[],
            None,
        )
        .await?;
    let routes = api
        .call(
            Method::GET,
            &format!("{}/routes", platform_path(id)),
            &[],
            None,
        )
        .await?;
    if out.json {
        out.json(&json!({
            "platform": platform,
            "deployments": deployments["deployments"],
            "routes": routes["routes"],
        }));
        return Ok(());
    }
    show_platform(&platform);
    let ids: Vec<String> = deployments["deployments"]
        .as_array()
        .map(|d| d.iter().map(|d| table::text(&d["deploymentId"])).collect())
        .unwrap_or_default();
    println!(
        "deployments: {}",
        if ids.is_empty() {
            "(none)".into()
        } else {
            ids.join(", ")
        }
    );
    print_routes(&routes["routes"]);
    Ok(())
}

fn show_platform(platform: &Value) {
    let mut rows = Vec::new();
    if let Some(map) = platform.as_object() {
        for (name, value) in map {
            if name == "userIdentity" {
                rows.push(("userIdentity".to_string(), table::text(&value["message"])));
            } else {
                rows.push((name.clone(), table::text(value)));
            }
        }
    }
    table::fields(rows);
}

/// The registration body from the flags (and `--from-json`), flags winning.
fn body_of(fields: PlatformFields) -> Result<Value, CliError> {
    let mut body = match &fields.from_json {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Local(format!("cannot read {}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| CliError::Local(format!("{} is not JSON: {e}", path.display())))?
        }
        None => json!({}),
    };
    let Some(map) = body.as_object_mut() else {
        return Err(CliError::Local(
            "--from-json must hold a JSON object".into(),
        ));
    };
    let strings = [
        ("issuer", fields.issuer),
        ("clientId", fields.client_id),
        ("name", fields.name),
        ("authLoginUrl", fields.auth_login_url),
        ("authTokenUrl", fields.auth_token_url),
        ("keysetUrl", fields.keyset_url),
        ("deploymentId", fields.deployment_id),
        ("tokenAudience", fields.token_audience),
        ("agsEndpoint", fields.ags_endpoint),
        ("nrpsEndpoint", fields.nrps_endpoint),
        ("launchProfile", fields.launch_profile),
        ("audience", fields.audience),
        ("landingUrl", fields.landing_url),
    ];
    for (name, value) in strings {
        if let Some(value) = value {
            map.insert(name.into(), json!(value));
        }
    }
    if let Some(accept) = fields.accept_new_deployments {
        map.insert("acceptNewDeployments".into(), json!(accept));
    }
    Ok(body)
}

pub async fn platforms_add(
    api: &Api,
    out: &Output,
    fields: PlatformFields,
) -> Result<(), CliError> {
    let body = body_of(fields)?;
    let saved = api
        .call(Method::POST, "admin/platforms", &[], Some(&body))
        .await?;
    if out.json {
        out.json(&saved);
    } else {
        show_platform(&saved);
        println!("registered: {}", table::text(&saved["id"]));
    }
    Ok(())
}

pub async fn platforms_update(
    api: &Api,
    out: &Output,
    id: &str,
    fields: PlatformFields,
) -> Result<(), CliError> {
    let body = body_of(fields)?;
    if body.as_object().is_some_and(Map::is_empty) {
        return Err(CliError::Local(
            "nothing to change: give at least one field".into(),
        ));
    }
    let saved = api
        .call(Method::PATCH, &platform_path(id), &[], Some(&body))
        .await?;
    if out.json {
        out.json(&saved);
    } else {
        show_platform(&saved);
        println!("{}", table::text(&saved["message"]));
    }
    Ok(())
}

pub async fn platforms_remove(api: &Api, out: &Output, id: &str) -> Result<(), CliError> {
    let answer = api
        .call(Method::DELETE, &platform_path(id), &[], None)
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        println!(
            "removed {} ({} {}): {} deployment(s), {} routing rule(s).\n{}",
            table::text(&answer["id"]),
            table::text(&answer["issuer"]),
            table::text(&answer["clientId"]),
            table::text(&answer["deploymentsRemoved"]),
            table::text(&answer["routesRemoved"]),
            table::text(&answer["message"]),
        );
    }
    Ok(())
}

pub async fn deployments_list(api: &Api, out: &Output, id: &str) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::GET,
            &format!("{}/deployments", platform_path(id)),
            &[],
            None,
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        let rows = answer["deployments"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| {
                        vec![
                            table::text(&d["deploymentId"]),
                            table::text(&d["createdAt"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        table::print(&["deployment id", "created at"], rows);
    }
    Ok(())
}

pub async fn deployments_add(
    api: &Api,
    out: &Output,
    id: &str,
    deployment_id: &str,
) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::POST,
            &format!("{}/deployments", platform_path(id)),
            &[],
            Some(&json!({ "deploymentId": deployment_id })),
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        println!(
            "deployment {} recorded",
            table::text(&answer["deploymentId"])
        );
    }
    Ok(())
}

pub async fn deployments_remove(
    api: &Api,
    out: &Output,
    id: &str,
    deployment_id: &str,
) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::DELETE,
            &format!(
                "{}/deployments/{}",
                platform_path(id),
                segment(deployment_id)
            ),
            &[],
            None,
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        println!(
            "deployment {deployment_id} removed. {}",
            table::text(&answer["message"])
        );
    }
    Ok(())
}

fn print_routes(routes: &Value) {
    let rows = routes
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    vec![
                        table::text(&r["id"]),
                        table::text(&r["deploymentId"]),
                        table::text(&r["contextId"]),
                        table::text(&r["landingUrl"]),
                        table::text(&r["claims"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table::print(
        &[
            "route id",
            "deployment",
            "course (context id)",
            "landing URL",
            "claims",
        ],
        rows,
    );
}

pub async fn routes_list(api: &Api, out: &Output, id: &str) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::GET,
            &format!("{}/routes", platform_path(id)),
            &[],
            None,
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        print_routes(&answer["routes"]);
    }
    Ok(())
}

/// The flags of `routes add`.
pub struct RouteArgs {
    pub deployment_id: Option<String>,
    pub context_id: Option<String>,
    pub landing_url: Option<String>,
    pub claims: Vec<String>,
}

pub async fn routes_add(
    api: &Api,
    out: &Output,
    id: &str,
    args: RouteArgs,
) -> Result<(), CliError> {
    let mut claims = Map::new();
    for claim in &args.claims {
        let (name, value) = claim
            .split_once('=')
            .ok_or_else(|| CliError::Local(format!("--claim {claim:?} is not name=value")))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        claims.insert(name.trim().to_string(), value);
    }
    let mut body = json!({});
    for (name, value) in [
        ("deploymentId", args.deployment_id),
        ("contextId", args.context_id),
        ("landingUrl", args.landing_url),
    ] {
        if let Some(value) = value {
            body[name] = json!(value);
        }
    }
    if !claims.is_empty() {
        body["claims"] = Value::Object(claims);
    }
    let answer = api
        .call(
            Method::POST,
            &format!("{}/routes", platform_path(id)),
            &[],
            Some(&body),
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        print_routes(&json!([answer]));
        println!("{}", table::text(&answer["message"]));
    }
    Ok(())
}

pub async fn routes_remove(
    api: &Api,
    out: &Output,
    id: &str,
    route_id: &str,
) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::DELETE,
            &format!("{}/routes/{}", platform_path(id), segment(route_id)),
            &[],
            None,
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        println!(
            "routing rule {route_id} removed. {}",
            table::text(&answer["message"])
        );
    }
    Ok(())
}

pub async fn keys_create(api: &Api, out: &Output, name: &str) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::POST,
            "admin/service-keys",
            &[],
            Some(&json!({ "name": name })),
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        println!(
            "service key {} ({}):\n\n  {}\n\n{}",
            table::text(&answer["id"]),
            table::text(&answer["name"]),
            table::text(&answer["key"]),
            table::text(&answer["message"]),
        );
    }
    Ok(())
}

pub async fn keys_list(api: &Api, out: &Output) -> Result<(), CliError> {
    let answer = api
        .call(Method::GET, "admin/service-keys", &[], None)
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        let rows = answer["serviceKeys"]
            .as_array()
            .map(|k| {
                k.iter()
                    .map(|k| {
                        vec![
                            table::text(&k["id"]),
                            table::text(&k["name"]),
                            table::text(&k["createdAt"]),
                            table::text(&k["lastUsedAt"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        table::print(&["id", "name", "created at", "last used at"], rows);
    }
    Ok(())
}

pub async fn keys_revoke(api: &Api, out: &Output, id: &str) -> Result<(), CliError> {
    let answer = api
        .call(
            Method::DELETE,
            &format!("admin/service-keys/{}", segment(id)),
            &[],
            None,
        )
        .await?;
    if out.json {
        out.json(&answer);
    } else {
        println!("{}", table::text(&answer["message"]));
    }
    Ok(())
}

/// The export format's name and version.
const EXPORT_FORMAT: &str = "lti-admin export";
const EXPORT_VERSION: u64 = 1;

/// Fields of a registration an import sends back (not its id or timestamps: the
/// importing tool gives its own; the user scope is kept so app user ids stay).
const REGISTRATION_FIELDS: [&str; 14] = [
    "issuer",
    "clientId",
    "name",
    "authLoginUrl",
    "authTokenUrl",
    "keysetUrl",
    "tokenAudience",
    "acceptNewDeployments",
    "agsEndpoint",
    "nrpsEndpoint",
    "launchProfile",
    "audience",
    "landingUrl",
    "userScope",
];

pub async fn export(
    api: &Api,
    output: Option<std::path::PathBuf>,
    issuer: Option<String>,
) -> Result<(), CliError> {
    let mut exported = Vec::new();
    for platform in all_platforms(api, issuer.as_deref()).await? {
        let id = table::text(&platform["id"]);
        let mut entry = Map::new();
        for field in REGISTRATION_FIELDS {
            if let Some(value) = platform.get(field).filter(|v| !v.is_null()) {
                entry.insert(field.into(), value.clone());
            }
        }
        let deployments = api
            .call(
                Method::GET,
                &format!("{}/deployments", platform_path(&id)),
                &[],
                None,
            )
            .await?;
        entry.insert(
            "deployments".into(),
            json!(deployments["deployments"]
                .as_array()
                .map(|d| d
                    .iter()
                    .map(|d| d["deploymentId"].clone())
                    .collect::<Vec<_>>())
                .unwrap_or_default()),
        );
        let routes = api
            .call(
                Method::GET,
                &format!("{}/routes", platform_path(&id)),
                &[],
                None,
            )
            .await?;
        let routes: Vec<Value> = routes["routes"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| {
                        let mut rule = Map::new();
                        for field in ["deploymentId", "contextId", "landingUrl", "claims"] {
                            if let Some(value) = r.get(field).filter(|v| !v.is_null()) {
                                rule.insert(field.into(), value.clone());
                            }
                        }
                        Value::Object(rule)
                    })
                    .collect()
            })
            .unwrap_or_default();
        entry.insert("routes".into(), json!(routes));
        exported.push(Value::Object(entry));
    }
    let document = json!({
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "platforms": exported,
    });
    let text =
        serde_json::to_string_pretty(&document).map_err(|e| CliError::Local(e.to_string()))?;
    match output {
        Some(path) => {
            std::fs::write(&path, format!("{text}\n"))
                .map_err(|e| CliError::Local(format!("cannot write {}: {e}", path.display())))?;
            eprintln!(
                "exported {} registration(s) to {}",
                exported.len(),
                path.display()
            );
        }
        None => println!("{text}"),
    }
    Ok(())
}

pub async fn import(api: &Api, out: &Output, file: &std::path::Path) -> Result<(), CliError> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| CliError::Local(e.to_string()))?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| CliError::Local(format!("cannot read {}: {e}", file.display())))?
    };
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Local(format!("{} is not JSON: {e}", file.display())))?;
    if document["format"] != EXPORT_FORMAT || document["version"] != EXPORT_VERSION {
        return Err(CliError::Local(format!(
            "{} is not an {EXPORT_FORMAT} of version {EXPORT_VERSION}",
            file.display()
        )));
    }
    let mut report = Vec::new();
    let mut failed = 0;
    for entry in document["platforms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let mut body = Map::new();
        for field in REGISTRATION_FIELDS {
            if let Some(value) = entry.get(field) {
                body.insert(field.into(), value.clone());
            }
        }
        let saved = match api
            .call(
                Method::POST,
                "admin/platforms",
                &[],
                Some(&Value::Object(body)),
            )
            .await
        {
            Ok(saved) => saved,
            Err(error) => {
                // One refused registration does not stop the others; the exit code
                // says something was refused.
                eprintln!(
                    "not imported: {} {}: {error}",
                    table::text(&entry["issuer"]),
                    table::text(&entry["clientId"])
                );
                failed += 1;
                continue;
            }
        };
        let id = table::text(&saved["id"]);
        let existing = api
            .call(
                Method::GET,
                &format!("{}/deployments", platform_path(&id)),
                &[],
                None,
            )
            .await?;
        let known: Vec<Value> = existing["deployments"]
            .as_array()
            .map(|d| d.iter().map(|d| d["deploymentId"].clone()).collect())
            .unwrap_or_default();
        let mut deployments_added = 0;
        for deployment in entry["deployments"].as_array().cloned().unwrap_or_default() {
            if known.contains(&deployment) {
                continue;
            }
            api.call(
                Method::POST,
                &format!("{}/deployments", platform_path(&id)),
                &[],
                Some(&json!({ "deploymentId": deployment })),
            )
            .await?;
            deployments_added += 1;
        }
        let existing = api
            .call(
                Method::GET,
                &format!("{}/routes", platform_path(&id)),
                &[],
                None,
            )
            .await?;
        let existing = existing["routes"].as_array().cloned().unwrap_or_default();
        let mut routes_added = 0;
        for rule in entry["routes"].as_array().cloned().unwrap_or_default() {
            let same_key = |r: &&Value| {
                r["deploymentId"] == rule["deploymentId"] && r["contextId"] == rule["contextId"]
            };
            if let Some(current) = existing.iter().find(same_key) {
                let same = current["landingUrl"] == rule["landingUrl"]
                    && current.get("claims").cloned().unwrap_or(json!({}))
                        == rule.get("claims").cloned().unwrap_or(json!({}));
                if same {
                    continue;
                }
                // Another rule for the same deployment and course: the export wins.
                api.call(
                    Method::DELETE,
                    &format!(
                        "{}/routes/{}",
                        platform_path(&id),
                        segment(&table::text(&current["id"]))
                    ),
                    &[],
                    None,
                )
                .await?;
            }
            api.call(
                Method::POST,
                &format!("{}/routes", platform_path(&id)),
                &[],
                Some(&rule),
            )
            .await?;
            routes_added += 1;
        }
        report.push(json!({
            "id": id,
            "issuer": saved["issuer"],
            "clientId": saved["clientId"],
            "created": saved.get("message").is_none(),
            "unchanged": saved["unchanged"] == true,
            "deploymentsAdded": deployments_added,
            "routesAdded": routes_added,
        }));
    }
    if out.json {
        out.json(&json!({ "imported": report }));
    } else {
        let rows = report
            .iter()
            .map(|r| {
                vec![
                    table::text(&r["id"]),
                    table::text(&r["issuer"]),
                    table::text(&r["clientId"]),
                    if r["created"] == true {
                        "created"
                    } else if r["unchanged"] == true {
                        "unchanged"
                    } else {
                        "updated"
                    }
                    .to_string(),
                    table::text(&r["deploymentsAdded"]),
                    table::text(&r["routesAdded"]),
                ]
            })
            .collect();
        table::print(
            &[
                "id",
                "issuer",
                "client id",
                "registration",
                "deployments added",
                "routes added",
            ],
            rows,
        );
    }
    if failed > 0 {
        return Err(CliError::Api {
            status: 400,
            code: "IMPORT_INCOMPLETE".into(),
            message: format!(
                "{failed} registration(s) were refused (above); the others were imported"
            ),
            fields: vec![],
        });
    }
    Ok(())
}

pub async fn config(
    api: &Api,
    out: &Output,
    canvas: bool,
    issuer: Option<String>,
    client_id: Option<String>,
) -> Result<(), CliError> {
    if canvas {
        let answer = api
            .call(Method::GET, "lti/config/canvas.json", &[], None)
            .await?;
        out.json(&answer);
        return Ok(());
    }
    let mut query = Vec::new();
    if let (Some(issuer), Some(client_id)) = (issuer.as_deref(), client_id.as_deref()) {
        query.push(("issuer", issuer));
        query.push(("clientId", client_id));
    }
    let answer = api.call(Method::GET, "lti/config", &query, None).await?;
    if out.json {
        out.json(&answer);
        return Ok(());
    }
    println!("The tool");
    table::fields(
        [
            ("Login (OIDC initiation) URL", "loginUrl"),
            ("Redirect URI / launch URL", "redirectUrl"),
            ("Target link URI", "targetLinkUri"),
            ("Deep linking URL", "deepLinkUrl"),
            ("Public keyset (JWKS) URL", "jwksUrl"),
            ("Domain", "domain"),
            ("Canvas JSON URL (\"Enter URL\")", "canvasConfigUrl"),
            (
                "Registration URL (Dynamic Registration)",
                "dynamicRegistrationUrl",
            ),
        ]
        .into_iter()
        .map(|(label, key)| (label.to_string(), table::text(&answer[key])))
        .collect(),
    );
    println!("\nMoodle: Site administration > Plugins > Activity modules > External tool > Manage tools > configure a tool manually");
    table::fields(
        answer["moodle"]
            .as_array()
            .map(|f| {
                f.iter()
                    .map(|f| (table::text(&f["field"]), table::text(&f["value"])))
                    .collect()
            })
            .unwrap_or_default(),
    );
    if let Some(direct) = answer.get("directLaunch") {
        println!("\nDirect launch ({})", issuer.unwrap_or_default());
        table::fields(
            ["launchUrl", "audience", "landingUrl"]
                .into_iter()
                .map(|k| (k.to_string(), table::text(&direct[k])))
                .collect(),
        );
    }
    println!("\nCanvas: Developer Keys > + Developer Key > LTI Key > Method \"Enter URL\" with the Canvas JSON URL above (or \"Paste JSON\": lti-admin config --canvas); Redirect URIs = the launch URL.");
    Ok(())
}
