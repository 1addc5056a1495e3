//! `caisson check`: what a plugin is, what it exports and imports, and
//! whether the worker will run it.

use crate::engine::CacheOutcome;
use crate::manifest::PluginSettings;
use crate::plugin::{Engines, PluginError, PluginSource};
use crate::policy::{self, PluginKind, Verdict};
use caisson_runtime::loader::Plugin;
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
    for f in &c.functions {
        let _ = writeln!(out, "    {}: {}", f.name, f.signature);
    }
    // Types a guest library declares at run time, and the handlers a
    // workflow declares: known only by asking an instance (see below).
    let types_at = out.len();
    if !c.exported_interfaces.is_empty() {
        let _ = writeln!(out, "  exported interfaces:");
    }
    for i in &c.exported_interfaces {
        let _ = writeln!(out, "    {i}: {}", export_role(i, plugin.kind));
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
            let others: Vec<&str> = c
                .imports
                .iter()
                .map(String::as_str)
                .filter(|i| policy::classify_import(i) != policy::ImportClass::WorkflowContext)
                .collect();
            if others.is_empty() {
                let _ = writeln!(out, "  determinism: ok (imports only the workflow context)");
            } else {
                let _ = writeln!(
                    out,
                    "  determinism: ok (imports the workflow context and {}: output and exit only, nothing that differs between runs)",
                    others.join(", ")
                );
            }
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
    if refusal.is_none() {
        match declared_types(&plugin, engines) {
            Ok(lines) => out.insert_str(types_at, &lines),
            Err(e) => return CheckResult::Failed(e),
        }
    }
    if refusal.is_some() { CheckResult::Refused(out) } else { CheckResult::Accepted(out) }
}

/// What the host does with an exported interface.
fn export_role(interface: &str, kind: PluginKind) -> &'static str {
    match (policy::unversioned(interface), kind) {
        ("caisson:workflow/queries", PluginKind::Workflow) => "answers queries after the workflow function has returned",
        ("caisson:workflow/declarations", PluginKind::Workflow) => "declares the workflow types and their handlers (listed above)",
        ("caisson:workflow/dynamic", PluginKind::Workflow) => "runs the declared workflow types",
        ("caisson:activity/dynamic", PluginKind::Activity) => "declares and runs the activity types listed above",
        _ => "not used by the host (neither a type nor a Caisson export)",
    }
}

/// The types and handlers a plugin declares through its
/// `declarations` / `dynamic` exports, as lines for the report (empty
/// when it declares nothing). Loading the plugin asks an instance, as the
/// worker does; a plugin whose declarations are broken fails here with
/// the worker's message.
fn declared_types(plugin: &PluginSource, engines: &Engines) -> Result<String, PluginError> {
    let declares = plugin.contract.exported_interfaces.iter().any(|i| {
        let i = policy::unversioned(i);
        i == "caisson:workflow/declarations" || i == "caisson:activity/dynamic"
    });
    let mut out = String::new();
    if !declares {
        if plugin.contract.functions.is_empty() {
            let _ = writeln!(out, "    (none: export a function for each {} type)", plugin.kind);
        }
        return Ok(out);
    }
    let loader = caisson_runtime::loader::PluginLoader::new(engines.clone())
        .map_err(|e| PluginError::Refused { path: plugin.path.clone(), message: e.to_string() })?;
    match loader.load(&plugin.path, plugin.settings.clone(), |_| caisson_runtime::meter::unmetered())? {
        Plugin::Workflow(w) => {
            let typed: Vec<&str> = plugin.contract.functions.iter().map(|f| f.name.as_str()).collect();
            for d in w.declarations() {
                if !typed.contains(&d.name.as_str()) {
                    let how = if w.is_dynamic() { "declared, run through `dynamic` with JSON arguments" } else { "declared" };
                    let _ =
                        writeln!(out, "    {} ({how}){}", d.name, d.description.as_deref().map(|t| format!(": {t}")).unwrap_or_default());
                }
                for h in &d.handlers {
                    let validator = if h.has_validator { ", with a validator" } else { "" };
                    let _ = writeln!(
                        out,
                        "      {} `{}` of {}{validator}{}",
                        h.kind,
                        h.name,
                        d.name,
                        h.description.as_deref().map(|t| format!(": {t}")).unwrap_or_default()
                    );
                }
            }
        }
        Plugin::Activity(a) => {
            for name in a.activity_types() {
                if !plugin.contract.functions.iter().any(|f| f.name == name) {
                    let _ = writeln!(out, "    {name} (declared, run through `dynamic` with JSON arguments)");
                }
            }
        }
    }
    if out.is_empty() && plugin.contract.functions.is_empty() {
        let _ = writeln!(out, "    (none declared)");
    }
    Ok(out)
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
