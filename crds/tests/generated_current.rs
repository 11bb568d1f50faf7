//! The committed CRD YAML under `crds/generated/` equals what the code
//! generates, and Tollgate's own CRDs document every field (so `kubectl
//! explain` works). Regenerate with `make crds`.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tollgate_crds::generate::{self, GeneratedFile};

fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("generated")
}

fn files() -> Vec<GeneratedFile> {
    generate::all().unwrap()
}

/// Every generated CRD is committed byte for byte.
#[test]
fn committed_crds_are_current() {
    let mut stale = Vec::new();
    for file in files() {
        let path = generated_dir().join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == file.yaml => {}
            Ok(_) => stale.push(format!("crds/generated/{} differs", file.path)),
            Err(_) => stale.push(format!("crds/generated/{} is missing", file.path)),
        }
    }
    assert!(
        stale.is_empty(),
        "generated CRDs are out of date; run `make crds` and commit the result:\n  {}",
        stale.join("\n  ")
    );
}

/// No committed YAML is left over from a CRD the code no longer generates.
#[test]
fn no_stale_crd_files() {
    let wanted: BTreeSet<String> = files().into_iter().map(|f| f.path).collect();
    let mut found = BTreeSet::new();
    for dir in ["", "gateway-api/"] {
        for entry in std::fs::read_dir(generated_dir().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") {
                found.insert(format!("{dir}{name}"));
            }
        }
    }
    let extra: Vec<&String> = found.difference(&wanted).collect();
    assert!(
        extra.is_empty(),
        "crds/generated holds files no CRD generates: {extra:?}; run `make crds`"
    );
}

/// The expected set of CRDs, one file each, named `<group>_<plural>.yaml`.
#[test]
fn generates_the_expected_crds() {
    let paths: Vec<String> = files().into_iter().map(|f| f.path).collect();
    let want = [
        "gateway-api/gateway.networking.k8s.io_backendtlspolicies.yaml",
        "gateway-api/gateway.networking.k8s.io_gatewayclasses.yaml",
        "gateway-api/gateway.networking.k8s.io_gateways.yaml",
        "gateway-api/gateway.networking.k8s.io_grpcroutes.yaml",
        "gateway-api/gateway.networking.k8s.io_httproutes.yaml",
        "gateway-api/gateway.networking.k8s.io_listenersets.yaml",
        "gateway-api/gateway.networking.k8s.io_referencegrants.yaml",
        "gateway-api/gateway.networking.k8s.io_tlsroutes.yaml",
        "tollgate.dev_authpolicies.yaml",
        "tollgate.dev_gatewayconfigs.yaml",
        "tollgate.dev_ratelimitpolicies.yaml",
    ];
    assert_eq!(paths, want);
    for file in files() {
        assert!(file.yaml.starts_with(generate::HEADER), "{}", file.path);
    }
}

/// Collects the paths of schema properties that have no `description`.
fn undocumented(schema: &serde_yaml::Value, at: &str, out: &mut Vec<String>) {
    let Some(props) = schema.get("properties").and_then(|p| p.as_mapping()) else {
        return;
    };
    for (name, prop) in props {
        let path = format!("{at}.{}", name.as_str().unwrap_or("?"));
        if prop.get("description").is_none() {
            out.push(path.clone());
        }
        undocumented(prop, &path, out);
        if let Some(items) = prop.get("items") {
            undocumented(items, &format!("{path}[]"), out);
        }
    }
}

/// Every field of Tollgate's own CRDs carries a description.
#[test]
fn tollgate_crd_fields_are_documented() {
    for file in files().into_iter().filter(|f| !f.path.contains('/')) {
        let crd: serde_yaml::Value = serde_yaml::from_str(&file.yaml).unwrap();
        let mut missing = Vec::new();
        for version in crd["spec"]["versions"].as_sequence().unwrap() {
            let schema = &version["schema"]["openAPIV3Schema"];
            assert!(schema.get("description").is_some(), "{}", file.path);
            let mut top = Vec::new();
            undocumented(schema, "", &mut top);
            // apiVersion, kind and metadata are Kubernetes' own fields.
            missing.extend(
                top.into_iter()
                    .filter(|p| !matches!(p.as_str(), ".apiVersion" | ".kind" | ".metadata")),
            );
        }
        assert!(
            missing.is_empty(),
            "{}: undocumented fields {missing:?}",
            file.path
        );
    }
}
