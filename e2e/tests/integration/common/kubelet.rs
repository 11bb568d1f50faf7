//! Plays the kubelet for the Helm end-to-end test: a container of a
//! Deployment's pod template, read from the API server, becomes the
//! arguments and environment of a local process, the way the kubelet
//! builds them. Environment values come from `value`, from the downward
//! API (`metadata.name`, `metadata.namespace`) or from a Secret's key
//! (`secretKeyRef`, once the Secret exists); `$(VAR)` references in
//! values and arguments expand as the kubelet expands them; Secret volumes
//! become folders holding the Secret's keys as files, emptyDirs become
//! fresh folders, and arguments and environment values naming a mount
//! path (or a file under it) are pointed at its folder. Anything else a pod template may use fails the test, so a
//! template that needs more than this never passes by accident.

#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use base64::Engine as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;

/// One pod's process as the kubelet would start it from a pod template.
#[derive(Clone, Debug)]
pub struct Pod {
    /// The pod's name (`metadata.name` for the downward API).
    pub name: String,
    /// The container's arguments, expanded, mount paths mapped to folders.
    pub args: Vec<String>,
    /// The container's environment, resolved, mount paths mapped to
    /// folders.
    pub env: Vec<(String, String)>,
    /// Each volume mount: (mount path, the folder standing for it).
    pub mounts: Vec<(String, PathBuf)>,
}

impl Pod {
    /// Reads the pod template of `deployment` (as stored by the API server)
    /// and builds the process of its container `container` for pod `name`
    /// in the Deployment's namespace; volumes are made under `root`.
    /// Secret volumes wait (up to 20 s) for their Secret to exist, as a
    /// pod stays `ContainerCreating` until then.
    pub async fn from_template(
        server: &ApiServer,
        deployment: &Value,
        container: &str,
        name: &str,
        root: &Path,
    ) -> Pod {
        let namespace = deployment["metadata"]["namespace"]
            .as_str()
            .expect("the Deployment has a namespace");
        let spec = &deployment["spec"]["template"]["spec"];
        let c = spec["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == container))
            .unwrap_or_else(|| panic!("no container {container} in {spec:#}"));
        let secrets = secret_refs(server, c, namespace).await;
        let env = resolve_env(c, name, namespace, &secrets);
        let dir = root.join(name);
        let mounts = mount_volumes(server, spec, c, namespace, &dir).await;
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| {
                let v = map_mount_path(&v, &mounts);
                (k, v)
            })
            .collect();
        let args = strings(&c["args"])
            .iter()
            .map(|a| map_mount_path(&expand(a, &env), &mounts))
            .collect();
        Pod {
            name: name.to_string(),
            args,
            env,
            mounts,
        }
    }

    /// Replaces the value following `flag`; the flag must be there.
    pub fn set_flag(&mut self, flag: &str, value: &str) {
        let at = self
            .args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag} is not among {:?}", self.args));
        self.args[at + 1] = value.to_string();
    }

    /// The value following `flag`, if the flag is there.
    pub fn flag(&self, flag: &str) -> Option<&str> {
        let at = self.args.iter().position(|a| a == flag)?;
        self.args.get(at + 1).map(String::as_str)
    }

    /// The value of environment variable `name`, if set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The strings of a JSON array (none when absent).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Values of a Secret's keys, by (Secret, key).
type SecretValues = BTreeMap<(String, String), String>;

/// The values the container's `secretKeyRef` variables name, each
/// Secret waited for as a pod waits for it.
async fn secret_refs(server: &ApiServer, container: &Value, namespace: &str) -> SecretValues {
    let mut values = SecretValues::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let reference = &var["valueFrom"]["secretKeyRef"];
        let (Some(name), Some(key)) = (reference["name"].as_str(), reference["key"].as_str())
        else {
            continue;
        };
        let secret = wait_secret(server, namespace, name).await;
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("Secret {namespace}/{name} has no key {key}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64 Secret data");
        let text = String::from_utf8(bytes).expect("a UTF-8 Secret value");
        values.insert((name.to_string(), key.to_string()), text);
    }
    values
}

/// The container's `env`, in order: `value` (expanded with the variables
/// defined before it, as the kubelet does), a downward-API `fieldRef`, or
/// a `secretKeyRef` from `secrets`.
pub fn resolve_env(
    container: &Value,
    pod: &str,
    namespace: &str,
    secrets: &SecretValues,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name").to_string();
        let value = if let Some(value) = var["value"].as_str() {
            expand(value, &env)
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod.to_string(),
                "metadata.namespace" => namespace.to_string(),
                other => panic!("the test kubelet does not resolve fieldRef {other}"),
            }
        } else if let Some(reference) = var["valueFrom"].get("secretKeyRef") {
            let at = |f: &str| reference[f].as_str().unwrap_or_default().to_string();
            secrets
                .get(&(at("name"), at("key")))
                .cloned()
                .unwrap_or_else(|| panic!("{var}: not read"))
        } else if var.get("valueFrom").is_some() {
            panic!("the test kubelet does not resolve {var}");
        } else {
            String::new()
        };
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    }
    env
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an
/// undefined reference stays as written, `$$` is one `$`.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(end) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + end];
            match env.iter().find(|(k, _)| k == name) {
                Some((_, value)) => out.push_str(value),
                None => out.push_str(&tail[..3 + end]),
            }
            rest = &tail[3 + end..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `arg` with a leading mount path replaced by the folder standing for it.
fn map_mount_path(arg: &str, mounts: &[(String, PathBuf)]) -> String {
    for (path, dir) in mounts {
        if arg == path {
            return dir.display().to_string();
        }
        if let Some(rest) = arg.strip_prefix(path.as_str())
            && rest.starts_with('/')
        {
            return format!("{}{rest}", dir.display());
        }
    }
    arg.to_string()
}

/// Makes a folder under `dir` for each of the container's volume mounts:
/// a Secret volume holds the Secret's keys as files (mode `defaultMode`),
/// an emptyDir is empty.
async fn mount_volumes(
    server: &ApiServer,
    spec: &Value,
    container: &Value,
    namespace: &str,
    dir: &Path,
) -> Vec<(String, PathBuf)> {
    let _ = std::fs::remove_dir_all(dir);
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().expect("mount name");
        let path = mount["mountPath"].as_str().expect("mountPath").to_string();
        let volume = spec["volumes"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"] == name))
            .unwrap_or_else(|| panic!("volume {name} is mounted but not declared"));
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).expect("volume folder");
        if let Some(secret) = volume.get("secret") {
            let secret_name = secret["secretName"].as_str().expect("secretName");
            let mode = secret["defaultMode"].as_u64().unwrap_or(0o644);
            let object = wait_secret(server, namespace, secret_name).await;
            for (key, b64) in object["data"].as_object().into_iter().flatten() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_str().expect("base64 string"))
                    .expect("base64 Secret data");
                let file = folder.join(key);
                std::fs::write(&file, bytes).expect("a Secret key file");
                let mode = u32::try_from(mode).expect("a file mode");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
                    .expect("Secret file mode");
            }
        } else if volume.get("emptyDir").is_none() {
            panic!("the test kubelet mounts Secrets and emptyDirs only, not {volume}");
        }
        mounts.push((path, folder));
    }
    mounts
}

/// The Secret `namespace/name`, once it exists.
async fn wait_secret(server: &ApiServer, namespace: &str, name: &str) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(secret) = server.get("v1", "Secret", Some(namespace), name) {
            return secret;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Secret {namespace}/{name} of a Secret volume never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The kubelet's expansion rules, as the Kubernetes docs state them.
    #[test]
    fn expands_like_the_kubelet() {
        let vars = env(&[("NS", "tollgate-system"), ("URL", "https://c:9903")]);
        for (text, want) in [
            ("$(URL)", "https://c:9903"),
            ("https://x.$(NS).svc", "https://x.tollgate-system.svc"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(NS)", "$(NS)"),
            ("a$b", "a$b"),
            ("$(unclosed", "$(unclosed"),
        ] {
            assert_eq!(expand(text, &vars), want, "{text}");
        }
    }

    /// A mount path, or a file under it, names the mount's folder.
    #[test]
    fn maps_mount_paths() {
        let mounts = vec![("/etc/x".to_string(), PathBuf::from("/tmp/pod/x"))];
        assert_eq!(map_mount_path("/etc/x", &mounts), "/tmp/pod/x");
        assert_eq!(
            map_mount_path("/etc/x/ca.crt", &mounts),
            "/tmp/pod/x/ca.crt"
        );
        assert_eq!(map_mount_path("/etc/xy", &mounts), "/etc/xy");
    }
}
