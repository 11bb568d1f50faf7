//! The snapshot's schema version, and whether a data plane can read it.
//!
//! Controller and data planes are upgraded separately (a rolling upgrade
//! runs a newer controller with older data planes for a while), so the
//! snapshot names the schema it was written in as `MAJOR.MINOR` and the
//! data plane decides before building anything:
//!
//! - a new **optional** field (one an older data plane may ignore and
//!   still serve correctly) is a **minor** bump: [`SCHEMA_MINOR`] + 1;
//! - a change an older data plane would misread — a field whose absence
//!   changes meaning, a renamed or removed field, a new enum variant in a
//!   place every data plane must understand, different units — is a
//!   **major** bump: [`SCHEMA_MAJOR`] + 1, minor back to 0.
//!
//! Bump by hand in the commit that changes the schema. Snapshot structs do
//! not refuse unknown fields, so a data plane one minor version older
//! accepts a newer controller's snapshot; a different major is refused with
//! a clear message and reported to the controller, and the data plane keeps
//! serving its previous snapshot. A snapshot without `schemaVersion` was
//! written before versioning and reads as 1.0.

use std::fmt;

/// Major version of the snapshot schema this crate writes and reads.
pub const SCHEMA_MAJOR: u32 = 1;
/// Minor version of the snapshot schema this crate writes (1.1: the
/// sentinels' optional credentials in `RedisMode::Sentinel`; 1.2: a
/// listener's `sessionResumption` in its TLS options; 1.3: the compile's
/// `traceparent`).
pub const SCHEMA_MINOR: u32 = 3;

/// This crate's schema version as written in snapshots, `MAJOR.MINOR`.
pub fn schema_version() -> String {
    format!("{SCHEMA_MAJOR}.{SCHEMA_MINOR}")
}

/// Why a snapshot's schema version cannot be read by this data plane.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The version is not `MAJOR.MINOR`.
    #[error("snapshot schema version {0:?} is not MAJOR.MINOR")]
    Malformed(String),
    /// Another major version.
    #[error("snapshot schema {found} is not supported by this data plane ({SCHEMA_MAJOR}.x)")]
    Unsupported {
        /// The version the snapshot was written in.
        found: String,
    },
}

/// A parsed `MAJOR.MINOR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Checks that a snapshot written in schema `version` can be served by
/// this crate's reader: same major, any minor (fields of a newer minor are
/// ignored). An empty version is a snapshot from before versioning: 1.0.
///
/// # Errors
///
/// [`SchemaError`] for a malformed version or another major.
pub fn check_schema(version: &str) -> Result<SchemaVersion, SchemaError> {
    if version.is_empty() {
        return Ok(SchemaVersion { major: 1, minor: 0 });
    }
    let malformed = || SchemaError::Malformed(version.to_string());
    let (major, minor) = version.split_once('.').ok_or_else(malformed)?;
    let parsed = SchemaVersion {
        major: major.parse().map_err(|_| malformed())?,
        minor: minor.parse().map_err(|_| malformed())?,
    };
    if parsed.major != SCHEMA_MAJOR {
        return Err(SchemaError::Unsupported {
            found: version.to_string(),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same major reads, whatever the minor; another major or garbage does not.
    #[test]
    fn same_major_reads() {
        assert!(check_schema(&schema_version()).is_ok());
        assert!(check_schema("").is_ok());
        assert!(check_schema(&format!("{SCHEMA_MAJOR}.{}", SCHEMA_MINOR + 7)).is_ok());
        let next = format!("{}.0", SCHEMA_MAJOR + 1);
        assert_eq!(
            check_schema(&next).map_err(|e| e.to_string()),
            Err(format!(
                "snapshot schema {next} is not supported by this data plane ({SCHEMA_MAJOR}.x)"
            ))
        );
        for bad in ["1", "a.b", "1.0.0", ".1"] {
            assert!(
                matches!(check_schema(bad), Err(SchemaError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
