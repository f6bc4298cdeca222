//! Paging of AGS and NRPS answers: `Link` headers (RFC 8288) and the page loop.
//!
//! Platforms write the header every way the RFC allows and some it does not: quoted
//! `rel="next"` (Canvas), bare `rel=next` (Moodle), several links in one header or one
//! link per header, several relations in one `rel` (`rel="next last"`), header and
//! parameter names in any case, relative URLs, and Moodle's gradebook services quote
//! with typographic quotes (`rel=“next”`). The loop follows `next` to the end,
//! stops on a URL it already fetched (a platform that loops), and refuses to go past
//! [`MAX_PAGES`] pages rather than cut the list silently.

use crate::services::outbound::OutboundResponse;
use crate::services::ServiceError;
use std::collections::HashSet;
use std::future::Future;
use url::Url;

/// Most pages one list call follows; more is [`ServiceError::PagingLimit`].
pub const MAX_PAGES: usize = 50;

/// One link of a `Link` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Absolute URL (relative references resolved against the request URL).
    pub url: String,
    /// Relation types, lowercased (`next`, `last`…).
    pub rels: Vec<String>,
}

impl Link {
    /// True if one of the link's relations is `rel` (case-insensitive).
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rels.iter().any(|r| r.eq_ignore_ascii_case(rel))
    }
}

/// Every link of the `Link` header values `values`, relative URLs resolved against
/// `base` (the URL of the request that got them). Malformed links are skipped.
pub fn parse_links<'a>(values: impl IntoIterator<Item = &'a str>, base: &str) -> Vec<Link> {
    let base = Url::parse(base).ok();
    let mut links = Vec::new();
    for value in values {
        for (target, params) in parse_value(value) {
            let url = match &base {
                Some(base) => base.join(&target),
                None => Url::parse(&target),
            };
            let Ok(url) = url else { continue };
            // Only the first `rel` counts (RFC 8288 §3.3).
            let rels = params
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("rel"))
                .map(|(_, v)| {
                    v.split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            links.push(Link {
                url: url.into(),
                rels,
            });
        }
    }
    links
}

/// The `next` page named by `response`'s `Link` headers, if any.
pub fn next_url(response: &OutboundResponse, request_url: &str) -> Option<String> {
    parse_links(response.header_values("link"), request_url)
        .into_iter()
        .find(|link| link.has_rel("next"))
        .map(|link| link.url)
}

/// (target, params) of each link-value in one header value.
fn parse_value(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return out;
        }
        let Some(after_open) = rest.strip_prefix('<') else {
            // Not a link-value: skip to the next top-level comma.
            rest = skip_past_comma(rest);
            continue;
        };
        let Some(close) = after_open.find('>') else {
            return out;
        };
        let target = after_open[..close].trim().to_string();
        rest = &after_open[close + 1..];
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(';') {
                let (param, remaining) = parse_param(after);
                if let Some(param) = param {
                    params.push(param);
                }
                rest = remaining;
            } else if rest.is_empty() || rest.starts_with(',') {
                break;
            } else {
                // Garbage after the target: skip to the next parameter or link.
                let cut = rest.find([';', ',']).unwrap_or(rest.len());
                rest = &rest[cut..];
            }
        }
        out.push((target, params));
    }
}

/// One `name[=value]` parameter; returns it and what follows it.
fn parse_param(input: &str) -> (Option<(String, String)>, &str) {
    let input = input.trim_start();
    let name_end = input
        .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_whitespace())
        .unwrap_or(input.len());
    let name = input[..name_end].to_ascii_lowercase();
    let mut rest = input[name_end..].trim_start();
    let mut value = String::new();
    if let Some(after_eq) = rest.strip_prefix('=') {
        rest = after_eq.trim_start();
        // A quoted-string; Moodle quotes `rel` with typographic quotes (“next”).
        let quote = ['"', '\u{201C}'].into_iter().find(|q| rest.starts_with(*q));
        if let Some(open) = quote {
            let close = if open == '"' { '"' } else { '\u{201D}' };
            let quoted = &rest[open.len_utf8()..];
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' if open == '"' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c if c == close => {
                        end = i + c.len_utf8();
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest
                .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
                .unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
    }
    let param = (!name.is_empty()).then_some((name, value));
    (param, rest)
}

fn skip_past_comma(input: &str) -> &str {
    match input.find(',') {
        Some(i) => &input[i + 1..],
        None => "",
    }
}

/// The origin (scheme, host, port) of `url`, if it parses.
fn origin(url: &str) -> Option<url::Origin> {
    Url::parse(url).ok().map(|u| u.origin())
}

fn normalized(url: &str) -> String {
    Url::parse(url)
        .map(String::from)
        .unwrap_or_else(|_| url.to_string())
}

/// Fetches `first_url` and every `next` page after it: `fetch` gets a page's URL and
/// returns the page and its `next` URL. Stops when there is no `next`, or when `next`
/// is a URL already fetched (a platform that loops; logged). A `next` on another
/// origin than the first page is refused (the bearer token goes with every page), and
/// more than `max_pages` pages is [`ServiceError::PagingLimit`].
pub async fn follow_pages<P, F, Fut>(
    first_url: &str,
    max_pages: usize,
    mut fetch: F,
) -> Result<Vec<P>, ServiceError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(P, Option<String>), ServiceError>>,
{
    let first_origin = origin(first_url);
    let mut seen = HashSet::new();
    let mut pages = Vec::new();
    let mut url = first_url.to_string();
    loop {
        seen.insert(normalized(&url));
        let (page, next) = fetch(url).await?;
        pages.push(page);
        let Some(next) = next else {
            return Ok(pages);
        };
        if seen.contains(&normalized(&next)) {
            tracing::warn!(
                pages = pages.len(),
                "the platform's next page is one already fetched; paging stops there"
            );
            return Ok(pages);
        }
        if origin(&next) != first_origin {
            return Err(ServiceError::PlatformAnswerInvalid(
                "a next page is on another host than the first one".into(),
            ));
        }
        if pages.len() >= max_pages {
            return Err(ServiceError::PagingLimit(max_pages));
        }
        url = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://lms.example.edu/api/lti/courses/1/names_and_roles?limit=10";

    fn rels(links: &[Link]) -> Vec<(String, Vec<String>)> {
        links
            .iter()
            .map(|l| (l.url.clone(), l.rels.clone()))
            .collect()
    }

    #[test]
    fn quoted_and_bare_rel_are_both_read() {
        let links = parse_links(
            [
                r#"<https://lms.example.edu/p?page=2>; rel="next""#,
                "<https://lms.example.edu/p?page=3>; rel=next",
            ],
            BASE,
        );
        assert_eq!(
            rels(&links),
            vec![
                (
                    "https://lms.example.edu/p?page=2".into(),
                    vec!["next".into()]
                ),
                (
                    "https://lms.example.edu/p?page=3".into(),
                    vec!["next".into()]
                ),
            ]
        );
    }

    #[test]
    fn several_links_in_one_header_and_commas_inside_urls() {
        let links = parse_links(
            [
                r#"<https://lms.example.edu/p?a=1,2&page=1>; rel="first", <https://lms.example.edu/p?a=1,2&page=2>; rel="next", <https://lms.example.edu/p?page=9>; rel="last""#,
            ],
            BASE,
        );
        assert_eq!(links.len(), 3);
        assert_eq!(links[1].url, "https://lms.example.edu/p?a=1,2&page=2");
        assert!(links[1].has_rel("next"));
        assert!(links[2].has_rel("last"));
    }

    #[test]
    fn several_rels_in_one_link_and_any_case() {
        let links = parse_links(
            [r#"<https://lms.example.edu/p?page=2>; REL="Next Last"; title="x, y""#],
            BASE,
        );
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].rels, vec!["next", "last"]);
        assert!(links[0].has_rel("NEXT"));
    }

    #[test]
    fn moodle_typographic_quotes_are_read_as_quotes() {
        // Moodle's gradebook services write rel=“next” (U+201C/U+201D).
        let links = parse_links(
            ["<https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1&limit=2&from=0>; rel=\u{201C}first\u{201D}, <https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1&limit=2&from=2>; rel=\u{201C}next\u{201D}"],
            BASE,
        );
        assert_eq!(links.len(), 2);
        assert!(links[0].has_rel("first"));
        assert!(links[1].has_rel("next"));
        assert!(links[1].url.ends_with("from=2"));
    }

    #[test]
    fn relative_urls_are_resolved_against_the_request() {
        let links = parse_links(
            [
                "</api/lti/courses/1/names_and_roles?page=2>; rel=next",
                "<names_and_roles?page=3>; rel=last",
                "<?page=4>; rel=prev",
            ],
            BASE,
        );
        assert_eq!(
            links.iter().map(|l| l.url.as_str()).collect::<Vec<_>>(),
            vec![
                "https://lms.example.edu/api/lti/courses/1/names_and_roles?page=2",
                "https://lms.example.edu/api/lti/courses/1/names_and_roles?page=3",
                "https://lms.example.edu/api/lti/courses/1/names_and_roles?page=4",
            ]
        );
    }

    #[test]
    fn only_the_first_rel_counts_and_odd_spacing_is_fine() {
        let links = parse_links(
            ["  < https://lms.example.edu/p?page=2 >  ;rel = last ; rel=next ,"],
            BASE,
        );
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].rels, vec!["last"]);
    }

    #[test]
    fn malformed_values_never_panic_and_yield_what_can_be_read() {
        for value in [
            "",
            ",,,",
            "garbage",
            "<",
            "<unterminated; rel=next",
            "<https://x/1>; rel=\"unterminated",
            "<https://x/1>; rel=\"a\\",
            "<https://x/1>; ;;; =; rel",
            "<https://x/1> junk; rel=next",
            "no-angle; rel=next, <https://x/2>; rel=next",
            "<é>; rel=next",
            "<http://[::1>; rel=next",
        ] {
            let _ = parse_links([value], BASE);
        }
        let links = parse_links(["no-angle; rel=next, <https://x/2>; rel=next"], BASE);
        assert_eq!(
            rels(&links),
            vec![("https://x/2".into(), vec!["next".into()])]
        );
        let links = parse_links(["<https://x/1> junk; rel=next"], BASE);
        assert!(links[0].has_rel("next"));
    }

    #[test]
    fn the_next_link_is_found_across_headers_whatever_the_header_name_case() {
        let response = OutboundResponse {
            status: 200,
            headers: vec![
                (
                    "link".into(),
                    r#"<https://lms.example.edu/p?page=9>; rel="last""#.into(),
                ),
                (
                    "LINK".into(),
                    "<https://lms.example.edu/p?page=2>; rel=next".into(),
                ),
            ],
            body: Vec::new(),
        };
        assert_eq!(
            next_url(&response, BASE).as_deref(),
            Some("https://lms.example.edu/p?page=2")
        );
        let none = OutboundResponse {
            status: 200,
            headers: vec![("Link".into(), "<https://x/9>; rel=last".into())],
            body: Vec::new(),
        };
        assert_eq!(next_url(&none, BASE), None);
    }

    fn page_url(n: usize) -> String {
        format!("https://lms.example.edu/p?page={n}")
    }

    async fn run(total: usize, max: usize) -> (Result<Vec<usize>, ServiceError>, Vec<String>) {
        let fetched = std::sync::Mutex::new(Vec::new());
        let result = follow_pages(&page_url(1), max, |url| {
            fetched.lock().expect("lock").push(url.clone());
            async move {
                let n: usize = url
                    .rsplit('=')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok((n, (n < total).then(|| page_url(n + 1))))
            }
        })
        .await;
        (result, fetched.into_inner().expect("lock"))
    }

    #[tokio::test]
    async fn every_page_is_followed_up_to_the_limit() {
        let (pages, fetched) = run(3, MAX_PAGES).await;
        assert_eq!(pages.expect("pages"), vec![1, 2, 3]);
        assert_eq!(fetched.len(), 3);
        let (pages, _) = run(MAX_PAGES, MAX_PAGES).await;
        assert_eq!(pages.expect("exactly 50 pages are fine").len(), 50);
    }

    #[tokio::test]
    async fn fifty_one_pages_are_a_paging_limit_error_never_a_silent_cut() {
        let (result, fetched) = run(MAX_PAGES + 1, MAX_PAGES).await;
        assert!(
            matches!(result, Err(ServiceError::PagingLimit(50))),
            "{result:?}"
        );
        assert_eq!(fetched.len(), 50, "the 51st page is not even fetched");
    }

    #[tokio::test]
    async fn a_repeated_next_url_stops_the_loop() {
        let mut calls = 0;
        let pages = follow_pages(&page_url(1), MAX_PAGES, |url| {
            calls += 1;
            async move {
                // 1 → 2 → 1 (a loop)
                let next = if url.ends_with("page=1") {
                    page_url(2)
                } else {
                    page_url(1)
                };
                Ok((url, Some(next)))
            }
        })
        .await
        .expect("stops");
        assert_eq!(pages, vec![page_url(1), page_url(2)]);
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn a_next_page_on_another_host_is_refused() {
        let result = follow_pages(&page_url(1), MAX_PAGES, |url| async move {
            let next = url
                .ends_with("page=1")
                .then(|| "https://collector.example.com/p?page=2".to_string());
            Ok((url, next))
        })
        .await;
        assert!(
            matches!(result, Err(ServiceError::PlatformAnswerInvalid(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_page_fails_the_whole_list() {
        let result: Result<Vec<()>, _> = follow_pages(&page_url(1), MAX_PAGES, |_| async {
            Err(ServiceError::PlatformTimeout)
        })
        .await;
        assert!(matches!(result, Err(ServiceError::PlatformTimeout)));
    }
}
