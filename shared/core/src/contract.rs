//! Contract suites for the storage ports. Every adapter runs them: the in-memory ones
//! in this crate's tests, the DynamoDB ones against a moto server. Keys are random so
//! suites can share a table and run in parallel.

use crate::keys::{KeySetCache, SharedKeySet};
use crate::platform::{Deployment, LaunchProfile, Platform, PlatformStore};
use crate::random::{Random, SystemRandom};
use crate::state::{ConsumeError, LaunchStore, LoginState, StateClaim};
use crate::user::{stable_user_id, UserRecord, UserStore};
use std::sync::Arc;

const NOW: i64 = 1_900_000_000;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", SystemRandom.token(9))
}

/// A platform registration for `issuer`/`client_id`, stamped `now`.
pub fn sample_platform(issuer: &str, client_id: &str, now: i64) -> Platform {
    Platform {
        id: uuid::Uuid::new_v4(),
        issuer: issuer.to_string(),
        client_id: client_id.to_string(),
        name: "Sample LMS".into(),
        auth_login_url: format!("{issuer}/auth"),
        auth_token_url: format!("{issuer}/token"),
        keyset_url: format!("{issuer}/jwks"),
        token_audience: None,
        accept_new_deployments: false,
        ags_endpoint: None,
        nrps_endpoint: None,
        launch_profile: LaunchProfile::Standard,
        audience: None,
        landing_url: None,
        created_at: now,
        updated_at: now,
    }
}

/// A user record for (issuer, sub) with a name and email, seen `now`.
pub fn sample_user(issuer: &str, sub: &str, now: i64) -> UserRecord {
    UserRecord {
        id: stable_user_id(issuer, sub),
        issuer: issuer.to_string(),
        sub: sub.to_string(),
        client_id: "client".into(),
        name: Some("Ada Lovelace".into()),
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        email: Some("ada@example.edu".into()),
        picture: None,
        created_at: now,
        last_seen_at: now,
    }
}

/// Runs every [`PlatformStore`] check.
pub async fn platform_store_contract(store: &dyn PlatformStore) {
    let issuer = format!("https://{}.example", unique("lms"));

    // Unknown issuer: nothing, not an error.
    assert!(store.platform(&issuer, "a").await.expect("read").is_none());
    assert!(store
        .platforms_by_issuer(&issuer)
        .await
        .expect("read")
        .is_empty());

    // Save, then read back exactly.
    let first = store
        .save_platform(sample_platform(&issuer, "a", NOW))
        .await
        .expect("save");
    assert_eq!(
        store.platform(&issuer, "a").await.expect("read"),
        Some(first.clone())
    );

    // Upsert on (issuer, client_id) keeps the id and creation time.
    let mut changed = sample_platform(&issuer, "a", NOW + 10);
    changed.name = "Renamed".into();
    changed.launch_profile = LaunchProfile::Direct;
    changed.audience = Some("aud-1".into());
    let saved = store.save_platform(changed).await.expect("upsert");
    assert_eq!(saved.id, first.id, "upsert keeps the id");
    assert_eq!(saved.created_at, NOW, "upsert keeps created_at");
    assert_eq!(saved.updated_at, NOW + 10);
    let read = store
        .platform(&issuer, "a")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read, saved);

    // One issuer, several client ids (Canvas, Blackboard).
    store
        .save_platform(sample_platform(&issuer, "b", NOW))
        .await
        .expect("save");
    let mut ids: Vec<String> = store
        .platforms_by_issuer(&issuer)
        .await
        .expect("read")
        .into_iter()
        .map(|p| p.client_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["a", "b"]);
    let listed = store.list_platforms().await.expect("list");
    assert!(listed.iter().filter(|p| p.issuer == issuer).count() == 2);

    // Deployments: per (issuer, client_id), idempotent.
    assert!(store
        .deployment(&issuer, "a", "1")
        .await
        .expect("read")
        .is_none());
    let deployment = Deployment {
        issuer: issuer.clone(),
        client_id: "a".into(),
        deployment_id: "1".into(),
        created_at: NOW,
    };
    store
        .save_deployment(deployment.clone())
        .await
        .expect("save");
    store
        .save_deployment(Deployment {
            created_at: NOW + 99,
            ..deployment.clone()
        })
        .await
        .expect("save again");
    assert_eq!(
        store.deployment(&issuer, "a", "1").await.expect("read"),
        Some(deployment),
        "saving an existing deployment changes nothing"
    );
    assert!(store
        .deployment(&issuer, "b", "1")
        .await
        .expect("read")
        .is_none());
}

fn login_state(issuer: &str, client_id: &str, now: i64, ttl: i64) -> LoginState {
    LoginState {
        state: unique("state"),
        nonce: unique("nonce"),
        issuer: issuer.to_string(),
        client_id: client_id.to_string(),
        target_link_uri: "https://tool.example/lti/launch".into(),
        deployment_id: Some("1".into()),
        created_at: now,
        expires_at: now + ttl,
    }
}

fn claim(state: &LoginState, now: i64) -> StateClaim {
    StateClaim {
        state: state.state.clone(),
        nonce: state.nonce.clone(),
        issuer: state.issuer.clone(),
        client_id: state.client_id.clone(),
        now,
    }
}

/// Runs every [`LaunchStore`] check; `users` reads back what launches wrote.
pub async fn launch_store_contract(store: Arc<dyn LaunchStore>, users: &dyn UserStore) {
    let issuer = format!("https://{}.example", unique("lms"));
    let user = sample_user(&issuer, &unique("sub"), NOW);

    // A state never issued.
    let never = login_state(&issuer, "a", NOW, 600);
    assert!(matches!(
        store.finish_launch(&claim(&never, NOW), &user).await,
        Err(ConsumeError::Unknown)
    ));

    // Issued, then consumed once: the user is created; the second use is a replay.
    let state = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&state).await.expect("begin");
    assert!(
        store.begin_login(&state).await.is_err(),
        "a state is never overwritten"
    );
    store
        .finish_launch(&claim(&state, NOW + 5), &user)
        .await
        .expect("first use succeeds");
    assert_eq!(
        users.user(&issuer, &user.sub).await.expect("read"),
        Some(user.clone())
    );
    assert!(matches!(
        store.finish_launch(&claim(&state, NOW + 6), &user).await,
        Err(ConsumeError::AlreadyUsed)
    ));

    // Expired, even if the store has not deleted it yet (TTL deletion is lazy).
    let old = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&old).await.expect("begin");
    assert!(matches!(
        store.finish_launch(&claim(&old, NOW + 600), &user).await,
        Err(ConsumeError::Expired)
    ));

    // Wrong nonce and wrong platform are refused and do not consume the state.
    let fresh = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&fresh).await.expect("begin");
    let mut wrong_nonce = claim(&fresh, NOW);
    wrong_nonce.nonce = "other".into();
    assert!(matches!(
        store.finish_launch(&wrong_nonce, &user).await,
        Err(ConsumeError::NonceMismatch)
    ));
    let mut wrong_platform = claim(&fresh, NOW);
    wrong_platform.client_id = "b".into();
    assert!(matches!(
        store.finish_launch(&wrong_platform, &user).await,
        Err(ConsumeError::PlatformMismatch)
    ));
    // A later launch of the same user without name or email keeps what is known
    // and moves last_seen_at.
    let anonymous = UserRecord {
        name: None,
        given_name: None,
        family_name: None,
        email: None,
        last_seen_at: NOW + 50,
        created_at: NOW + 50,
        ..user.clone()
    };
    store
        .finish_launch(&claim(&fresh, NOW + 50), &anonymous)
        .await
        .expect("the refused attempts did not consume the state");
    let read = users
        .user(&issuer, &user.sub)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.email, user.email);
    assert_eq!(read.name, user.name);
    assert_eq!(read.created_at, NOW, "created_at is set once");
    assert_eq!(read.last_seen_at, NOW + 50);

    // Concurrent launches with one state: exactly one succeeds.
    let raced = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&raced).await.expect("begin");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let c = claim(&raced, NOW + 1);
        let u = user.clone();
        tasks.push(tokio::spawn(
            async move { store.finish_launch(&c, &u).await },
        ));
    }
    let mut ok = 0;
    let mut replays = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(ConsumeError::AlreadyUsed) => replays += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, replays), (1, 19));

    // One-time ids of direct launches.
    let key = unique("jti");
    store
        .record_once(&key, NOW + 60, NOW, &user)
        .await
        .expect("first use");
    assert!(matches!(
        store.record_once(&key, NOW + 60, NOW + 1, &user).await,
        Err(ConsumeError::AlreadyUsed)
    ));
    store
        .record_once(&key, NOW + 200, NOW + 61, &user)
        .await
        .expect("usable again once expired");
}

/// Runs every [`KeySetCache`] check.
pub async fn key_set_cache_contract(cache: &dyn KeySetCache) {
    let url = format!("https://{}.example/jwks", unique("lms"));
    assert!(cache.get(&url, NOW).await.is_none());
    let set = SharedKeySet {
        body: br#"{"keys":[]}"#.to_vec(),
        fresh_until: NOW + 300,
        stale_until: NOW + 300 + 3600,
    };
    cache.put(&url, set.clone()).await;
    assert_eq!(cache.get(&url, NOW + 299).await, Some(set.clone()));
    assert_eq!(
        cache.get(&url, NOW + 300 + 3599).await,
        Some(set),
        "a document past its lifetime is returned within its stale window"
    );
    assert!(
        cache.get(&url, NOW + 300 + 3600).await.is_none(),
        "a document past its stale window is not returned"
    );
    let newer = SharedKeySet {
        body: br#"{"keys":[{"kid":"2"}]}"#.to_vec(),
        fresh_until: NOW + 900,
        stale_until: NOW + 900,
    };
    cache.put(&url, newer.clone()).await;
    assert_eq!(
        cache.get(&url, NOW + 400).await,
        Some(newer),
        "a refetch replaces it"
    );
    assert!(
        cache.get(&url, NOW + 900).await.is_none(),
        "no stale window: gone at its lifetime"
    );
    cache.forget(&url).await;
    assert!(
        cache.get(&url, NOW + 400).await.is_none(),
        "a forgotten document is gone"
    );
    cache.forget(&url).await;
}
