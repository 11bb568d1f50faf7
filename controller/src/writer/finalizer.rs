//! The GatewayClass finalizer: a class in use cannot disappear.
//!
//! The Gateway API asks implementations to put
//! `gateway-exists-finalizer.gateway.networking.k8s.io` on a GatewayClass
//! while Gateways of that class exist, and to take it off when the last one
//! goes, so deleting a class in use waits for its Gateways. Tollgate does
//! this for its own classes only.

use super::error::WriteError;
use super::kinds::Kind;
use kube::Client;
use kube::api::{DynamicObject, ListParams, PostParams};
use serde_json::Value;
use std::collections::BTreeSet;
use tracing::info;

/// The finalizer the Gateway API names for classes in use.
pub const FINALIZER: &str = "gateway-exists-finalizer.gateway.networking.k8s.io";
/// Attempts of one read-modify-write.
const MAX_ATTEMPTS: usize = 5;

/// Puts the finalizer on each of `classes` that Gateways use and takes it
/// off the others.
///
/// # Errors
///
/// Listing Gateways or updating a class failed.
pub(crate) async fn sync_finalizers(
    client: &Client,
    classes: &BTreeSet<String>,
) -> Result<(), WriteError> {
    let (Some(gateway), Some(class)) = (Kind::find("Gateway"), Kind::find("GatewayClass")) else {
        return Ok(());
    };
    let gateways = gateway.api_all(client).list(&ListParams::default()).await?;
    let in_use: BTreeSet<&str> = gateways
        .items
        .iter()
        .filter_map(|g| g.data.get("spec")?.get("gatewayClassName")?.as_str())
        .collect();
    let api = class.api(client, None);
    for name in classes {
        ensure(&api, name, in_use.contains(name.as_str())).await?;
    }
    Ok(())
}

/// Adds or removes the finalizer on class `name`; a class being deleted
/// gets no new finalizer (the API server refuses that).
async fn ensure(
    api: &kube::Api<DynamicObject>,
    name: &str,
    wanted: bool,
) -> Result<(), WriteError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(mut class) = api.get_opt(name).await? else {
            return Ok(());
        };
        let finalizers = class.metadata.finalizers.get_or_insert_with(Vec::new);
        let has = finalizers.iter().any(|f| f == FINALIZER);
        let deleting = class.metadata.deletion_timestamp.is_some();
        if has == wanted || (wanted && deleting) {
            return Ok(());
        }
        if wanted {
            finalizers.push(FINALIZER.to_string());
        } else {
            finalizers.retain(|f| f != FINALIZER);
        }
        // The status is not ours to send back through the main resource.
        if let Value::Object(data) = &mut class.data {
            data.remove("status");
        }
        match api.replace(name, &PostParams::default(), &class).await {
            Ok(_) => {
                info!(
                    class = name,
                    added = wanted,
                    "GatewayClass finalizer updated"
                );
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WriteError::Conflicts(MAX_ATTEMPTS))
}
