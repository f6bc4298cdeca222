//! A tiny scripted browser for tests: follows redirects, keeps cookies, and submits
//! the auto-submitting forms of LTI flows (platform → tool → app), recording each hop.
//!
//! It sends cookies back to the host that set them, whatever `Secure` says, because
//! the dev server runs on plain http://127.0.0.1 (browsers treat loopback as secure).
//! Like a browser, it refuses a `__Host-` cookie without `Secure`, with a `Domain` or
//! with a `Path` other than `/` (and a `__Secure-` one without `Secure`), and removes a
//! cookie set with `Max-Age` ≤ 0 or an `Expires` in the past.

use std::collections::HashMap;

/// One response, as the browser saw it.
#[derive(Debug, Clone)]
pub struct Page {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub location: Option<String>,
    pub content_type: String,
    pub body: String,
    /// The `Set-Cookie` lines of the response, as received.
    pub set_cookies: Vec<String>,
}

/// A form found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub method: String,
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the browser does next after a page.
#[derive(Debug, Clone)]
pub enum Next {
    Get(String),
    Post(String, Vec<(String, String)>),
}

/// The scripted browser. A clone has the same cookies and history and goes on alone
/// (a second tab whose requests leave at the same time).
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    /// Cookies per host: name → value.
    pub cookies: HashMap<String, HashMap<String, String>>,
    /// Every page seen, in order.
    pub hops: Vec<Page>,
    /// `Set-Cookie` lines refused, with the reason.
    pub rejected_cookies: Vec<(String, String)>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().last();
        let after = &rest[i + name.len()..];
        if before.is_some_and(char::is_whitespace) {
            if let Some(value) = after.trim_start().strip_prefix('=') {
                let value = value.trim_start();
                let quote = value.chars().next()?;
                if quote == '"' || quote == '\'' {
                    let end = value[1..].find(quote)?;
                    return Some(unescape(&value[1..1 + end]));
                }
            }
        }
        rest = after;
    }
    None
}

/// The first form of `html`, with its hidden and named inputs.
pub fn first_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let tag_end = start + html[start..].find('>')?;
    let tag = &html[start..tag_end];
    let end = html[tag_end..]
        .find("</form>")
        .map_or(html.len(), |e| tag_end + e);
    let mut fields = Vec::new();
    let mut rest = &html[tag_end..end];
    while let Some(i) = rest.find("<input") {
        let close = rest[i..].find('>').map_or(rest.len(), |c| i + c);
        let input = &rest[i..close];
        if let Some(name) = attribute(input, "name") {
            fields.push((name, attribute(input, "value").unwrap_or_default()));
        }
        rest = &rest[close..];
    }
    Some(Form {
        method: attribute(tag, "method")
            .unwrap_or_else(|| "get".into())
            .to_lowercase(),
        action: attribute(tag, "action").unwrap_or_default(),
        fields,
    })
}

impl Browser {
    /// A browser with an empty cookie jar that does not follow redirects by itself.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            client,
            cookies: HashMap::new(),
            hops: Vec::new(),
            rejected_cookies: Vec::new(),
        }
    }

    /// The cookie `name` set by `url`'s host.
    pub fn cookie(&self, url: &str, name: &str) -> Option<&String> {
        self.cookies.get(&host_of(url))?.get(name)
    }

    /// The Cookie header this browser sends to `url`, if it has cookies for its host.
    pub fn cookie_header(&self, url: &str) -> Option<String> {
        let jar = self.cookies.get(&host_of(url))?;
        let mut pairs: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Takes the `Set-Cookie` lines of a response from `url` (one another tab
    /// received, say), as if this browser had received them.
    pub fn accept_cookies(&mut self, url: &str, lines: &[String]) {
        let host = host_of(url);
        for line in lines {
            self.store_cookie(&host, line);
        }
    }

    /// Stores one `Set-Cookie` line received from `host`, as a browser would.
    fn store_cookie(&mut self, host: &str, line: &str) {
        let cookie = match cookie::Cookie::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.rejected_cookies
                    .push((line.to_string(), e.to_string()));
                return;
            }
        };
        let name = cookie.name();
        let secure = cookie.secure() == Some(true);
        let refusal = if name.starts_with("__Host-")
            && (!secure || cookie.domain().is_some() || cookie.path() != Some("/"))
        {
            Some("__Host- prefix without Secure, with a Domain or with a Path other than /")
        } else if name.starts_with("__Secure-") && !secure {
            Some("__Secure- prefix without Secure")
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.rejected_cookies
                .push((line.to_string(), reason.to_string()));
            return;
        }
        let expired = cookie
            .max_age()
            .is_some_and(|age| age.is_zero() || age.is_negative())
            || cookie
                .expires_datetime()
                .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
        let jar = self.cookies.entry(host.to_string()).or_default();
        if expired {
            jar.remove(name);
        } else {
            jar.insert(name.to_string(), cookie.value().to_string());
        }
    }

    /// Forgets every cookie (another browser, as far as the tool can tell).
    pub fn clear_cookies(&mut self) {
        self.cookies.clear();
    }

    /// One request, no following.
    pub async fn send(&mut self, next: &Next) -> Result<Page, String> {
        let (method, url, builder) = match next {
            Next::Get(url) => ("GET", url.clone(), self.client.get(url)),
            Next::Post(url, fields) => {
                let body = serde_urlencoded::to_string(fields).map_err(|e| e.to_string())?;
                (
                    "POST",
                    url.clone(),
                    self.client
                        .post(url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body),
                )
            }
        };
        let host = host_of(&url);
        let mut builder = builder.header("accept", "text/html");
        if let Some(header) = self.cookie_header(&url) {
            builder = builder.header("cookie", header);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        for line in &set_cookies {
            self.store_cookie(&host, line);
        }
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| resolve(&url, l));
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.text().await.unwrap_or_default();
        let page = Page {
            method: method.into(),
            url,
            status,
            location,
            content_type,
            body,
            set_cookies,
        };
        self.hops.push(page.clone());
        Ok(page)
    }

    /// What a browser with JavaScript would do after `page`: follow a redirect, or
    /// submit a form that submits itself.
    pub fn next_after(page: &Page) -> Option<Next> {
        if (300..400).contains(&page.status) {
            return page.location.clone().map(Next::Get);
        }
        if page.status == 200 && page.body.contains("document.forms[0].submit()") {
            let form = first_form(&page.body)?;
            let action = resolve(&page.url, &form.action);
            return Some(if form.method == "post" {
                Next::Post(action, form.fields)
            } else {
                Next::Get(action)
            });
        }
        None
    }

    /// Follows redirects and auto-submitting forms from `start` until a page that does
    /// neither (at most 20 hops).
    pub async fn run(&mut self, start: Next) -> Result<Page, String> {
        let mut page = self.send(&start).await?;
        for _ in 0..20 {
            match Self::next_after(&page) {
                Some(next) => page = self.send(&next).await?,
                None => return Ok(page),
            }
        }
        Err("more than 20 hops".into())
    }

    /// Like [`Browser::run`], but stops before sending the first request `stop` matches
    /// and returns it unsent.
    pub async fn run_until(
        &mut self,
        start: Next,
        stop: impl Fn(&Next) -> bool,
    ) -> Result<Next, String> {
        let mut page = self.send(&start).await?;
        for _ in 0..20 {
            match Self::next_after(&page) {
                Some(next) if stop(&next) => return Ok(next),
                Some(next) => page = self.send(&next).await?,
                None => return Err(format!("the flow ended at {} ({})", page.url, page.status)),
            }
        }
        Err("more than 20 hops".into())
    }
}

/// `reference` resolved against `base`.
pub fn resolve(base: &str, reference: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(reference))
        .map(String::from)
        .unwrap_or_else(|_| reference.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_form_and_its_fields_are_read_with_entities_decoded() {
        let html = r#"<p>x</p><form method="post" action="https://a.example/x?a=1&amp;b=2"><input type="hidden" name="id_token" value="a.b.c"><input type="hidden" name="state" value="&quot;s&quot;"></form><script>document.forms[0].submit();</script>"#;
        let form = first_form(html).expect("form");
        assert_eq!(form.method, "post");
        assert_eq!(form.action, "https://a.example/x?a=1&b=2");
        assert_eq!(form.field("id_token"), Some("a.b.c"));
        assert_eq!(form.field("state"), Some("\"s\""));
    }

    #[test]
    fn host_prefixed_cookies_follow_the_prefix_rules_and_removals_remove() {
        let mut b = Browser::new();
        let url = "http://127.0.0.1:1/x";
        let lines = [
            "__Host-ok=1; Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
            "__Host-no-secure=1; Path=/",
            "__Host-domain=1; Path=/; Secure; Domain=127.0.0.1",
            "__Host-path=1; Path=/lti; Secure",
            "__Secure-no=1; Path=/",
            "plain=1",
            "gone=1",
        ]
        .map(String::from);
        b.accept_cookies(url, &lines);
        b.accept_cookies(url, &["gone=; Max-Age=0".to_string()]);
        assert_eq!(
            b.cookie_header(url).as_deref(),
            Some("__Host-ok=1; plain=1")
        );
        assert_eq!(b.rejected_cookies.len(), 4);
        b.accept_cookies(
            url,
            &["__Host-ok=; Path=/; Secure; Expires=Thu, 01 Jan 1970 00:00:00 GMT".to_string()],
        );
        assert_eq!(b.cookie_header(url).as_deref(), Some("plain=1"));
    }
}
