//! Determinism policy: which imports a workflow may have.
//!
//! A workflow must behave identically every time its history is replayed,
//! so the host never links anything into it whose answer could differ
//! between two runs: clocks, randomness, files, sockets, HTTP, environment
//! variables. This module classifies a component's imports and gives the
//! verdict; it is pure (no wasmtime) so every rule has a unit test.
//!
//! Two modes, chosen per plugin in its manifest (`determinism`):
//!
//! * `strict` (default): any such import refuses the plugin at load.
//! * `virtual`: they are linked to replay-safe stand-ins instead — clocks
//!   read workflow time, randomness is a PRNG seeded from the workflow's
//!   randomness seed, the filesystem has no preopened directories and every
//!   socket or HTTP call is refused, the environment is empty. Off-the-shelf
//!   JavaScript and Python guests always import clocks and random, so they
//!   need this mode.

use std::fmt;

/// The interface a workflow plugin must import to be a workflow.
pub const WORKFLOW_CONTEXT: &str = "caisson:workflow/context";
/// The interface an activity plugin imports to heartbeat, log, etc.
pub const ACTIVITY_CONTEXT: &str = "caisson:activity/context";

/// How a plugin's workflows are kept deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeterminismMode {
    /// Refuse any non-deterministic import (the default).
    #[default]
    Strict,
    /// Replace non-deterministic imports with replay-safe stand-ins.
    Virtual,
}

/// Something an import could give a workflow that would differ between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Nondeterminism {
    /// Real time (`wasi:clocks`).
    Clock,
    /// Real randomness (`wasi:random`).
    Random,
    /// Files (`wasi:filesystem`).
    Filesystem,
    /// Network sockets (`wasi:sockets`).
    Sockets,
    /// HTTP (`wasi:http`).
    Http,
    /// Environment variables and arguments (`wasi:cli/environment`).
    Environment,
}

impl Nondeterminism {
    /// What the virtual mode substitutes, for messages.
    pub fn virtual_stand_in(self) -> &'static str {
        match self {
            Nondeterminism::Clock => "reads workflow time",
            Nondeterminism::Random => "PRNG seeded by the workflow's randomness seed",
            Nondeterminism::Filesystem => "no preopened directories",
            Nondeterminism::Sockets => "every connection refused",
            Nondeterminism::Http => "every request refused",
            Nondeterminism::Environment => "empty environment",
        }
    }
}

impl fmt::Display for Nondeterminism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Nondeterminism::Clock => "real time",
            Nondeterminism::Random => "randomness",
            Nondeterminism::Filesystem => "files",
            Nondeterminism::Sockets => "network sockets",
            Nondeterminism::Http => "HTTP",
            Nondeterminism::Environment => "environment variables",
        })
    }
}

/// What one imported interface is, as far as determinism goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportClass {
    /// The workflow context or its types.
    WorkflowContext,
    /// The activity context or its types.
    ActivityContext,
    /// WASI that carries nothing that could differ between runs:
    /// `wasi:io` streams, stdout/stderr (routed to the replay-aware log),
    /// an empty stdin, `exit`, terminal queries.
    HarmlessWasi,
    /// WASI that could make two runs differ.
    Nondeterministic(Nondeterminism),
    /// Anything else: the host provides nothing by that name.
    Unknown,
}

/// Strips the `@version` from `ns:pkg/iface@1.2.3`.
pub fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}

/// Classifies an imported interface by its full name (`ns:pkg/iface@ver`).
pub fn classify_import(name: &str) -> ImportClass {
    let base = unversioned(name);
    let (package, iface) = base.split_once('/').unwrap_or((base, ""));
    match package {
        "caisson:workflow" => ImportClass::WorkflowContext,
        "caisson:activity" => ImportClass::ActivityContext,
        "wasi:clocks" => ImportClass::Nondeterministic(Nondeterminism::Clock),
        "wasi:random" => ImportClass::Nondeterministic(Nondeterminism::Random),
        "wasi:filesystem" => ImportClass::Nondeterministic(Nondeterminism::Filesystem),
        "wasi:sockets" => ImportClass::Nondeterministic(Nondeterminism::Sockets),
        "wasi:http" => ImportClass::Nondeterministic(Nondeterminism::Http),
        "wasi:io" => ImportClass::HarmlessWasi,
        "wasi:cli" => match iface {
            "environment" => ImportClass::Nondeterministic(Nondeterminism::Environment),
            "stdin" | "stdout" | "stderr" | "exit" | "terminal-input" | "terminal-output" | "terminal-stdin" | "terminal-stdout"
            | "terminal-stderr" => ImportClass::HarmlessWasi,
            _ => ImportClass::Unknown,
        },
        _ => ImportClass::Unknown,
    }
}

/// Whether a component is a workflow or an activity plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Exports workflow types; imports `caisson:workflow/context`.
    Workflow,
    /// Exports activity types.
    Activity,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Workflow => "workflow",
            PluginKind::Activity => "activity",
        })
    }
}

/// Infers the kind from imports: importing the workflow context makes a
/// workflow; anything else (including importing nothing) an activity.
/// `None` when a component imports both contexts.
pub fn infer_kind<'a>(imports: impl IntoIterator<Item = &'a str>) -> Option<PluginKind> {
    let (mut workflow, mut activity) = (false, false);
    for name in imports {
        match classify_import(name) {
            ImportClass::WorkflowContext => workflow = true,
            ImportClass::ActivityContext => activity = true,
            _ => {}
        }
    }
    match (workflow, activity) {
        (true, true) => None,
        (true, false) => Some(PluginKind::Workflow),
        _ => Some(PluginKind::Activity),
    }
}

/// One import a workflow may not have, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    /// The full interface name, e.g. `wasi:clocks/wall-clock@0.2.6`.
    pub import: String,
    /// Why it is refused; `None` for an interface the host does not know.
    pub reason: Option<Nondeterminism>,
}

/// The determinism verdict on a workflow component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Imports only the workflow context and harmless WASI.
    Deterministic,
    /// Imports non-deterministic WASI, replaced by stand-ins (virtual mode).
    Virtualized(Vec<(String, Nondeterminism)>),
    /// Refused: it imports what the host will not link.
    Refused(Vec<Offence>),
}

/// Judges a workflow's imports under the given mode.
pub fn judge_workflow<'a>(imports: impl IntoIterator<Item = &'a str>, mode: DeterminismMode) -> Verdict {
    let mut virtualized = Vec::new();
    let mut offences = Vec::new();
    for name in imports {
        match classify_import(name) {
            ImportClass::WorkflowContext | ImportClass::HarmlessWasi => {}
            ImportClass::Nondeterministic(what) => match mode {
                DeterminismMode::Virtual => virtualized.push((name.to_owned(), what)),
                DeterminismMode::Strict => offences.push(Offence { import: name.to_owned(), reason: Some(what) }),
            },
            ImportClass::ActivityContext | ImportClass::Unknown => offences.push(Offence { import: name.to_owned(), reason: None }),
        }
    }
    if !offences.is_empty() {
        Verdict::Refused(offences)
    } else if !virtualized.is_empty() {
        Verdict::Virtualized(virtualized)
    } else {
        Verdict::Deterministic
    }
}

/// The advice printed under a refusal: how to fix each kind of offence.
pub fn refusal_advice(offences: &[Offence], manifest_hint: &str) -> String {
    let mut advice = Vec::new();
    let nondeterministic: Vec<&str> = offences.iter().filter(|o| o.reason.is_some()).map(|o| o.import.as_str()).collect();
    if !nondeterministic.is_empty() {
        advice.push(format!(
            "remove the imports of {} (in Rust: build for wasm32-unknown-unknown, not wasm32-wasip2, and wrap the module \
             with `caisson build`), or opt in to replay-safe stand-ins with `determinism = \"virtual\"` in {manifest_hint}",
            nondeterministic.join(", ")
        ));
    }
    if offences.iter().any(|o| o.reason.is_none()) {
        advice.push(format!(
            "a workflow may import only {WORKFLOW_CONTEXT}, caisson:workflow/types and WASI stdio/io; \
             move other work into an activity"
        ));
    }
    advice.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_nondeterministic_family() {
        for (name, what) in [
            ("wasi:clocks/wall-clock@0.2.6", Nondeterminism::Clock),
            ("wasi:clocks/monotonic-clock@0.2.0", Nondeterminism::Clock),
            ("wasi:random/random@0.2.6", Nondeterminism::Random),
            ("wasi:random/insecure-seed@0.2.6", Nondeterminism::Random),
            ("wasi:filesystem/preopens@0.2.6", Nondeterminism::Filesystem),
            ("wasi:sockets/tcp@0.2.6", Nondeterminism::Sockets),
            ("wasi:sockets/ip-name-lookup@0.2.6", Nondeterminism::Sockets),
            ("wasi:http/outgoing-handler@0.2.6", Nondeterminism::Http),
            ("wasi:cli/environment@0.2.6", Nondeterminism::Environment),
        ] {
            assert_eq!(classify_import(name), ImportClass::Nondeterministic(what), "{name}");
        }
    }

    #[test]
    fn stdio_and_streams_are_harmless() {
        for name in ["wasi:io/streams@0.2.6", "wasi:io/error@0.2.6", "wasi:cli/stdout@0.2.6", "wasi:cli/exit@0.2.6"] {
            assert_eq!(classify_import(name), ImportClass::HarmlessWasi, "{name}");
        }
    }

    #[test]
    fn unknown_packages_and_interfaces_are_unknown() {
        assert_eq!(classify_import("acme:billing/api@1.0.0"), ImportClass::Unknown);
        assert_eq!(classify_import("wasi:cli/brand-new"), ImportClass::Unknown);
        assert_eq!(classify_import("wasi:keyvalue/store@0.2.0"), ImportClass::Unknown);
    }

    #[test]
    fn kind_follows_the_context_imported() {
        let wf = ["caisson:workflow/types@0.1.0", "caisson:workflow/context@0.1.0"];
        assert_eq!(infer_kind(wf), Some(PluginKind::Workflow));
        assert_eq!(infer_kind(["caisson:activity/context@0.1.0"]), Some(PluginKind::Activity));
        assert_eq!(infer_kind(["wasi:filesystem/preopens@0.2.6"]), Some(PluginKind::Activity));
        assert_eq!(infer_kind([]), Some(PluginKind::Activity));
        assert_eq!(infer_kind(["caisson:workflow/context@0.1.0", "caisson:activity/context@0.1.0"]), None);
    }

    #[test]
    fn strict_refuses_and_names_each_offending_import() {
        let imports =
            ["caisson:workflow/context@0.1.0", "wasi:clocks/wall-clock@0.2.6", "wasi:io/streams@0.2.6", "wasi:random/random@0.2.6"];
        let Verdict::Refused(offences) = judge_workflow(imports, DeterminismMode::Strict) else { panic!() };
        assert_eq!(
            offences,
            vec![
                Offence { import: "wasi:clocks/wall-clock@0.2.6".into(), reason: Some(Nondeterminism::Clock) },
                Offence { import: "wasi:random/random@0.2.6".into(), reason: Some(Nondeterminism::Random) },
            ]
        );
        assert!(refusal_advice(&offences, "x.toml").contains("wasm32-unknown-unknown"));
        assert!(refusal_advice(&offences, "x.toml").contains("determinism = \"virtual\""));
        // The advice names exactly the imports to remove.
        assert!(
            refusal_advice(&offences, "x.toml").contains("remove the imports of wasi:clocks/wall-clock@0.2.6, wasi:random/random@0.2.6")
        );
    }

    #[test]
    fn virtual_mode_virtualizes_wasi_but_still_refuses_unknown_imports() {
        let imports = ["caisson:workflow/context@0.1.0", "wasi:clocks/wall-clock@0.2.6"];
        assert_eq!(
            judge_workflow(imports, DeterminismMode::Virtual),
            Verdict::Virtualized(vec![("wasi:clocks/wall-clock@0.2.6".into(), Nondeterminism::Clock)])
        );
        let Verdict::Refused(offences) =
            judge_workflow(["acme:db/query@1.0.0", "caisson:activity/context@0.1.0"], DeterminismMode::Virtual)
        else {
            panic!()
        };
        assert_eq!(offences.len(), 2);
        assert!(offences.iter().all(|o| o.reason.is_none()));
        assert!(refusal_advice(&offences, "x.toml").contains("activity"));
    }

    #[test]
    fn only_the_context_is_deterministic() {
        assert_eq!(
            judge_workflow(["caisson:workflow/context@0.1.0", "wasi:cli/stderr@0.2.6"], DeterminismMode::Strict),
            Verdict::Deterministic
        );
    }
}
