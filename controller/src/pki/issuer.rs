//! The certificate issuer: gives every published Gateway's data plane a
//! client certificate, and renews it before it expires.
//!
//! It runs on the leader only (one writer, no two replicas issuing
//! competing certificates). Every `check_every` it goes through the
//! Gateways the publisher has snapshots for (compiled Gateways of
//! Tollgate's class); a Gateway that no longer exists is skipped, and its
//! Secret goes with it (owned by the Gateway). Secrets known fresh are not
//! read again until `recheck` passes, so a steady state costs no API calls
//! beyond a periodic look (which also repairs a deleted or edited Secret).

use super::ca::{Ca, PkiError};
use super::names::{client_secret_name, identity};
use super::secret::{client_secret, needs_renewal};
use crate::publisher::Publisher;
use gateway_api::experimental::gateways::Gateway;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Field manager of the issuer's writes.
const FIELD_MANAGER: &str = "tollgate.dev/certificate-issuer";

/// Reads files, by their key in a client Secret.
pub type ReadFiles = fn() -> anyhow::Result<BTreeMap<String, String>>;

/// How the issuer runs.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// Validity of a client certificate (default 30 days); renewed when
    /// less than a third is left.
    pub lifetime: Duration,
    /// Period of looking for Gateways without a fresh certificate.
    pub check_every: Duration,
    /// How long a Secret found fresh is trusted without reading it again.
    pub recheck: Duration,
    /// Files every client Secret also carries, by key: the OTLP
    /// exporter's CA and client certificate, which the controller's
    /// `OTEL_EXPORTER_OTLP_*CERTIFICATE`/`*CLIENT_KEY` variables name, and
    /// the values data planes read by `secretKeyRef` (export headers,
    /// proxy URLs; see [`tollgate_provision::names::otlp_file_key`] and
    /// `otlp_secret_key`).
    pub extra_files: BTreeMap<String, String>,
    /// Reads [`IssuerConfig::extra_files`] again, each round: a renewed
    /// file (cert-manager renewing the exporter's certificate, the kubelet
    /// updating the controller's mounted Secret) reaches every data
    /// plane's Secret within a round, without a restart.
    pub reload_extra_files: Option<ReadFiles>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            lifetime: Duration::from_secs(30 * 24 * 3600),
            check_every: Duration::from_secs(2),
            recheck: Duration::from_secs(60),
            extra_files: BTreeMap::new(),
            reload_extra_files: None,
        }
    }
}

/// Issues client certificates while `leader` is true.
pub struct Issuer {
    client: kube::Client,
    ca: Arc<Ca>,
    publisher: Publisher,
    config: IssuerConfig,
    /// Gateway → when its Secret was last found or made fresh.
    fresh: HashMap<String, Instant>,
    /// Whether the last reading of the extra files failed (warned once).
    reload_failing: bool,
}

impl Issuer {
    /// An issuer of `ca`'s certificates for `publisher`'s Gateways.
    pub fn new(
        client: kube::Client,
        ca: Arc<Ca>,
        publisher: Publisher,
        config: IssuerConfig,
    ) -> Issuer {
        Issuer {
            client,
            ca,
            publisher,
            config,
            fresh: HashMap::new(),
            reload_failing: false,
        }
    }

    /// Runs until `leader` closes, issuing only while it is true.
    pub async fn run(mut self, mut leader: watch::Receiver<bool>) {
        loop {
            if *leader.borrow_and_update() {
                self.round().await;
                tokio::select! {
                    () = tokio::time::sleep(self.config.check_every) => {}
                    changed = leader.changed() => if changed.is_err() { return },
                }
            } else {
                // A new leader trusts nothing it saw while following.
                self.fresh.clear();
                if leader.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// One pass over the published Gateways.
    pub async fn round(&mut self) {
        self.reload_extra_files();
        for gateway in self.publisher.gateways() {
            if self
                .fresh
                .get(&gateway)
                .is_some_and(|at| at.elapsed() < self.config.recheck)
            {
                continue;
            }
            match self.ensure(&gateway).await {
                Ok(true) => {
                    self.fresh.insert(gateway, Instant::now());
                }
                Ok(false) => {
                    self.fresh.remove(&gateway);
                }
                Err(error) => {
                    tracing::warn!(%gateway, %error, "cannot issue the data plane's client certificate; will retry");
                }
            }
        }
    }

    /// Reads the extra files again; when they changed, every Secret is
    /// checked (and rewritten) this round. A file that cannot be read
    /// keeps the last contents.
    fn reload_extra_files(&mut self) {
        let Some(reload) = self.config.reload_extra_files else {
            return;
        };
        match reload() {
            Ok(files) => {
                self.reload_failing = false;
                if files != self.config.extra_files {
                    tracing::info!(
                        files = ?files.keys().collect::<Vec<_>>(),
                        "the OTLP files changed; copying them to every data plane's Secret"
                    );
                    self.config.extra_files = files;
                    self.fresh.clear();
                }
            }
            Err(error) if !self.reload_failing => {
                self.reload_failing = true;
                tracing::warn!(%error, "cannot read the OTLP files again; data planes keep the last copies");
            }
            Err(_) => {}
        }
    }

    /// Makes `namespace/name`'s Secret fresh; `false` when the Gateway
    /// does not exist (any more).
    async fn ensure(&self, gateway: &str) -> Result<bool, PkiError> {
        let Some((namespace, name)) = gateway.split_once('/') else {
            return Ok(false);
        };
        let gateways: Api<Gateway> = Api::namespaced(self.client.clone(), namespace);
        let Some(gw) = gateways.get_opt(name).await? else {
            return Ok(false);
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret_name = client_secret_name(name);
        let existing = secrets.get_opt(&secret_name).await?;
        let id = identity(namespace, name);
        let now = SystemTime::now();
        let extra = &self.config.extra_files;
        if !needs_renewal(existing.as_ref(), &id, self.ca.cert_pem(), extra, now) {
            return Ok(true);
        }
        let issued = self
            .ca
            .issue_client(namespace, name, now, self.config.lifetime)?;
        let mut secret = client_secret(&issued, self.ca.cert_pem(), &id, extra);
        secret.metadata.name = Some(secret_name.clone());
        secret.metadata.namespace = Some(namespace.to_string());
        let class = &gw.spec.gateway_class_name;
        secret.metadata.labels = Some(tollgate_provision::names::labels(name, class));
        secret.metadata.owner_references = gw.metadata.uid.clone().map(|uid| {
            vec![OwnerReference {
                api_version: "gateway.networking.k8s.io/v1".into(),
                kind: "Gateway".into(),
                name: name.to_string(),
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        });
        let patch = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": secret.metadata,
            "type": secret.type_,
            "data": secret.data,
        });
        secrets
            .patch(
                &secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await?;
        tracing::info!(%gateway, secret = %secret_name, renewed = existing.is_some(), "issued the data plane's client certificate");
        Ok(true)
    }
}
