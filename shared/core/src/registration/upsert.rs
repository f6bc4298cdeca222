//! Storing a registration: the one path every new or changed registration takes —
//! `POST|PUT|PATCH /admin/platforms` and LTI Dynamic Registration alike. It validates
//! every field ([`PlatformInput::validate`]), refuses audience conflicts between
//! standard and direct registrations of an issuer, decides the user scope, writes the
//! deployment then the registration (both idempotent: a retry completes a half-made
//! one), and writes the audit line.

use crate::config::ToolConfig;
use crate::error::StoreError;
use crate::platform::{
    Deployment, FieldError, InvalidPlatform, LaunchProfile, Platform, PlatformInput,
};
use crate::registration::audit::{AdminActor, AuditEntry, AuditSink};
use crate::registration::PlatformAdmin;

/// Registrations of one issuer read to decide a new one's user scope and check
/// audiences (generous, but bounded).
pub const ISSUER_LIMIT: usize = 10_000;

/// Who changes the registration, and where the change is recorded.
pub struct Change<'a> {
    pub store: &'a dyn PlatformAdmin,
    pub audit: &'a dyn AuditSink,
    pub config: &'a ToolConfig,
    /// Epoch seconds.
    pub now: i64,
    pub who: &'a AdminActor,
    /// The request id, for the audit line.
    pub request_id: String,
}

/// A registration stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub platform: Platform,
    /// True when this call created it.
    pub created: bool,
    /// True when the registration (and its deployment) already said exactly this:
    /// nothing was written and no audit line recorded (an import run twice).
    pub unchanged: bool,
    /// The deployment recorded with it, if any.
    pub deployment_id: Option<String>,
    /// The issuer's registrations as they were before (the new one's user identity is
    /// told from them).
    pub others: Vec<Platform>,
}

/// Storing failed: an invalid field (nothing stored), or the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreRegistrationError {
    #[error(transparent)]
    Invalid(#[from] InvalidPlatform),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates and stores `input`: a new registration, or `existing` updated (an
/// (issuer, clientId) already registered is updated too: the upsert of
/// `POST /admin/platforms`).
pub async fn store_registration(
    change: &Change<'_>,
    input: PlatformInput,
    existing: Option<Platform>,
) -> Result<Stored, StoreRegistrationError> {
    let mut registration = input.validate(change.now, change.config)?;
    let issuer = registration.platform.issuer.clone();
    let others = change
        .store
        .platforms_by_issuer(&issuer, ISSUER_LIMIT)
        .await?;
    let mut conflicts = audience_conflicts(&registration.platform, &others);
    // The user scope: kept by an existing registration (it never changes: app user
    // ids depend on it); else the one asked for (an import); else shared with a
    // registration of the issuer with the same key set; else its own.
    let before = existing.or_else(|| {
        others
            .iter()
            .find(|p| p.client_id == registration.platform.client_id)
            .cloned()
    });
    let asked = registration.platform.user_scope.take();
    let scope = match &before {
        Some(before) => {
            let kept = before.effective_user_scope().to_string();
            if asked.as_ref().is_some_and(|a| *a != kept) {
                conflicts.push(FieldError {
                    field: "userScope".into(),
                    message:
                        "cannot change once the registration exists: app user ids depend on it"
                            .into(),
                });
            }
            kept
        }
        None => asked.unwrap_or_else(|| {
            others
                .iter()
                .find(|p| p.keyset_url == registration.platform.keyset_url)
                .map(|p| p.effective_user_scope().to_string())
                .unwrap_or_else(|| registration.platform.keyset_url.clone())
        }),
    };
    if !conflicts.is_empty() {
        return Err(InvalidPlatform(conflicts).into());
    }
    registration.platform.user_scope = Some(scope);
    if let Some(before) = &before {
        // The same values again (an import run twice): nothing to write or audit.
        let mut candidate = registration.platform.clone();
        candidate.id = before.id;
        candidate.created_at = before.created_at;
        let deployment_known = match &registration.deployment_id {
            None => true,
            Some(d) => change
                .store
                .deployment(&candidate.issuer, &candidate.client_id, d)
                .await?
                .is_some(),
        };
        if deployment_known && changed_fields(before, &candidate).is_empty() {
            return Ok(Stored {
                platform: before.clone(),
                created: false,
                unchanged: true,
                deployment_id: registration.deployment_id,
                others,
            });
        }
    }
    // The deployment first: if saving the platform then fails, a retry of the same
    // request completes the registration (both writes are idempotent).
    if let Some(deployment_id) = &registration.deployment_id {
        change
            .store
            .save_deployment(Deployment {
                issuer: registration.platform.issuer.clone(),
                client_id: registration.platform.client_id.clone(),
                deployment_id: deployment_id.clone(),
                created_at: change.now,
            })
            .await?;
    }
    let saved = change.store.save_platform(registration.platform).await?;
    let platform = saved.platform;
    tracing::debug!(issuer = %platform.issuer, client_id = %platform.client_id, created = saved.created, "platform saved");
    let action = if saved.created {
        "platform.create"
    } else {
        "platform.update"
    };
    let mut entry = AuditEntry::new(
        change.now,
        change.who.clone(),
        action,
        change.request_id.clone(),
    );
    entry.platform_id = Some(platform.id.to_string());
    entry.issuer = Some(platform.issuer.clone());
    entry.client_id = Some(platform.client_id.clone());
    entry.before = before.as_ref().map(|p| p.id.to_string());
    entry.after = Some(platform.id.to_string());
    entry.changed = before
        .as_ref()
        .map(|b| changed_fields(b, &platform))
        .unwrap_or_default();
    if let Some(d) = &registration.deployment_id {
        entry.changed.push(format!("deployment {d}"));
    }
    change.audit.record(&entry);
    Ok(Stored {
        platform,
        created: saved.created,
        unchanged: false,
        deployment_id: registration.deployment_id,
        others,
    })
}

/// A standard registration's client_id must never be the audience of a direct one of
/// the same issuer (nor the reverse): a standard id_token would then launch without
/// its state through the direct path.
pub fn audience_conflicts(new: &Platform, others: &[Platform]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let others = others.iter().filter(|p| p.client_id != new.client_id);
    for other in others {
        match new.launch_profile {
            LaunchProfile::Direct => {
                if new.audience.as_deref() == Some(other.client_id.as_str())
                    && other.launch_profile == LaunchProfile::Standard
                {
                    errors.push(FieldError {
                        field: "audience".into(),
                        message: format!(
                            "is the client_id of a standard registration of this issuer ({}); a direct audience must differ from every standard client_id",
                            other.client_id
                        ),
                    });
                }
            }
            LaunchProfile::Standard => {
                if other.launch_profile == LaunchProfile::Direct
                    && other.audience.as_deref() == Some(new.client_id.as_str())
                {
                    errors.push(FieldError {
                        field: "clientId".into(),
                        message: format!(
                            "is the audience of a direct registration of this issuer ({}); a standard client_id must differ from every direct audience",
                            other.client_id
                        ),
                    });
                }
            }
        }
    }
    // A direct registration's own client_id as its audience is fine: no standard
    // registration can have that (issuer, client_id).
    errors
}

/// The fields an update changed (names only, for the audit line).
pub fn changed_fields(before: &Platform, after: &Platform) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return vec![];
    };
    let mut names: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| *k != "updatedAt" && a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}
