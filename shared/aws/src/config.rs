//! The AWS part of the configuration: which table, which key.

use lti_core::config::ConfigError;

/// Where the functions keep their data and their key.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// `LTI_TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `LTI_KMS_KEY_ID`: key id, key ARN, alias name or alias ARN of the signing key.
    pub kms_key_id: String,
    /// `LTI_PREVIOUS_KMS_KEY_IDS`: comma-separated keys still published after a rotation.
    pub previous_kms_key_ids: Vec<String>,
}

fn required(
    var: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    var(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError {
            variable: name,
            problem: "is not set".into(),
        })
}

impl AwsConfig {
    /// The table name only (functions that do not sign).
    pub fn table_from(var: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
        required(var, "LTI_TABLE_NAME")
    }

    /// The signing key only (the jwks function).
    pub fn key_from(
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, Vec<String>), ConfigError> {
        let key = required(var, "LTI_KMS_KEY_ID")?;
        let previous = var("LTI_PREVIOUS_KMS_KEY_IDS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok((key, previous))
    }

    /// Table and key.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = Self::table_from(var)?;
        let (kms_key_id, previous_kms_key_ids) = Self::key_from(var)?;
        Ok(Self {
            table,
            kms_key_id,
            previous_kms_key_ids,
        })
    }
}
