//! The snapshot PKI: a CA kept in a Secret, the snapshot server's mutual
//! TLS, and each Gateway's data-plane client certificate.
//!
//! A data plane's snapshot holds its Gateway's TLS keys and credentials,
//! so in a cluster the snapshot port serves only clients with a
//! certificate from this CA, and a certificate names exactly one Gateway
//! (URI SAN `urn:tollgate:gateway:NS:NAME`): a pod of Gateway A can read
//! A's snapshot and post A's reports, nothing else.
//!
//! - `names`: generated object names and the certificate identity;
//! - `ca`: the CA and what it issues (rcgen, ECDSA P-256);
//! - `secret`: the CA Secret (create-if-absent) and client Secrets;
//! - `issuer`: the leader's loop issuing and renewing client certificates;
//! - `authz`: which Gateway's paths a request may use;
//! - `server`: the serving certificate, client verification, identity.

pub mod authz;
pub mod ca;
pub mod issuer;
pub mod names;
pub mod secret;
pub mod server;

pub use ca::{Ca, Issued, PkiError};
pub use issuer::{Issuer, IssuerConfig};
pub use server::{ServerCert, server_config, server_hosts};
