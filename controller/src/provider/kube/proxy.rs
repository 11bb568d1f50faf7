//! Whether the controller reaches its API server through `HTTPS_PROXY`.
//!
//! For a kubeconfig's API server kube takes the cluster's `proxy-url`,
//! else `HTTPS_PROXY`, and ignores `NO_PROXY`: it would send even a local
//! cluster's API server at 127.0.0.1 through a corporate proxy that cannot
//! reach it. kubectl, with Go's proxy rules, reaches `NO_PROXY` hosts and
//! this machine directly, so in the same shell kubectl would work and the
//! controller would not. The proxy kube took from the environment is
//! therefore dropped wherever those rules say "direct" (the OTLP
//! exporters follow the same rules, [`env_proxies`]); a cluster's own
//! `proxy-url` is always kept, as kubectl keeps it. The rules are
//! kubectl's by scheme too: an `http://` server looks for `HTTP_PROXY`.
//! The in-cluster configuration never names a proxy.

use kube::config::Kubeconfig;
use tollgate_telemetry::{OtelEnv, env_proxies};

/// Drops the proxy kube took from `env` for `config`'s API server when
/// `env`'s `NO_PROXY` (or the server being this machine) says to connect
/// directly. `kubeconfig` is the file `config` came from, if any: a proxy
/// it names for the current cluster is kept. Returns whether the proxy
/// was dropped.
pub fn follow_no_proxy(
    config: &mut kube::Config,
    env: &OtelEnv,
    kubeconfig: Option<&Kubeconfig>,
) -> bool {
    let from_env = config.proxy_url.is_some() && !kubeconfig.is_some_and(names_proxy);
    if from_env && !env_proxies(env, &config.cluster_url.to_string()) {
        config.proxy_url = None;
        return true;
    }
    false
}

/// Whether `kubeconfig`'s current cluster has a `proxy-url` of its own.
fn names_proxy(kubeconfig: &Kubeconfig) -> bool {
    let Some(current) = &kubeconfig.current_context else {
        return false;
    };
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| &c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.as_str());
    kubeconfig
        .clusters
        .iter()
        .filter(|c| Some(c.name.as_str()) == cluster)
        .filter_map(|c| c.cluster.as_ref()?.proxy_url.as_deref())
        .any(|url| !url.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server: &str) -> kube::Config {
        let mut config = kube::Config::new(server.parse().unwrap_or_default());
        config.proxy_url = "http://proxy.corp:3128".parse().ok();
        config
    }

    fn env(no_proxy: &str) -> OtelEnv {
        OtelEnv::from_pairs([
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", no_proxy),
        ])
    }

    fn kubeconfig(proxy_url: &str) -> Kubeconfig {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\n\
             clusters:\n- name: k\n  cluster: {{server: 'https://127.0.0.1:6443', proxy-url: '{proxy_url}'}}\n\
             - name: other\n  cluster: {{server: 'https://x', proxy-url: 'http://elsewhere:1'}}\n"
        );
        Kubeconfig::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A local API server and a `NO_PROXY` one are reached directly; any
    /// other keeps the environment's proxy.
    #[test]
    fn the_environments_proxy_follows_no_proxy_and_loopback() {
        let mut local = config("https://127.0.0.1:6443");
        assert!(follow_no_proxy(&mut local, &env(""), None));
        assert_eq!(local.proxy_url, None);
        let mut listed = config("https://api.corp.internal:6443");
        assert!(follow_no_proxy(&mut listed, &env(".corp.internal"), None));
        assert_eq!(listed.proxy_url, None);
        let mut remote = config("https://api.cloud.example:443");
        assert!(!follow_no_proxy(&mut remote, &env(".corp.internal"), None));
        assert!(remote.proxy_url.is_some());
        // kube sends an http:// server through HTTPS_PROXY too; kubectl
        // would look for HTTP_PROXY, and with none goes directly.
        let mut plain = config("http://api.cloud.example:8080");
        assert!(follow_no_proxy(&mut plain, &env(""), None));
    }

    /// The current cluster's own `proxy-url` is kept, even for a local
    /// server; another cluster's does not count.
    #[test]
    fn a_kubeconfig_proxy_is_kept() {
        let mut named = config("https://127.0.0.1:6443");
        let file = kubeconfig("http://proxy.corp:3128");
        assert!(!follow_no_proxy(&mut named, &env(""), Some(&file)));
        assert!(named.proxy_url.is_some());
        let mut unnamed = config("https://127.0.0.1:6443");
        let file = kubeconfig("");
        assert!(follow_no_proxy(&mut unnamed, &env(""), Some(&file)));
        assert_eq!(unnamed.proxy_url, None);
    }

    /// Without a proxy there is nothing to drop.
    #[test]
    fn no_proxy_nothing_to_do() {
        let mut direct = kube::Config::new("https://127.0.0.1:6443".parse().unwrap_or_default());
        assert!(!follow_no_proxy(&mut direct, &env(""), None));
    }
}
