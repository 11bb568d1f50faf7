//! Only referenced Secrets are held whole by the file provider.

use super::super::FileProvider;
use std::path::PathBuf;

const SECRETS: &str = "apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: default}
stringData: {tls.crt: CERT, tls.key: KEY}
---
apiVersion: v1
kind: Secret
metadata: {name: keys, namespace: default, labels: {team: a}}
stringData: {key: KEY-A}
";

/// Gateway `gw` whose HTTPS listener names Secret `cert`.
fn gateway(cert: &str) -> String {
    let listener = format!(
        "{{name: https, port: 443, protocol: HTTPS, tls: {{certificateRefs: [{{name: {cert}}}]}}}}"
    );
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\nspec: {{gatewayClassName: tollgate, listeners: [{listener}]}}\n"
    )
}

const SELECTOR: &str = "apiVersion: tollgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: keys, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  apiKeyAuth: {selector: {matchLabels: {team: a}}}
";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-held-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How many Secrets the provider's per-file cache holds with data.
fn whole(provider: &FileProvider) -> Vec<String> {
    let secrets = provider.files.values().flat_map(|r| &r.secrets);
    let with_data = secrets.filter(|(_, s)| s.data.is_some() || s.string_data.is_some());
    with_data.map(|(k, _)| k.clone()).collect()
}

/// An unreferenced Secret is neither in the view nor held with its data;
/// once a Gateway edit references it, its file is read again and the view
/// carries its data; when the reference goes, the data goes too.
#[test]
fn a_secret_referenced_later_is_read_again() {
    let dir = temp_dir("later");
    std::fs::write(dir.join("secrets.yaml"), SECRETS).unwrap();
    std::fs::write(dir.join("gw.yaml"), gateway("other")).unwrap();
    let mut provider = FileProvider::new(&dir);
    let (view, errors) = provider.load();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(view.secrets.is_empty(), "{:?}", view.secrets.keys());
    assert!(
        whole(&provider).is_empty(),
        "held whole: {:?}",
        whole(&provider)
    );

    std::fs::write(dir.join("gw.yaml"), gateway("cert")).unwrap();
    let (view, _) = provider.load();
    let cert = view
        .secrets
        .get("default/cert")
        .expect("referenced Secret in the view");
    let data = cert.string_data.as_ref().expect("its data");
    assert_eq!(data.get("tls.key").map(String::as_str), Some("KEY"));
    assert_eq!(view.secrets.len(), 1);
    assert_eq!(whole(&provider), ["default/cert"]);

    std::fs::write(dir.join("gw.yaml"), gateway("other")).unwrap();
    let (view, _) = provider.load();
    assert!(view.secrets.is_empty());
    assert!(whole(&provider).is_empty());
}

/// A Secret an AuthPolicy picks by label is wanted too: its labels stay
/// with its identity, so adding the policy later finds and loads it.
#[test]
fn a_secret_picked_by_label_is_held_whole() {
    let dir = temp_dir("label");
    std::fs::write(dir.join("secrets.yaml"), SECRETS).unwrap();
    let mut provider = FileProvider::new(&dir);
    let (view, _) = provider.load();
    assert!(view.secrets.is_empty());

    std::fs::write(dir.join("policy.yaml"), SELECTOR).unwrap();
    let (view, errors) = provider.load();
    assert!(errors.is_empty(), "{errors:?}");
    let keys = view.secrets.get("default/keys").expect("selected Secret");
    assert_eq!(
        keys.string_data
            .as_ref()
            .and_then(|d| d.get("key"))
            .map(String::as_str),
        Some("KEY-A")
    );
    assert_eq!(whole(&provider), ["default/keys"]);
}

/// A referenced Secret edited in its file reaches the view with the new
/// data.
#[test]
fn a_referenced_secret_update_is_read() {
    let dir = temp_dir("update");
    std::fs::write(dir.join("gw.yaml"), gateway("cert")).unwrap();
    std::fs::write(dir.join("secrets.yaml"), SECRETS).unwrap();
    let mut provider = FileProvider::new(&dir);
    provider.load();
    std::fs::write(
        dir.join("secrets.yaml"),
        SECRETS.replace("tls.key: KEY}", "tls.key: KEY2}"),
    )
    .unwrap();
    let (view, _) = provider.load();
    let data = view.secrets["default/cert"].string_data.clone().unwrap();
    assert_eq!(data["tls.key"], "KEY2");
}
