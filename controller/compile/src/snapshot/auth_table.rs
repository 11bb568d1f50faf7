//! The auth table of a snapshot: each rule's effective auth, interned so
//! equal configurations are stored once (`Snapshot::auth`) and shared by
//! index (`Route::auth`).

use super::Tables;
use crate::auth_merge::remap_targets;
use crate::auth_policies::{AuthPolicies, RuleAt};
use crate::rules::CompiledRule;
use tollgate_snapshot::AuthConfig;

impl Tables {
    /// Interns the effective auth of `rule` served `at` (policies, then the
    /// rule's `ExternalAuth` filter, whose backend indexes the rule's table
    /// mapped by `global`); `None` when the rule has none.
    pub(super) fn intern_auth(
        &mut self,
        auth: &AuthPolicies,
        at: &RuleAt<'_>,
        rule: &CompiledRule,
        global: &[usize],
    ) -> Option<usize> {
        let winners = auth.winners(at);
        if rule.ext_auth.is_none() {
            if winners.is_none() {
                return None;
            }
            if let Some(&cached) = self.auth_by_winners.get(&winners) {
                return cached;
            }
        }
        let mut config = match auth.effective_of(&winners) {
            Some(e) => {
                let map = self.intern_backends(&e.backends);
                let mut config = e.config;
                remap_targets(&mut config, &mut |i| map.get(i).copied());
                config
            }
            None => AuthConfig::default(),
        };
        if let Some(filter) = &rule.ext_auth {
            let mut filter = filter.clone();
            filter.target.backend = filter.target.backend.and_then(|i| global.get(i).copied());
            config.ext_auth.push(filter);
        }
        let index = self.intern_config(config);
        if rule.ext_auth.is_none() {
            self.auth_by_winners.insert(winners, index);
        }
        index
    }

    /// Interns `config`, sharing an equal one already stored; `None` for
    /// an empty configuration.
    fn intern_config(&mut self, config: AuthConfig) -> Option<usize> {
        if config == AuthConfig::default() {
            return None;
        }
        // Serialising snapshot types cannot fail; if it did, the config
        // would merely be stored again instead of shared.
        let key = serde_json::to_string(&config).ok();
        if let Some(&i) = key.as_ref().and_then(|k| self.auth_index.get(k)) {
            return Some(i);
        }
        self.auth.push(config);
        let index = self.auth.len() - 1;
        if let Some(key) = key {
            self.auth_index.insert(key, index);
        }
        Some(index)
    }
}
