//! Access tokens are cached per registration and scope set, in each instance's memory
//! and in the store every function instance shares: 100 score posts spread over two
//! instances make at most one token request per instance, and none at all for an
//! instance that finds the token in the shared cache.

use crate::support::{all_scopes, endpoint, registration, tool_sharing, NOW};
use lti_core::clock::FixedClock;
use lti_core::memory::MemoryStore;
use lti_core::platform::Platform;
use lti_core::services::ags::ScoreInput;
use lti_core::services::testing::{answer, bearer, is_token_request, token_answer, FakePlatform};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TOKEN_URL: &str = "https://lms.example.edu/token";
const LINEITEMS: &str = "https://lms.example.edu/courses/1/lineitems";
const LINEITEM: &str = "https://lms.example.edu/courses/1/lineitems/1";

/// The platform as one function instance reaches it (each instance has its own
/// connection, so its own request log); tokens are numbered across instances.
fn platform(issued: Arc<AtomicUsize>) -> FakePlatform {
    FakePlatform::new(move |request| {
        if is_token_request(request) {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return token_answer(&format!("shared-token-{n}"));
        }
        match bearer(request) {
            Some(t) if t.starts_with("shared-token-") => answer(200, &[], ""),
            _ => answer(401, &[], ""),
        }
    })
}

fn lms() -> Platform {
    registration("https://lms.example.edu", "client", TOKEN_URL, None)
}

fn score(n: usize) -> ScoreInput {
    ScoreInput {
        user_id: format!("user-{n}"),
        score_given: Some(n as f64),
        score_maximum: Some(100.0),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_hundred_score_posts_over_two_instances_take_one_token_request() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let issued = Arc::new(AtomicUsize::new(0));
    let (fake_a, fake_b) = (platform(issued.clone()), platform(issued.clone()));
    let a = tool_sharing(&fake_a, store.clone(), clock.clone());
    let b = tool_sharing(&fake_b, store.clone(), clock.clone());
    let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
    for n in 0..100 {
        let instance = if n % 2 == 0 { &a } else { &b };
        instance
            .ags
            .post_score(&lms(), &ep, LINEITEM, score(n), None)
            .await
            .expect("posted");
    }
    let (tokens_a, tokens_b) = (fake_a.token_requests().len(), fake_b.token_requests().len());
    let (posts_a, posts_b) = (
        fake_a.service_requests().len(),
        fake_b.service_requests().len(),
    );
    println!(
        "100 score posts over 2 instances sharing one token cache: instance A {posts_a} posts, \
         {tokens_a} token request(s); instance B {posts_b} posts, {tokens_b} token request(s)"
    );
    assert_eq!((posts_a, posts_b), (50, 50));
    assert_eq!(tokens_a, 1, "the first instance asks once");
    assert_eq!(
        tokens_b, 0,
        "the second finds the token in the shared cache"
    );
    let used: std::collections::HashSet<String> = fake_a
        .service_requests()
        .iter()
        .chain(fake_b.service_requests().iter())
        .map(|r| bearer(r).unwrap_or_default().to_string())
        .collect();
    assert_eq!(used.len(), 1, "one token for all 100 posts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_on_two_cold_instances_take_at_most_one_token_request_each() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let issued = Arc::new(AtomicUsize::new(0));
    let (fake_a, fake_b) = (platform(issued.clone()), platform(issued.clone()));
    let a = Arc::new(tool_sharing(&fake_a, store.clone(), clock.clone()));
    let b = Arc::new(tool_sharing(&fake_b, store.clone(), clock.clone()));
    let mut tasks = Vec::new();
    for n in 0..100 {
        let instance = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
            instance
                .ags
                .post_score(&lms(), &ep, LINEITEM, score(n), None)
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("posted");
    }
    let (tokens_a, tokens_b) = (fake_a.token_requests().len(), fake_b.token_requests().len());
    println!(
        "100 concurrent score posts on 2 cold instances: instance A {tokens_a} token request(s), \
         instance B {tokens_b} token request(s)"
    );
    assert!(tokens_a <= 1 && tokens_b <= 1, "{tokens_a} / {tokens_b}");
    assert_eq!(
        fake_a.service_requests().len() + fake_b.service_requests().len(),
        100
    );
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_and_shared_again() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let issued = Arc::new(AtomicUsize::new(0));
    let (fake_a, fake_b) = (platform(issued.clone()), platform(issued.clone()));
    let a = tool_sharing(&fake_a, store.clone(), clock.clone());
    let b = tool_sharing(&fake_b, store.clone(), clock.clone());
    let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
    a.ags
        .post_score(&lms(), &ep, LINEITEM, score(1), None)
        .await
        .expect("posted");
    // expires_in 3600: used until 60 s before.
    clock.advance(3539);
    b.ags
        .post_score(&lms(), &ep, LINEITEM, score(2), None)
        .await
        .expect("posted");
    assert_eq!(issued.load(Ordering::SeqCst), 1, "still valid at 3539 s");
    clock.advance(1);
    b.ags
        .post_score(&lms(), &ep, LINEITEM, score(3), None)
        .await
        .expect("posted");
    a.ags
        .post_score(&lms(), &ep, LINEITEM, score(4), None)
        .await
        .expect("posted");
    assert_eq!(fake_a.token_requests().len(), 1);
    assert_eq!(fake_b.token_requests().len(), 1, "B renewed it…");
    assert_eq!(
        bearer(&fake_a.service_requests()[1]),
        Some("shared-token-2"),
        "…and A took B's token from the shared cache"
    );
}

#[tokio::test]
async fn different_scope_sets_and_registrations_have_their_own_tokens() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let issued = Arc::new(AtomicUsize::new(0));
    let fake = platform(issued.clone());
    let tool = tool_sharing(&fake, store, clock);
    let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
    let sibling = registration("https://lms.example.edu", "another-client", TOKEN_URL, None);
    for platform in [lms(), sibling.clone(), lms(), sibling] {
        tool.ags
            .post_score(&platform, &ep, LINEITEM, score(1), None)
            .await
            .expect("score");
        tool.ags
            .line_item(&platform, &ep, LINEITEM, None)
            .await
            .ok();
    }
    // 2 registrations × 2 scope sets (score; lineitem).
    assert_eq!(fake.token_requests().len(), 4);
}
