//! `caisson check`: what a plugin is, what it exports and imports, and
//! whether the worker will run it.

use crate::engine::CacheOutcome;
use crate::manifest::PluginSettings;
use crate::plugin::{Engines, PluginError, PluginSource};
use crate::policy::{self, PluginKind, Verdict};
use std::fmt::Write as _;
use std::path::Path;

/// The result of checking one file.
#[derive(Debug)]
pub enum CheckResult {
    /// The plugin would load; the report describes it.
    Accepted(String),
    /// A workflow refused for its imports; the report says which and why.
    Refused(String),
    /// Not loadable at all (not a component, invalid manifest...).
    Failed(PluginError),
}

/// Checks one plugin file: reads it with its `NAME.toml` grants, judges
/// it, compiles it through the cache, and describes it.
pub fn check(path: &Path, engines: &Engines) -> CheckResult {
    let plugin = match PluginSource::read_with_sidecar(path) {
        Ok(p) => p,
        Err(e) => return CheckResult::Failed(e),
    };
    let mut out = String::new();
    let c = &plugin.contract;
    let _ = writeln!(out, "{}", path.display());
    let inferred = if plugin.settings.kind.is_some() { "set in its manifest" } else { "inferred from its imports" };
    let _ = writeln!(out, "  kind: {} ({inferred})", plugin.kind);
    let _ = writeln!(out, "  {} types:", plugin.kind);
    if c.functions.is_empty() {
        let _ = writeln!(out, "    (none: export a function for each {} type)", plugin.kind);
    }
    for f in &c.functions {
        let _ = writeln!(out, "    {}: {}", f.name, f.signature);
    }
    for i in &c.exported_interfaces {
        let _ = writeln!(out, "    (exported interface {i}: not a {} type, ignored)", plugin.kind);
    }
    let _ = writeln!(out, "  imports:");
    if c.imports.is_empty() {
        let _ = writeln!(out, "    (none)");
    }
    for i in &c.imports {
        let _ = writeln!(out, "    {i}");
    }
    let refusal = plugin.refusal();
    match (&plugin.verdict, &refusal) {
        (Some(Verdict::Deterministic), _) => {
            let _ = writeln!(out, "  determinism: ok (imports only the workflow context and stdio)");
        }
        (Some(Verdict::Virtualized(list)), _) => {
            let _ = writeln!(out, "  determinism: ok, virtual mode; replay-safe stand-ins for:");
            for (import, what) in list {
                let _ = writeln!(out, "    {import}: {}", what.virtual_stand_in());
            }
        }
        (Some(Verdict::Refused(offences)), Some(_)) => {
            let _ = writeln!(out, "  determinism: REFUSED: a workflow may not import");
            for o in offences {
                match o.reason {
                    Some(why) => writeln!(out, "    {} ({why})", o.import),
                    None => writeln!(out, "    {} (not provided to workflows)", o.import),
                }
                .ok();
            }
            let hint = PluginSettings::sidecar_path(path).display().to_string();
            let _ = writeln!(out, "  fix: {}", policy::refusal_advice(offences, &hint));
        }
        _ if plugin.kind == PluginKind::Activity => {
            let _ = writeln!(out, "  determinism: not required (activity); capabilities only as granted");
        }
        _ => {}
    }
    match engines.compile(&plugin) {
        Ok(loaded) => {
            let how = match loaded.outcome {
                CacheOutcome::Hit => "loaded from the compile cache",
                CacheOutcome::Compiled => "compiled",
            };
            let _ = writeln!(
                out,
                "  component: {:.1} KB, sha256 {}…, {how} in {} ms",
                plugin.bytes.len() as f64 / 1024.0,
                &loaded.sha256[..12],
                loaded.elapsed.as_millis()
            );
        }
        Err(e) => return CheckResult::Failed(e),
    }
    if refusal.is_some() { CheckResult::Refused(out) } else { CheckResult::Accepted(out) }
}

/// The grants a built plugin carries (`NAME.toml` beside `NAME.wasm`), one
/// line each, as `caisson build` prints them after the verdict.
pub fn grants_summary(wasm: &Path) -> String {
    let sidecar = PluginSettings::sidecar_path(wasm);
    let lines: Vec<String> = std::fs::read_to_string(&sidecar)
        .map(|text| text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        return "  grants: none (no files, network, environment or secrets)\n".to_owned();
    }
    let mut out = format!("  grants ({}):\n", sidecar.display());
    for l in lines {
        let _ = writeln!(out, "    {l}");
    }
    out
}
