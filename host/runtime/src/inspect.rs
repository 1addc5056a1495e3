//! Reading a component's contract: what it imports and which functions it
//! exports, with their WIT signatures. Pure decoding, no compilation.

use crate::policy::{self, PluginKind};
use wit_parser::{Resolve, Type, TypeDefKind, WorldItem};

/// Why bytes could not be read as a plugin component.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// The file does not start with the WebAssembly magic number.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module rather than a component; the advice depends on what
    /// the module imports (see [`core_module_advice`]).
    #[error("a core WebAssembly module, not a component: {0}")]
    CoreModule(String),
    /// The component is truncated or malformed.
    #[error("not a valid component: {0}")]
    Malformed(String),
    /// Imports both the workflow and the activity context.
    #[error("imports both {} and {}: a plugin is either a workflow or an activity", policy::WORKFLOW_CONTEXT, policy::ACTIVITY_CONTEXT)]
    AmbiguousKind,
}

/// A function the component exports: one workflow or activity type.
#[derive(Debug, Clone)]
pub struct ExportedFunction {
    /// The export name, which is the workflow or activity type name.
    pub name: String,
    /// The WIT signature, e.g. `func(name: string) -> string`.
    pub signature: String,
}

/// What a component imports and exports.
#[derive(Debug, Clone)]
pub struct ComponentContract {
    /// Workflow or activity, inferred from the imports.
    pub kind: PluginKind,
    /// Imported interfaces by full name (`wasi:clocks/wall-clock@0.2.6`),
    /// and imported freestanding functions by their name.
    pub imports: Vec<String>,
    /// Exported functions: the workflow or activity types.
    pub functions: Vec<ExportedFunction>,
    /// Exported interfaces (not types of work; listed for completeness).
    pub exported_interfaces: Vec<String>,
}

/// Decodes the component's world.
pub fn inspect(bytes: &[u8]) -> Result<ComponentContract, InspectError> {
    if bytes.is_empty() {
        return Err(InspectError::Empty);
    }
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(InspectError::NotWasm);
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(InspectError::CoreModule(core_module_advice(bytes)));
    }
    let decoded = wit_component::decode(bytes).map_err(|e| InspectError::Malformed(format!("{e:#}")))?;
    let wit_component::DecodedWasm::Component(resolve, world_id) = decoded else {
        return Err(InspectError::Malformed("a WIT package, not a component".into()));
    };
    let world = &resolve.worlds[world_id];
    let mut imports = Vec::new();
    for (key, item) in &world.imports {
        match item {
            WorldItem::Interface { id, .. } => imports.push(resolve.id_of(*id).unwrap_or_else(|| resolve.name_world_key(key))),
            WorldItem::Function(f) => imports.push(f.name.clone()),
            WorldItem::Type { .. } => {}
        }
    }
    let mut functions = Vec::new();
    let mut exported_interfaces = Vec::new();
    for (key, item) in &world.exports {
        match item {
            WorldItem::Function(f) => functions.push(ExportedFunction { name: f.name.clone(), signature: signature(&resolve, f) }),
            WorldItem::Interface { id, .. } => exported_interfaces.push(resolve.id_of(*id).unwrap_or_else(|| resolve.name_world_key(key))),
            WorldItem::Type { .. } => {}
        }
    }
    let kind = policy::infer_kind(imports.iter().map(String::as_str)).ok_or(InspectError::AmbiguousKind)?;
    Ok(ComponentContract { kind, imports, functions, exported_interfaces })
}

/// What to do with a core module, from the module names it imports: one
/// that imports nothing but the workflow context is a workflow built for
/// `wasm32-unknown-unknown` (wrap it, never rebuild it for WASI, which
/// would bring clocks and randomness); one importing WASI preview1 needs
/// the adapter (C, `wasm32-wasip1`); an activity built for
/// `wasm32-unknown-unknown` just needs wrapping.
pub fn core_module_advice(bytes: &[u8]) -> String {
    let mut modules: Vec<String> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::ImportSection(reader)) = payload else { continue };
        for import in reader.into_imports().flatten() {
            if !modules.iter().any(|m| m == import.module) {
                modules.push(import.module.to_owned());
            }
        }
    }
    let imports = |package: &str| modules.iter().any(|m| m.starts_with(package));
    if imports("wasi_snapshot_preview1") {
        "it imports WASI preview1 (wasi_snapshot_preview1): `caisson build` wraps it with the preview1 adapter \
         (as for C activities), or run `wasm-tools component new --adapt` yourself"
            .into()
    } else if imports("caisson:workflow/") {
        "a workflow module that imports nothing but the workflow context: wrap it as a component with `caisson build` \
         (keep building it for wasm32-unknown-unknown: a wasm32-wasip2 build imports clocks, randomness and the environment)"
            .into()
    } else {
        "wrap it as a component with `caisson build` (Rust activities build for wasm32-wasip2, which makes a component directly)".into()
    }
}

/// Renders `func(a: T, b: U) -> R` in WIT syntax.
pub fn signature(resolve: &Resolve, f: &wit_parser::Function) -> String {
    let params: Vec<String> = f.params.iter().map(|p| format!("{}: {}", p.name, type_name(resolve, &p.ty))).collect();
    match &f.result {
        Some(r) => format!("func({}) -> {}", params.join(", "), type_name(resolve, r)),
        None => format!("func({})", params.join(", ")),
    }
}

/// A type as written in WIT: its name if it has one, else its structure.
pub fn type_name(resolve: &Resolve, ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            if let Some(name) = &def.name {
                return name.clone();
            }
            let inner = |t: &Type| type_name(resolve, t);
            let opt = |t: &Option<Type>| t.as_ref().map_or("_".to_owned(), inner);
            match &def.kind {
                TypeDefKind::Option(t) => format!("option<{}>", inner(t)),
                TypeDefKind::List(t) => format!("list<{}>", inner(t)),
                TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", inner(t)),
                TypeDefKind::Map(k, v) => format!("map<{}, {}>", inner(k), inner(v)),
                TypeDefKind::Tuple(t) => {
                    format!("tuple<{}>", t.types.iter().map(inner).collect::<Vec<_>>().join(", "))
                }
                TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                    (None, None) => "result".into(),
                    (ok, err) => format!("result<{}, {}>", opt(ok), opt(err)),
                },
                TypeDefKind::Type(t) => inner(t),
                TypeDefKind::Handle(wit_parser::Handle::Own(r)) => type_name(resolve, &Type::Id(*r)),
                TypeDefKind::Handle(wit_parser::Handle::Borrow(r)) => {
                    format!("borrow<{}>", type_name(resolve, &Type::Id(*r)))
                }
                TypeDefKind::Future(t) => format!("future<{}>", opt(t)),
                TypeDefKind::Stream(t) => format!("stream<{}>", opt(t)),
                other => format!("<anonymous {}>", other.as_str()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_components_with_a_reason() {
        assert!(matches!(inspect(b""), Err(InspectError::Empty)));
        assert!(matches!(inspect(b"hello world, not wasm"), Err(InspectError::NotWasm)));
        assert!(matches!(inspect(b"\0asm\x01\0\0\0"), Err(InspectError::CoreModule(_))));
        assert!(matches!(inspect(b"\0asm\x0d\0\x01\0\x07"), Err(InspectError::Malformed(_))));
    }

    /// A core module whose import section imports one function `field` from `module`.
    fn core_module_importing(module: &str, field: &str) -> Vec<u8> {
        let mut entry = vec![module.len() as u8];
        entry.extend(module.as_bytes());
        entry.push(field.len() as u8);
        entry.extend(field.as_bytes());
        entry.extend([0x00, 0x00]); // a function of type 0
        let mut section = vec![1u8]; // one import
        section.extend(entry);
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.push(2); // the import section
        bytes.push(section.len() as u8);
        bytes.extend(section);
        bytes
    }

    #[test]
    fn core_module_advice_follows_what_it_imports() {
        let workflow = core_module_importing("caisson:workflow/context@0.1.0", "wait");
        let Err(InspectError::CoreModule(advice)) = inspect(&workflow) else { panic!("a core module") };
        assert!(advice.contains("wrap it as a component with `caisson build`"), "{advice}");
        assert!(advice.contains("wasm32-unknown-unknown"), "{advice}");
        assert!(core_module_advice(&core_module_importing("wasi_snapshot_preview1", "fd_write")).contains("preview1 adapter"));
        assert!(core_module_advice(&core_module_importing("caisson:activity/context@0.1.0", "log")).contains("caisson build"));
    }
}
