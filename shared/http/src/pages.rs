//! HTML pages: the auto-submitting form (launch hand-off, demo platform), the error
//! page, and the pages of launches without the state cookie (platform storage, new
//! window). maud escapes every interpolated value; the only scripts are the constants
//! below, allowed by their SHA-256 in the CSP (no inline handlers, no `eval`).

use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::sync::OnceLock;

/// The auto-submit script: submit the first form on load.
const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// The script of the page that ends a Dynamic Registration (LTI Dynamic Registration
/// 1.0 §3.7): tells the platform's window — the opener of a popup, else the parent of
/// an iframe — that the tool is done, at load and when the Close button is pressed.
/// The message carries nothing secret, so any origin may receive it.
pub const REGISTRATION_CLOSE: &str = "(function(){var w=window.opener||(window.parent!==window?window.parent:null);function done(){if(w){w.postMessage({subject:\"org.imsglobal.lti.close\"},\"*\");}}done();var b=document.getElementById(\"close\");if(b){b.addEventListener(\"click\",done);}})();";

/// The platform-storage script (LTI Client Side postMessages / postMessage Storage),
/// for the login page (`#lti-storage-login`: `lti.capabilities`, then `lti.put_data` of
/// state and nonce, then on to the authorization endpoint) and the launch page
/// (`#lti-storage-launch`: `lti.get_data` of the state, then the launch posted again
/// with the proof, or with `lti_storage_failed`). Its parameters are `data-`
/// attributes. An answer counts only if it comes from the window the request went to
/// (`event.source`), from the platform's origin (`event.origin`; any origin only for
/// `lti.capabilities`, which carries no data), with the request's `message_id` and
/// subject; requests with data go only to the platform's origin, never `*`.
pub const STORAGE_SCRIPT: &str = include_str!("storage.js");

/// CSP source (`'sha256-…'`) of an inline script.
pub fn script_hash(script: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// CSP sources of the tool's inline scripts ([`AUTO_SUBMIT`], [`REGISTRATION_CLOSE`],
/// [`STORAGE_SCRIPT`]): their SHA-256, so no other inline script may run.
fn script_hashes() -> &'static str {
    static HASHES: OnceLock<String> = OnceLock::new();
    HASHES.get_or_init(|| {
        format!(
            "{} {} {}",
            script_hash(AUTO_SUBMIT),
            script_hash(REGISTRATION_CLOSE),
            script_hash(STORAGE_SCRIPT)
        )
    })
}

/// Content-Security-Policy of the tool's pages: no scripts but the tool's own (by
/// hash), no inline event handlers.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'",
        script_hashes()
    )
}

/// The CSP `frame-ancestors` directive for `sources` (origins or `https://*.host`
/// wildcards); `'self'` alone when there are none.
pub fn frame_ancestors(sources: &[String]) -> String {
    let mut directive = String::from("frame-ancestors 'self'");
    for source in sources {
        // Sources come from registrations and configuration, checked as origins; a
        // space, quote or semicolon would change the policy, so such a value is dropped.
        if !source.is_empty()
            && !source
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b';' || b == b',' || b == b'\'')
            && !directive.split(' ').any(|s| s == source)
        {
            directive.push(' ');
            directive.push_str(source);
        }
    }
    directive
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d2433}\
h1{font-size:1.4rem}code{background:#f1f3f7;padding:.1rem .3rem;border-radius:3px}\
.muted{color:#5b6478;font-size:.9rem}button{font-size:1rem;padding:.5rem 1rem}";

fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// A page that POSTs `fields` to `action` as soon as it loads (with a button for
/// browsers without JavaScript).
pub fn auto_submit(action: &str, fields: &[(&str, &str)], title: &str) -> String {
    layout(
        title,
        html! {
            form method="post" action=(action) {
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                noscript { p { "JavaScript is off; press the button to continue." } button type="submit" { "Continue" } }
            }
            p.muted { (title) "…" }
            script { (PreEscaped(AUTO_SUBMIT)) }
        },
    )
}

/// The login page that stores state and nonce in the platform's storage frame, then
/// goes to `next` (the platform's authorization endpoint). Without JavaScript, a link
/// goes on (the state cookie may still work).
pub fn storage_login(next: &str, storage: &lti_core::login::StorageLogin) -> String {
    layout(
        "Signing you in",
        html! {
            div #lti-storage-login
                data-next=(next)
                data-target=(storage.target)
                data-origin=(storage.origin)
                data-state-key=(storage.state_key)
                data-state-value=(storage.state_value)
                data-nonce-key=(storage.nonce_key)
                data-nonce-value=(storage.nonce_value) {}
            p.muted { "Signing you in…" }
            noscript { p { a href=(next) { "Continue" } } }
            script { (PreEscaped(STORAGE_SCRIPT)) }
        },
    )
}

/// The launch page for a launch without the state cookie whose login used the
/// platform's storage: reads the state back and posts the launch to `action` again
/// with the proof (or with `lti_storage_failed=1`).
pub fn storage_launch(
    action: &str,
    id_token: &str,
    state: &str,
    target: &str,
    origin: &str,
    key: &str,
) -> String {
    layout(
        "Signing you in",
        html! {
            div #lti-storage-launch
                data-target=(target)
                data-origin=(origin)
                data-key=(key)
                data-state=(state) {}
            form #lti-storage-form method="post" action=(action) {
                input type="hidden" name="id_token" value=(id_token);
                input type="hidden" name="state" value=(state);
                input type="hidden" name="lti_storage_proof" value="";
                input type="hidden" name="lti_storage_failed" value="1";
                noscript { p { "JavaScript is off, so this browser cannot confirm the launch; press the button to see your options." } button type="submit" { "Continue" } }
            }
            p.muted { "Signing you in…" }
            script { (PreEscaped(STORAGE_SCRIPT)) }
        },
    )
}

/// The page for a launch that neither the state cookie nor the platform's storage can
/// bind to this browser: why, and a link that starts the same login in a new window.
pub fn new_window(restart_url: Option<&str>, status: u16, code: &str, request_id: &str) -> String {
    layout(
        "Open in a new window",
        html! {
            h1 { "This tool needs to open in a new window" }
            p { "Your browser did not send this tool its sign-in cookie inside the course page (it blocks third-party cookies), and the platform offers no other way to confirm that this launch is yours." }
            @if let Some(url) = restart_url {
                p { a #open-new-window href=(url) target="_blank" rel="noopener" { button type="button" { "Open in a new window" } } }
                p.muted { "The tool opens in a new tab or window, where your browser allows its cookie." }
            } @else {
                p { "Please launch the tool again from the course." }
            }
            p.muted { "Error " code { (code) } " (HTTP " (status) "), request " code { (request_id) } "." }
        },
    )
}

/// The error page: what went wrong in one sentence, the code and the request id.
pub fn error_page(status: u16, code: &str, message: &str, request_id: &str) -> String {
    layout(
        "Launch problem",
        html! {
            h1 { "This launch could not be completed" }
            p { (message) }
            p.muted { "Error " code { (code) } " (HTTP " (status) "), request " code { (request_id) } "." }
            p.muted { "If this keeps happening, send the error code and request id to your administrator." }
        },
    )
}

/// What a registration page reports, one row per fact.
pub type Facts<'a> = [(&'a str, String)];

/// The page a successful Dynamic Registration ends on: what was registered, then the
/// closing message to the platform's window ([`REGISTRATION_CLOSE`]).
pub fn registration_done(title: &str, facts: &Facts<'_>, notes: &[String]) -> String {
    layout(
        title,
        html! {
            h1 #registered { (title) }
            dl {
                @for (name, value) in facts {
                    dt { (name) }
                    dd { code { (value) } }
                }
            }
            @for note in notes { p { (note) } }
            p.muted { "The platform closes this window; if it stays open, press Close." }
            button #close type="button" { "Close" }
            script { (PreEscaped(REGISTRATION_CLOSE)) }
        },
    )
}

/// The page a failed Dynamic Registration ends on: the sentence, what the platform
/// said, the invalid fields, what the administrator can do, the code and request id.
pub fn registration_failed(
    status: u16,
    code: &str,
    message: &str,
    platform_said: Option<&str>,
    fields: &[(String, String)],
    advice: &str,
    request_id: &str,
) -> String {
    layout(
        "Registration failed",
        html! {
            h1 { "The tool could not be registered" }
            p #message { (message) }
            @if let Some(said) = platform_said {
                p { "The platform said: " code #platform-error { (said) } }
            }
            @if !fields.is_empty() {
                ul #fields { @for (field, problem) in fields { li { code { (field) } " " (problem) } } }
            }
            p #advice { (advice) }
            p.muted { "Error " code { (code) } " (HTTP " (status) "), request " code { (request_id) } "." }
        },
    )
}

/// A simple page with a title and preformatted content (config, admin info).
pub fn info_page(title: &str, body: Markup) -> String {
    layout(title, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_forms_and_error_pages() {
        let page = auto_submit("https://app/x?a=1&b=2", &[("t", "\"><script>")], "Go");
        assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(page.contains("action=\"https://app/x?a=1&amp;b=2\""));
        let page = error_page(400, "X", "<b>bad</b>", "r-1");
        assert!(page.contains("&lt;b&gt;bad&lt;/b&gt;"));
    }

    #[test]
    fn the_csp_allows_exactly_the_tools_scripts() {
        let csp = content_security_policy();
        let scripts = csp
            .split("; ")
            .find_map(|d| d.strip_prefix("script-src "))
            .expect("script-src");
        let sources: Vec<&str> = scripts.split(' ').collect();
        assert_eq!(
            sources,
            vec![
                script_hash(AUTO_SUBMIT).as_str(),
                script_hash(REGISTRATION_CLOSE).as_str(),
                script_hash(STORAGE_SCRIPT).as_str()
            ]
        );
        assert!(!scripts.contains("unsafe"), "{csp}");
    }

    #[test]
    fn frame_ancestors_lists_only_clean_sources() {
        assert_eq!(frame_ancestors(&[]), "frame-ancestors 'self'");
        let sources = [
            "https://lms.example".to_string(),
            "https://*.instructure.com".to_string(),
            "https://lms.example".to_string(),
            "https://x.example; script-src *".to_string(),
            "'unsafe-inline'".to_string(),
        ];
        assert_eq!(
            frame_ancestors(&sources),
            "frame-ancestors 'self' https://lms.example https://*.instructure.com"
        );
    }

    #[test]
    fn storage_pages_carry_their_parameters_escaped_and_no_inline_handlers() {
        let storage = lti_core::login::StorageLogin {
            target: "post_message_forwarding".into(),
            origin: "https://lms.example".into(),
            state_key: "state_S".into(),
            state_value: "S.P".into(),
            nonce_key: "nonce_N".into(),
            nonce_value: "N".into(),
        };
        let page = storage_login("https://lms.example/auth?a=1&b=\"", &storage);
        assert!(page.contains("data-next=\"https://lms.example/auth?a=1&amp;b=&quot;\""));
        assert!(page.contains("data-state-value=\"S.P\""));
        assert!(page.contains("data-origin=\"https://lms.example\""));
        let page = storage_launch(
            "https://tool/lti/launch",
            "T\"><x",
            "S",
            "f",
            "https://lms.example",
            "state_S",
        );
        assert!(page.contains("value=\"T&quot;&gt;&lt;x\""));
        assert!(page.contains("name=\"lti_storage_proof\""));
        let page = new_window(
            Some("https://tool/lti/login?iss=a&login_hint=b"),
            401,
            "LTI_STATE_COOKIE_MISSING",
            "r-1",
        );
        assert!(page.contains("target=\"_blank\""));
        assert!(page.contains("login_hint=b"));
        for page in [
            storage_login("https://x", &storage),
            storage_launch("a", "b", "c", "d", "e", "f"),
            new_window(None, 401, "X", "r"),
        ] {
            assert!(
                !page.contains(" onclick")
                    && !page.contains(" onload")
                    && !page.contains("javascript:")
            );
        }
    }

    #[test]
    fn the_registration_page_runs_only_its_hashed_script_and_escapes_values() {
        let page = registration_done(
            "Registered",
            &[("Issuer", "https://lms\"><script>x()</script>".into())],
            &[],
        );
        assert!(page.contains("&lt;script&gt;x()"));
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(page.contains(REGISTRATION_CLOSE));
        assert!(REGISTRATION_CLOSE.contains("org.imsglobal.lti.close"));
        assert!(!page.contains("onclick"), "no inline handlers");
        let csp = content_security_policy();
        assert!(csp.contains(&script_hash(REGISTRATION_CLOSE)));
        assert!(csp.contains(&script_hash(AUTO_SUBMIT)));
        assert!(!csp.contains("script-src 'unsafe-inline'"));
    }
}
