//! A target: the thing a test runs against (a machine, a node, a cluster).

use serde::{Deserialize, Serialize};

/// A target as ConTest names its fields, so JSON output and descriptors
/// written for ConTest read unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Target {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "FQDN", default, skip_serializing_if = "String::is_empty")]
    pub fqdn: String,
    #[serde(
        rename = "PrimaryIPv4",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub primary_ipv4: String,
    #[serde(
        rename = "PrimaryIPv6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub primary_ipv6: String,
}

impl Target {
    /// A target known only by its ID.
    pub fn with_id(id: impl Into<String>) -> Self {
        Target {
            id: id.into(),
            ..Default::default()
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fqdn.is_empty() {
            write!(f, "{}", self.id)
        } else {
            write!(f, "{} ({})", self.id, self.fqdn)
        }
    }
}
