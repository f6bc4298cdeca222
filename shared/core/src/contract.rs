//! Contract suites for the storage ports. Every adapter runs them: the in-memory ones
//! in this crate's tests, the DynamoDB ones against a moto server. Keys are random so
//! suites can share a table and run in parallel.

use crate::keys::{KeySetCache, SharedKeySet};
use crate::platform::{Deployment, LaunchProfile, Platform, PlatformStore};
use crate::random::{Random, SystemRandom};
use crate::registration::{PageError, PageRequest, PlatformAdmin, RouteRule, RouteSet};
use crate::services::keys::{ServiceKeyRecord, ServiceKeyStore};
use crate::services::records::{
    ContextRecord, LaunchRecord, LaunchWrites, LinkRecord, ServiceRecords,
};
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
        user_scope: None,
        created_at: now,
        updated_at: now,
    }
}

/// A user record for (issuer, sub) under the user scope of [`sample_platform`], with
/// a name and email, seen `now`.
pub fn sample_user(issuer: &str, sub: &str, now: i64) -> UserRecord {
    let user_scope = format!("{issuer}/jwks");
    UserRecord {
        id: stable_user_id(issuer, &user_scope, sub),
        issuer: issuer.to_string(),
        user_scope,
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
        .platforms_by_issuer(&issuer, 10)
        .await
        .expect("read")
        .is_empty());

    // Save, then read back exactly.
    let mut original = sample_platform(&issuer, "a", NOW);
    original.user_scope = Some("scope-1".into());
    let first = store.save_platform(original).await.expect("save");
    assert!(first.created, "the first save creates");
    let first = first.platform;
    assert_eq!(
        store.platform(&issuer, "a").await.expect("read"),
        Some(first.clone())
    );

    // Upsert on (issuer, client_id) keeps the id, creation time and user scope.
    let mut changed = sample_platform(&issuer, "a", NOW + 10);
    changed.name = "Renamed".into();
    changed.launch_profile = LaunchProfile::Direct;
    changed.audience = Some("aud-1".into());
    changed.keyset_url = format!("{issuer}/other-jwks");
    changed.user_scope = Some("scope-2".into());
    let saved = store.save_platform(changed).await.expect("upsert");
    assert!(
        !saved.created,
        "an upsert of an existing registration creates nothing"
    );
    let saved = saved.platform;
    assert_eq!(saved.id, first.id, "upsert keeps the id");
    assert_eq!(saved.created_at, NOW, "upsert keeps created_at");
    assert_eq!(
        saved.user_scope.as_deref(),
        Some("scope-1"),
        "upsert keeps the user scope, so user ids stay stable"
    );
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
    // Deployments of the issuer are never read with its registrations.
    for d in 0..5 {
        store
            .save_deployment(Deployment {
                issuer: issuer.clone(),
                client_id: "a".into(),
                deployment_id: format!("d{d}"),
                created_at: NOW,
            })
            .await
            .expect("save");
    }
    let mut ids: Vec<String> = store
        .platforms_by_issuer(&issuer, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|p| p.client_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["a", "b"]);
    assert_eq!(
        store
            .platforms_by_issuer(&issuer, 1)
            .await
            .expect("read")
            .len(),
        1,
        "the limit bounds what is read"
    );
    // An issuer that is a prefix of another is a different issuer.
    assert!(store
        .platforms_by_issuer(&issuer[..issuer.len() - 3], 10)
        .await
        .expect("read")
        .is_empty());
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

    // Ids at their longest, made of the characters keys escape, round-trip.
    let long_client = "%".repeat(255);
    let long_deployment = "#".repeat(255);
    store
        .save_platform(sample_platform(&issuer, &long_client, NOW))
        .await
        .expect("save a long client_id");
    assert!(store
        .platform(&issuer, &long_client)
        .await
        .expect("read")
        .is_some());
    let long = Deployment {
        issuer: issuer.clone(),
        client_id: long_client.clone(),
        deployment_id: long_deployment.clone(),
        created_at: NOW,
    };
    store
        .save_deployment(long.clone())
        .await
        .expect("save a long deployment id");
    assert_eq!(
        store
            .deployment(&issuer, &long_client, &long_deployment)
            .await
            .expect("read"),
        Some(long)
    );
}

/// Runs every [`PlatformAdmin`] check: by id, pages and the issuer filter,
/// deployments listed and removed, routing rules written with optimistic concurrency,
/// and a delete that takes the registration's deployments and rules with it (and
/// nothing of its neighbours).
pub async fn platform_admin_contract(store: &dyn PlatformAdmin) {
    let issuer = format!("https://{}.example", unique("admin"));
    let neighbour = format!("{issuer}-2");

    // By id.
    let a = store
        .save_platform(sample_platform(&issuer, "a", NOW))
        .await
        .expect("save")
        .platform;
    assert_eq!(
        store.platform_by_id(a.id).await.expect("read"),
        Some(a.clone())
    );
    assert!(store
        .platform_by_id(uuid::Uuid::new_v4())
        .await
        .expect("read")
        .is_none());
    let renamed = Platform {
        name: "Renamed".into(),
        ..sample_platform(&issuer, "a", NOW + 1)
    };
    store.save_platform(renamed).await.expect("upsert");
    assert_eq!(
        store
            .platform_by_id(a.id)
            .await
            .expect("read")
            .map(|p| p.name),
        Some("Renamed".to_string()),
        "an upsert keeps the id it is found by"
    );

    // Pages of one issuer: every registration once, in order, then no cursor.
    for client in ["b", "c", "d", "e"] {
        store
            .save_platform(sample_platform(&issuer, client, NOW))
            .await
            .expect("save");
    }
    store
        .save_platform(sample_platform(&neighbour, "a", NOW))
        .await
        .expect("save");
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .platform_page(&PageRequest {
                issuer: Some(issuer.clone()),
                limit: 2,
                cursor: cursor.take(),
            })
            .await
            .expect("page");
        pages += 1;
        assert!(page.platforms.len() <= 2);
        seen.extend(page.platforms.into_iter().map(|p| {
            assert_eq!(p.issuer, issuer, "the issuer filter holds");
            p.client_id
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
    assert_eq!(
        pages, 3,
        "five registrations in pages of two, no empty last page"
    );
    let exact = store
        .platform_page(&PageRequest {
            issuer: Some(neighbour.clone()),
            limit: 1,
            cursor: None,
        })
        .await
        .expect("page");
    assert_eq!(exact.platforms.len(), 1);
    assert!(
        exact.next_cursor.is_none(),
        "a full last page has no cursor"
    );
    // A cursor is only good for the listing it came from.
    let first = store
        .platform_page(&PageRequest {
            issuer: Some(issuer.clone()),
            limit: 1,
            cursor: None,
        })
        .await
        .expect("page");
    let wrong = store
        .platform_page(&PageRequest {
            issuer: Some(neighbour.clone()),
            limit: 1,
            cursor: first.next_cursor.clone(),
        })
        .await;
    assert!(matches!(wrong, Err(PageError::InvalidCursor)));
    let garbage = store
        .platform_page(&PageRequest {
            issuer: None,
            limit: 1,
            cursor: Some("not-a-cursor".into()),
        })
        .await;
    assert!(matches!(garbage, Err(PageError::InvalidCursor)));
    // Without a filter every registration is listed (others' too: the store is shared).
    let all = store
        .platform_page(&PageRequest {
            issuer: None,
            limit: 200,
            cursor: None,
        })
        .await
        .expect("page");
    assert!(all.platforms.iter().filter(|p| p.issuer == issuer).count() == 5);

    // Deployments: listed, removed one by one.
    for d in ["1", "2", "3"] {
        store
            .save_deployment(Deployment {
                issuer: issuer.clone(),
                client_id: "a".into(),
                deployment_id: d.into(),
                created_at: NOW,
            })
            .await
            .expect("save");
    }
    store
        .save_deployment(Deployment {
            issuer: issuer.clone(),
            client_id: "b".into(),
            deployment_id: "1".into(),
            created_at: NOW,
        })
        .await
        .expect("save");
    let mut ids: Vec<String> = store
        .deployments(&issuer, "a")
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.deployment_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["1", "2", "3"]);
    assert!(store
        .delete_deployment(&issuer, "a", "2")
        .await
        .expect("delete"));
    assert!(!store
        .delete_deployment(&issuer, "a", "2")
        .await
        .expect("delete again"));
    assert!(store
        .deployment(&issuer, "a", "2")
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        store.deployments(&issuer, "a").await.expect("list").len(),
        2
    );

    // Routing rules: one record, written only over the version that was read.
    assert!(store.routes(&issuer, "a").await.expect("read").is_none());
    let rule = RouteRule {
        id: uuid::Uuid::new_v4(),
        deployment_id: Some("1".into()),
        context_id: Some("sales".into()),
        landing_url: Some("https://app.example/sales".into()),
        claims: serde_json::json!({"scenarioCode": "SALES-1", "groupId": 7})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        created_at: NOW,
    };
    let set = RouteSet {
        platform_id: a.id,
        version: 0,
        rules: vec![rule.clone()],
    };
    store
        .save_routes(&issuer, "a", &set, 0)
        .await
        .expect("write")
        .expect("first write");
    let read = store
        .routes(&issuer, "a")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(read.version, 1);
    assert_eq!(read.rules, vec![rule.clone()]);
    assert_eq!(read.platform_id, a.id);
    assert!(
        store
            .save_routes(&issuer, "a", &set, 0)
            .await
            .expect("write")
            .is_err(),
        "a write over a stale version is refused"
    );
    store
        .save_routes(
            &issuer,
            "b",
            &RouteSet {
                platform_id: a.id,
                version: 0,
                rules: vec![],
            },
            0,
        )
        .await
        .expect("write")
        .expect("another registration's rules");

    // Delete: the registration, its deployments and rules; nothing of the others.
    let removed = store.delete_platform(&a).await.expect("delete");
    assert_eq!((removed.deployments, removed.routes), (2, 1));
    assert!(store.platform(&issuer, "a").await.expect("read").is_none());
    assert!(store.platform_by_id(a.id).await.expect("read").is_none());
    assert!(store
        .deployments(&issuer, "a")
        .await
        .expect("list")
        .is_empty());
    assert!(store.routes(&issuer, "a").await.expect("read").is_none());
    assert!(store.platform(&issuer, "b").await.expect("read").is_some());
    assert_eq!(
        store.deployments(&issuer, "b").await.expect("list").len(),
        1
    );
    assert!(store.routes(&issuer, "b").await.expect("read").is_some());
    assert_eq!(
        store.delete_platform(&a).await.expect("again"),
        Default::default(),
        "deleting twice removes nothing"
    );
    // A registration made again under the same issuer and client_id is a new one.
    let again = store
        .save_platform(sample_platform(&issuer, "a", NOW + 5))
        .await
        .expect("save");
    assert!(again.created);
    assert_ne!(again.platform.id, a.id);
    assert!(store
        .deployments(&issuer, "a")
        .await
        .expect("list")
        .is_empty());
    // Deleting with a stale id leaves the new registration alone.
    assert_eq!(
        store.delete_platform(&a).await.expect("stale"),
        Default::default()
    );
    assert!(store.platform(&issuer, "a").await.expect("read").is_some());
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

/// What a launch of `user` writes: a fresh launch record (valid for an hour), and the
/// records of course `course-1` and its resource link `link-1`.
pub fn writes(user: &UserRecord) -> LaunchWrites {
    let platform_id = uuid::Uuid::from_u128(7);
    LaunchWrites {
        user: user.clone(),
        launch: LaunchRecord {
            launch_id: unique("launch"),
            platform_id,
            issuer: user.issuer.clone(),
            client_id: user.client_id.clone(),
            deployment_id: "1".into(),
            user_id: user.id.clone(),
            sub: user.sub.clone(),
            roles: vec![crate::launch::roles::RoleKind::Learner],
            message_type: "LtiResourceLinkRequest".into(),
            context_id: Some("course-1".into()),
            resource_link_id: Some("link-1".into()),
            ags: None,
            nrps: None,
            deep_linking: None,
            created_at: user.last_seen_at,
            expires_at: user.last_seen_at + 3600,
        },
        context: Some(ContextRecord {
            platform_id,
            context_id: "course-1".into(),
            issuer: user.issuer.clone(),
            client_id: user.client_id.clone(),
            deployment_id: "1".into(),
            title: Some("Course 1".into()),
            lineitems: Some(format!("{}/course-1/lineitems", user.issuer)),
            ags_scopes: vec!["https://purl.imsglobal.org/spec/lti-ags/scope/score".into()],
            memberships_url: Some(format!("{}/course-1/members", user.issuer)),
            updated_at: user.last_seen_at,
        }),
        link: Some(LinkRecord {
            platform_id,
            context_id: "course-1".into(),
            resource_link_id: "link-1".into(),
            lineitem: Some(format!("{}/course-1/lineitems/9", user.issuer)),
            ags_scopes: vec![],
            updated_at: user.last_seen_at,
        }),
    }
}

/// Runs every [`LaunchStore`] check; `users` reads back what launches wrote.
pub async fn launch_store_contract(
    store: Arc<dyn LaunchStore>,
    users: &dyn UserStore,
    records: &dyn ServiceRecords,
) {
    let issuer = format!("https://{}.example", unique("lms"));
    let user = sample_user(&issuer, &unique("sub"), NOW);

    // A state never issued.
    let never = login_state(&issuer, "a", NOW, 600);
    assert!(matches!(
        store
            .finish_launch(&claim(&never, NOW), &writes(&user))
            .await,
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
        .finish_launch(&claim(&state, NOW + 5), &writes(&user))
        .await
        .expect("first use succeeds");
    assert_eq!(
        users.user(&user.id).await.expect("read"),
        Some(user.clone())
    );
    assert!(matches!(
        store
            .finish_launch(&claim(&state, NOW + 6), &writes(&user))
            .await,
        Err(ConsumeError::AlreadyUsed)
    ));

    // Expired, even if the store has not deleted it yet (TTL deletion is lazy).
    let old = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&old).await.expect("begin");
    assert!(matches!(
        store
            .finish_launch(&claim(&old, NOW + 600), &writes(&user))
            .await,
        Err(ConsumeError::Expired)
    ));

    // Wrong nonce and wrong platform are refused and do not consume the state.
    let fresh = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&fresh).await.expect("begin");
    let mut wrong_nonce = claim(&fresh, NOW);
    wrong_nonce.nonce = "other".into();
    assert!(matches!(
        store.finish_launch(&wrong_nonce, &writes(&user)).await,
        Err(ConsumeError::NonceMismatch)
    ));
    let mut wrong_platform = claim(&fresh, NOW);
    wrong_platform.client_id = "b".into();
    assert!(matches!(
        store.finish_launch(&wrong_platform, &writes(&user)).await,
        Err(ConsumeError::PlatformMismatch)
    ));
    // A later launch of the same user without name or email: the record mirrors what
    // the platform shares now (nothing), keeps created_at and moves last_seen_at.
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
        .finish_launch(&claim(&fresh, NOW + 50), &writes(&anonymous))
        .await
        .expect("the refused attempts did not consume the state");
    let read = users.user(&user.id).await.expect("read").expect("exists");
    assert_eq!(read.email, None, "an email no longer shared is not kept");
    assert_eq!(read.name, None);
    assert_eq!(read.given_name, None);
    assert_eq!(read.created_at, NOW, "created_at is set once");
    assert_eq!(read.last_seen_at, NOW + 50);

    // The same sub under another user scope of the same issuer is another user: its
    // launch neither reads nor overwrites the first one.
    let other_scope = UserRecord {
        id: stable_user_id(&issuer, "https://elsewhere.example/jwks", &user.sub),
        user_scope: "https://elsewhere.example/jwks".into(),
        name: Some("Mallory".into()),
        email: Some("mallory@example.com".into()),
        ..user.clone()
    };
    let again = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&again).await.expect("begin");
    store
        .finish_launch(&claim(&again, NOW + 60), &writes(&other_scope))
        .await
        .expect("launch");
    let first = users.user(&user.id).await.expect("read").expect("exists");
    assert_eq!(
        first.name, None,
        "the other scope's launch did not touch it"
    );
    let second = users
        .user(&other_scope.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(second.email.as_deref(), Some("mallory@example.com"));
    // A 255-character sub is an ordinary user.
    let long_sub = sample_user(&issuer, &"s".repeat(255), NOW);
    let long_state = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&long_state).await.expect("begin");
    store
        .finish_launch(&claim(&long_state, NOW + 1), &writes(&long_sub))
        .await
        .expect("launch");
    assert_eq!(
        users.user(&long_sub.id).await.expect("read"),
        Some(long_sub)
    );

    // Concurrent launches with one state: exactly one succeeds.
    let raced = login_state(&issuer, "a", NOW, 600);
    store.begin_login(&raced).await.expect("begin");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let c = claim(&raced, NOW + 1);
        let u = user.clone();
        tasks.push(tokio::spawn(async move {
            store.finish_launch(&c, &writes(&u)).await
        }));
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
        .record_once(&key, NOW + 60, NOW, &writes(&user))
        .await
        .expect("first use");
    assert!(matches!(
        store
            .record_once(&key, NOW + 60, NOW + 1, &writes(&user))
            .await,
        Err(ConsumeError::AlreadyUsed)
    ));
    assert!(
        matches!(
            store
                .record_once(&key, NOW + 60, NOW + 59, &writes(&user))
                .await,
            Err(ConsumeError::AlreadyUsed)
        ),
        "kept while expires_at > now"
    );
    store
        .record_once(&key, NOW + 200, NOW + 60, &writes(&user))
        .await
        .expect("usable again from expires_at on");

    // What a launch records for the services, in the same atomic write.
    let issuer2 = format!("https://{}.example", unique("lms"));
    let learner = sample_user(&issuer2, "records-user", NOW);
    let first = writes(&learner);
    let state = login_state(&issuer2, "a", NOW, 600);
    store.begin_login(&state).await.expect("begin");
    store
        .finish_launch(&claim(&state, NOW), &first)
        .await
        .expect("launch");
    let id = &first.launch.launch_id;
    assert_eq!(
        records.launch_record(id, NOW + 3599).await.expect("read"),
        Some(first.launch.clone()),
        "the launch record is readable while the app token is valid"
    );
    assert!(
        records
            .launch_record(id, NOW + 3600)
            .await
            .expect("read")
            .is_none(),
        "and not after (TTL deletes late)"
    );
    let platform_id = first.launch.platform_id;
    assert_eq!(
        records
            .context_record(platform_id, "course-1")
            .await
            .expect("read"),
        first.context.clone()
    );
    assert_eq!(
        records
            .link_record(platform_id, "course-1", "link-1")
            .await
            .expect("read"),
        first.link.clone()
    );
    // A refused launch writes none of it.
    let mut refused = writes(&learner);
    refused.context.as_mut().expect("context").title = Some("Renamed".into());
    assert!(store
        .finish_launch(&claim(&state, NOW + 1), &refused)
        .await
        .is_err());
    assert!(records
        .launch_record(&refused.launch.launch_id, NOW + 1)
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        records
            .context_record(platform_id, "course-1")
            .await
            .expect("read")
            .and_then(|c| c.title),
        Some("Course 1".into())
    );
    // A later launch from the course updates what it says.
    let later = login_state(&issuer2, "a", NOW, 600);
    store.begin_login(&later).await.expect("begin");
    let mut updated = writes(&learner);
    updated.context.as_mut().expect("context").title = Some("Course 1, renamed".into());
    store
        .finish_launch(&claim(&later, NOW + 2), &updated)
        .await
        .expect("launch");
    assert_eq!(
        records
            .context_record(platform_id, "course-1")
            .await
            .expect("read")
            .and_then(|c| c.title),
        Some("Course 1, renamed".into())
    );

    // One-time answers: exactly one of many concurrent uses, again once expired.
    let key = unique("answer");
    assert!(records.use_once(&key, NOW + 60, NOW).await.expect("use"));
    assert!(!records
        .use_once(&key, NOW + 60, NOW + 59)
        .await
        .expect("again"));
    assert!(records
        .use_once(&key, NOW + 200, NOW + 60)
        .await
        .expect("expired"));
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

/// Runs every [`ServiceKeyStore`] check.
pub async fn service_key_store_contract(store: &dyn ServiceKeyStore) {
    let id = unique("key");
    assert!(store.service_key(&id).await.expect("read").is_none());
    let record = ServiceKeyRecord {
        id: id.clone(),
        name: "grade sync".into(),
        hash: "h".repeat(43),
        created_at: NOW,
        last_used_at: None,
    };
    store.create_service_key(&record).await.expect("create");
    assert!(
        store.create_service_key(&record).await.is_err(),
        "an id is never overwritten"
    );
    assert_eq!(
        store.service_key(&id).await.expect("read"),
        Some(record.clone()),
        "read back exactly, hash included"
    );
    assert!(store
        .list_service_keys()
        .await
        .expect("list")
        .iter()
        .any(|k| k.id == id));
    store.touch_service_key(&id, NOW + 5).await.expect("touch");
    assert_eq!(
        store
            .service_key(&id)
            .await
            .expect("read")
            .expect("exists")
            .last_used_at,
        Some(NOW + 5)
    );
    assert!(store.delete_service_key(&id).await.expect("delete"));
    assert!(store.service_key(&id).await.expect("read").is_none());
    assert!(!store.delete_service_key(&id).await.expect("delete again"));
}

/// Runs every [`ServiceTokenCache`](crate::services::token::ServiceTokenCache) check.
pub async fn service_token_cache_contract(cache: &dyn crate::services::token::ServiceTokenCache) {
    use crate::error::Secret;
    use crate::services::token::{CachedToken, TokenKey};
    let registration = uuid::Uuid::new_v4();
    let scopes = [
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    ];
    let key = TokenKey::new(registration, &scopes);
    assert!(cache
        .service_token(&key, NOW)
        .await
        .expect("read")
        .is_none());

    let token = CachedToken {
        access_token: Secret::new(unique("token")),
        expires_at: NOW + 3540,
    };
    cache.put_service_token(&key, &token).await.expect("put");
    assert_eq!(
        cache.service_token(&key, NOW).await.expect("read"),
        Some(token.clone()),
        "read back exactly"
    );
    let reordered = TokenKey::new(registration, &[scopes[1], scopes[0], scopes[1]]);
    assert_eq!(
        cache
            .service_token(&reordered, NOW + 3539)
            .await
            .expect("read"),
        Some(token.clone()),
        "the same scopes in another order are the same key"
    );
    assert!(
        cache
            .service_token(&key, NOW + 3540)
            .await
            .expect("read")
            .is_none(),
        "expiry is checked on every read (TTL deletion is lazy)"
    );

    // Other scopes, other registrations (two client_ids of one issuer): other tokens.
    let fewer = TokenKey::new(registration, &scopes[..1]);
    assert!(cache
        .service_token(&fewer, NOW)
        .await
        .expect("read")
        .is_none());
    let sibling = TokenKey::new(uuid::Uuid::new_v4(), &scopes);
    assert!(cache
        .service_token(&sibling, NOW)
        .await
        .expect("read")
        .is_none());
    let sibling_token = CachedToken {
        access_token: Secret::new(unique("sibling")),
        expires_at: NOW + 100,
    };
    cache
        .put_service_token(&sibling, &sibling_token)
        .await
        .expect("put");
    assert_eq!(
        cache.service_token(&key, NOW).await.expect("read"),
        Some(token),
        "a sibling registration's token never replaces this one"
    );

    // A refresh replaces the token.
    let fresh = CachedToken {
        access_token: Secret::new(unique("fresh")),
        expires_at: NOW + 7000,
    };
    cache.put_service_token(&key, &fresh).await.expect("put");
    assert_eq!(
        cache.service_token(&key, NOW + 5000).await.expect("read"),
        Some(fresh)
    );
    assert_eq!(
        cache.service_token(&sibling, NOW).await.expect("read"),
        Some(sibling_token)
    );
}
