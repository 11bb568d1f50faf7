//! Condition builders: every status condition `compile` writes goes through
//! here, so each carries the same `lastTransitionTime` ([`CompileOptions::now`])
//! and the `observedGeneration` of the object it describes.
//!
//! Reason strings are the Gateway API's (`apis/v1/*_types.go`); they are
//! constants so a typo cannot invent a reason.
//!
//! [`CompileOptions::now`]: super::CompileOptions::now

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The `now` and `generation` stamped on the conditions of one object.
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    now: Time,
    generation: Option<i64>,
}

impl Stamp {
    /// Conditions for an object at `generation`, transitioned at `now`.
    ///
    /// An unparsable `now` falls back to the Unix epoch rather than failing:
    /// the time is informational and compile must not depend on it.
    pub(crate) fn new(now: &str, generation: Option<i64>) -> Self {
        let ts = now.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
        Stamp {
            now: Time(ts),
            generation,
        }
    }

    /// The same time for another object.
    pub(crate) fn for_generation(&self, generation: Option<i64>) -> Self {
        Stamp {
            now: self.now.clone(),
            generation,
        }
    }

    /// A condition with status `True` or `False`.
    pub(crate) fn condition(
        &self,
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Condition {
        Condition {
            last_transition_time: self.now.clone(),
            message: message.into(),
            observed_generation: self.generation,
            reason: reason.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            type_: type_.to_string(),
        }
    }
}

/// A reason and a human message: why something is not accepted or resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The Gateway API reason.
    pub(crate) reason: &'static str,
    /// What the user should fix.
    pub(crate) message: String,
}

impl Problem {
    /// A problem with `reason` and `message`.
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// Condition types.
pub(crate) mod types {
    pub(crate) const ACCEPTED: &str = "Accepted";
    pub(crate) const PROGRAMMED: &str = "Programmed";
    pub(crate) const RESOLVED_REFS: &str = "ResolvedRefs";
    pub(crate) const CONFLICTED: &str = "Conflicted";
    pub(crate) const SUPPORTED_VERSION: &str = "SupportedVersion";
    pub(crate) const PARTIALLY_INVALID: &str = "PartiallyInvalid";
    pub(crate) const INSECURE_FRONTEND_VALIDATION_MODE: &str = "InsecureFrontendValidationMode";
}

/// Condition reasons.
pub(crate) mod reasons {
    pub(crate) const ACCEPTED: &str = "Accepted";
    pub(crate) const PROGRAMMED: &str = "Programmed";
    pub(crate) const RESOLVED_REFS: &str = "ResolvedRefs";
    pub(crate) const INVALID: &str = "Invalid";
    pub(crate) const INVALID_PARAMETERS: &str = "InvalidParameters";
    pub(crate) const SUPPORTED_VERSION: &str = "SupportedVersion";
    pub(crate) const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    pub(crate) const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
    pub(crate) const ADDRESS_NOT_USABLE: &str = "AddressNotUsable";
    pub(crate) const NO_CONFLICTS: &str = "NoConflicts";
    pub(crate) const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub(crate) const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    pub(crate) const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub(crate) const PORT_UNAVAILABLE: &str = "PortUnavailable";
    pub(crate) const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    pub(crate) const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    pub(crate) const INCOMPATIBLE_FILTERS: &str = "IncompatibleFilters";
    pub(crate) const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    pub(crate) const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    pub(crate) const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    pub(crate) const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    pub(crate) const INVALID_KIND: &str = "InvalidKind";
    pub(crate) const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    pub(crate) const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    pub(crate) const INVALID_CA_CERTIFICATE_REF: &str = "InvalidCACertificateRef";
    pub(crate) const CONFLICTED: &str = "Conflicted";
    pub(crate) const TARGET_NOT_FOUND: &str = "TargetNotFound";
    pub(crate) const NO_VALID_CA_CERTIFICATE: &str = "NoValidCACertificate";
    pub(crate) const INVALID_CLIENT_CERTIFICATE_REF: &str = "InvalidClientCertificateRef";
    pub(crate) const INVALID_CA_CERTIFICATE_KIND: &str = "InvalidCACertificateKind";
    pub(crate) const CONFIGURATION_CHANGED: &str = "ConfigurationChanged";
    /// Tollgate's: the annotation's revocation lists cannot be loaded.
    pub(crate) const INVALID_REVOCATION_LIST: &str = "InvalidRevocationList";
}
