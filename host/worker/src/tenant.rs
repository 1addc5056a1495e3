//! Tenant admission: what a tenant's plugins may be granted.
//!
//! In a multi-tenant worker a tenant drops plugins, and their `NAME.toml`
//! grants, into its own folder. Those grants are requests, not facts: each
//! is checked against the tenant's ceiling ([`TenantLimits`]) before the
//! plugin loads. A granted directory must lie inside one of the tenant's
//! `allow_dirs` (after resolving symlinks), every `allow_outbound` pattern
//! must be covered by one of the tenant's, secrets must be on the tenant's
//! list, and memory, fuel and time limits are lowered to the ceiling (and
//! set to it when the plugin names none). Nothing listed: nothing allowed.

use crate::manifest::{PluginSettings, TenantLimits};
use caisson_runtime::activity::outbound::Pattern;
use std::path::PathBuf;

/// Why a plugin was not admitted for a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant `{tenant}` does not allow plugin {plugin} {what}")]
pub struct AdmissionError {
    /// The tenant.
    pub tenant: String,
    /// The plugin (file stem).
    pub plugin: String,
    /// The grant at fault and how to fix it.
    pub what: String,
}

/// A tenant's ceiling, ready to check plugins against.
#[derive(Debug, Clone)]
pub struct Admission {
    tenant: String,
    /// `None`: the operator's own plugins, granted what they ask.
    ceiling: Option<Ceiling>,
}

#[derive(Debug, Clone)]
struct Ceiling {
    limits: TenantLimits,
    dirs: Vec<PathBuf>,
    outbound: Vec<Pattern>,
}

impl Admission {
    /// No ceiling: plugins named by the operator on the command line or in
    /// `[[plugin]]` entries get what their settings say.
    pub fn unrestricted(tenant: &str) -> Self {
        Admission { tenant: tenant.to_owned(), ceiling: None }
    }

    /// The ceiling of a `[[tenant]]`. Fails on a bad pattern or a missing
    /// `allow_dirs` folder.
    pub fn new(tenant: &str, limits: &TenantLimits) -> Result<Self, String> {
        let dirs = limits
            .allow_dirs
            .iter()
            .map(|d| d.canonicalize().map_err(|e| format!("tenant `{tenant}`: allow_dirs entry {}: {e}", d.display())))
            .collect::<Result<_, _>>()?;
        let outbound = limits
            .allow_outbound
            .iter()
            .map(|p| Pattern::parse(p).map_err(|e| format!("tenant `{tenant}`: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Admission { tenant: tenant.to_owned(), ceiling: Some(Ceiling { limits: limits.clone(), dirs, outbound }) })
    }

    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Whether the tenant may give its codec (`[tenant.codec]` or the
    /// top-level `[codec]`) these secrets: each must be on its
    /// `allow_secrets` list, as for plugins.
    pub fn admit_codec(&self, codec: &crate::manifest::CodecSettings) -> Result<(), AdmissionError> {
        let Some(ceiling) = &self.ceiling else { return Ok(()) };
        match codec.secrets.iter().find(|s| !ceiling.limits.allow_secrets.contains(s)) {
            None => Ok(()),
            Some(secret) => Err(AdmissionError {
                tenant: self.tenant.clone(),
                plugin: format!("codec {}", codec.path.display()),
                what: format!(
                    "the secret `{secret}`: not in the tenant's allow_secrets ({})",
                    list(ceiling.limits.allow_secrets.iter().cloned())
                ),
            }),
        }
    }

    /// The settings `plugin` runs with, or why it may not run.
    pub fn admit(&self, plugin: &str, mut settings: PluginSettings) -> Result<PluginSettings, AdmissionError> {
        let Some(ceiling) = &self.ceiling else {
            return Ok(settings);
        };
        let deny = |what: String| AdmissionError { tenant: self.tenant.clone(), plugin: plugin.to_owned(), what };
        for grant in &settings.dirs {
            let inside = grant.host.canonicalize().is_ok_and(|real| ceiling.dirs.iter().any(|root| real.starts_with(root)));
            if !inside {
                return Err(deny(format!(
                    "the directory {}: it is outside the tenant's allow_dirs ({})",
                    grant.host.display(),
                    list(ceiling.dirs.iter().map(|d| d.display().to_string()))
                )));
            }
        }
        for text in &settings.allow_outbound {
            let pattern = Pattern::parse(text).map_err(|e| deny(e.to_string()))?;
            if !ceiling.outbound.iter().any(|allowed| allowed.covers(&pattern)) {
                return Err(deny(format!(
                    "to reach `{text}`: not covered by the tenant's allow_outbound ({})",
                    list(ceiling.limits.allow_outbound.iter().cloned())
                )));
            }
        }
        for secret in &settings.secrets {
            if !ceiling.limits.allow_secrets.contains(secret) {
                return Err(deny(format!(
                    "the secret `{secret}`: not in the tenant's allow_secrets ({})",
                    list(ceiling.limits.allow_secrets.iter().cloned())
                )));
            }
        }
        settings.memory_mb = lower(settings.memory_mb, ceiling.limits.memory_mb);
        settings.fuel = lower(settings.fuel, ceiling.limits.fuel);
        settings.timeout = lower(settings.timeout, ceiling.limits.timeout);
        Ok(settings)
    }
}

/// The smaller of a plugin's own limit and the ceiling; the ceiling when
/// the plugin sets none.
fn lower<T: Ord>(own: Option<T>, ceiling: Option<T>) -> Option<T> {
    match (own, ceiling) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::DirGrant;
    use std::path::Path;
    use std::time::Duration;

    fn limits(root: &Path) -> TenantLimits {
        TenantLimits {
            allow_dirs: vec![root.to_owned()],
            allow_outbound: vec!["http://127.0.0.1:*".into()],
            allow_secrets: vec!["ACME_TOKEN".into()],
            memory_mb: Some(64),
            fuel: Some(1_000_000),
            timeout: Some(Duration::from_secs(30)),
        }
    }

    #[test]
    fn grants_inside_the_ceiling_are_admitted_and_limits_lowered() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("data")).unwrap();
        let admission = Admission::new("acme", &limits(root.path())).unwrap();
        let asked = PluginSettings {
            dirs: vec![DirGrant { host: root.path().join("data"), guest: "/data".into(), access: Default::default() }],
            allow_outbound: vec!["http://127.0.0.1:8080".into()],
            secrets: vec!["ACME_TOKEN".into()],
            memory_mb: Some(512),
            ..Default::default()
        };
        let got = admission.admit("p", asked).unwrap();
        assert_eq!(got.memory_mb, Some(64), "lowered to the ceiling");
        assert_eq!(got.fuel, Some(1_000_000), "set to the ceiling");
        assert_eq!(got.timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn grants_beyond_the_ceiling_are_permission_denied() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(other.path(), root.path().join("escape")).unwrap();
        let admission = Admission::new("acme", &limits(root.path())).unwrap();
        let dir = |host: PathBuf| PluginSettings {
            dirs: vec![DirGrant { host, guest: "/d".into(), access: Default::default() }],
            ..Default::default()
        };
        for (asked, needle) in [
            (dir(other.path().to_owned()), "outside the tenant's allow_dirs"),
            (dir(root.path().join("escape")), "outside the tenant's allow_dirs"),
            (dir(root.path().join("..")), "outside the tenant's allow_dirs"),
            (PluginSettings { allow_outbound: vec!["http://10.0.0.1:80".into()], ..Default::default() }, "10.0.0.1"),
            (PluginSettings { allow_outbound: vec!["*://127.0.0.1:80".into()], ..Default::default() }, "allow_outbound"),
            (PluginSettings { secrets: vec!["AWS_SECRET_ACCESS_KEY".into()], ..Default::default() }, "AWS_SECRET_ACCESS_KEY"),
        ] {
            let err = admission.admit("p", asked).unwrap_err().to_string();
            assert!(err.contains("tenant `acme` does not allow plugin p") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_tenant_without_limits_allows_nothing_but_the_operator_allows_all() {
        let admission = Admission::new("bare", &TenantLimits::default()).unwrap();
        let asked = PluginSettings { allow_outbound: vec!["https://example.com".into()], ..Default::default() };
        assert!(admission.admit("p", asked.clone()).is_err());
        assert!(Admission::unrestricted("default").admit("p", asked).is_ok());
    }
}
