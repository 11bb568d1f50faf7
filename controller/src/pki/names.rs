//! The data plane's certificate identity, and the names the issuer writes
//! (shared with the operator, so the Secret it writes is the one the
//! Deployment mounts).

pub use tollgate_provision::names::client_secret as client_secret_name;

/// The URI SAN naming Gateway `namespace/name` in its data plane's client
/// certificate; the snapshot server maps it back to the Gateway.
pub fn identity(namespace: &str, name: &str) -> String {
    format!("urn:tollgate:gateway:{namespace}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One identity per Gateway, namespace first.
    #[test]
    fn identities_name_namespace_and_gateway() {
        assert_eq!(identity("ns", "gw"), "urn:tollgate:gateway:ns:gw");
        assert_eq!(client_secret_name("gw"), "gw-tollgate-client");
    }
}
