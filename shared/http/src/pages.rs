//! HTML pages: the auto-submitting form (launch hand-off, demo platform) and the error
//! page. maud escapes every interpolated value.

use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::sync::OnceLock;

/// The only script the tool ever serves: submit the first form on load.
const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// The script of the page that ends a Dynamic Registration (LTI Dynamic Registration
/// 1.0 §3.7): tells the platform's window — the opener of a popup, else the parent of
/// an iframe — that the tool is done, at load and when the Close button is pressed.
/// The message carries nothing secret, so any origin may receive it.
pub const REGISTRATION_CLOSE: &str = "(function(){var w=window.opener||(window.parent!==window?window.parent:null);function done(){if(w){w.postMessage({subject:\"org.imsglobal.lti.close\"},\"*\");}}done();var b=document.getElementById(\"close\");if(b){b.addEventListener(\"click\",done);}})();";

/// CSP source (`'sha256-…'`) of an inline script.
pub fn script_hash(script: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// CSP sources of [`AUTO_SUBMIT`] and [`REGISTRATION_CLOSE`]: their SHA-256, so no
/// other inline script may run.
fn script_hashes() -> &'static str {
    static HASHES: OnceLock<String> = OnceLock::new();
    HASHES.get_or_init(|| {
        format!(
            "{} {}",
            script_hash(AUTO_SUBMIT),
            script_hash(REGISTRATION_CLOSE)
        )
    })
}

/// Content-Security-Policy of the tool's pages: no scripts but the auto-submit one
/// and the registration's closing one (by hash), no inline event handlers.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'",
        script_hashes()
    )
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
    fn the_csp_allows_exactly_the_auto_submit_script() {
        let csp = content_security_policy();
        assert!(csp.contains("script-src 'sha256-"));
        assert!(!csp.contains("unsafe-inline';") || csp.contains("style-src 'unsafe-inline'"));
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
