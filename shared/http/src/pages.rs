//! HTML pages: the auto-submitting form (launch hand-off, demo platform) and the error
//! page. maud escapes every interpolated value.

use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::sync::OnceLock;

/// The only script the tool ever serves: submit the first form on load.
const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// CSP source for [`AUTO_SUBMIT`]: its SHA-256, so no other inline script may run.
fn auto_submit_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, AUTO_SUBMIT.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        )
    })
}

/// Content-Security-Policy of the tool's pages: no scripts but the auto-submit one.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'",
        auto_submit_hash()
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
}
