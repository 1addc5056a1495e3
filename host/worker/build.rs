//! Generates the typed proto3-JSON reader of `caisson replay`: Rust types
//! (prost) with serde impls for the proto3 JSON mapping (pbjson) for
//! `temporal.api.history.v1.History` and every message it reaches, from
//! the descriptor set `temporalio-protos` builds. A history of
//! `temporal workflow show --output json` is read into these types, then
//! re-encoded as protobuf and decoded into sdk-core's own `History`: much
//! faster than walking a dynamic message against the descriptors, which
//! was most of a short history's replay.

use prost::Message as _;
use std::collections::BTreeSet;
use std::path::Path;

/// The history file of the Temporal API: its imports, transitively, are
/// what the reader needs.
const HISTORY_FILE: &str = "temporal/api/history/v1/message.proto";

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    let source =
        std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").expect("temporalio-protos exports its descriptor set to direct dependents");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("history_json");
    std::fs::create_dir_all(&out_dir).expect("create OUT_DIR/history_json");
    let all = prost_types::FileDescriptorSet::decode(std::fs::read(&source).expect("read the Temporal descriptor set").as_slice())
        .expect("the Temporal descriptor set decodes");
    let history = reachable_from(&all, HISTORY_FILE);

    prost_build::Config::new()
        .out_dir(&out_dir)
        // Timestamps and durations with pbjson's proto3-JSON forms
        // ("2026-01-02T03:04:05Z", "1.5s").
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(history.clone())
        .expect("generate the history message types");
    pbjson_build::Builder::new()
        .out_dir(&out_dir)
        .register_descriptors(&history.encode_to_vec())
        .expect("register the history descriptors")
        // Histories of newer servers carry fields these protos lack:
        // replay what is known, as sdk-core does with protobuf.
        .ignore_unknown_fields()
        .build(&[".temporal.api"])
        .expect("generate the proto3-JSON readers");
    write_module_tree(&out_dir, &history);
}

/// The files `root` imports, transitively, with it.
fn reachable_from(all: &prost_types::FileDescriptorSet, root: &str) -> prost_types::FileDescriptorSet {
    let mut wanted = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(name) = pending.pop() {
        if !wanted.insert(name.clone()) {
            continue;
        }
        let file = all.file.iter().find(|f| f.name() == name).unwrap_or_else(|| panic!("{name} is not in the descriptor set"));
        pending.extend(file.dependency.iter().cloned());
    }
    prost_types::FileDescriptorSet { file: all.file.iter().filter(|f| wanted.contains(f.name())).cloned().collect() }
}

/// `mod.rs`: one nested module per protobuf package (`temporal::api::
/// history::v1`), including the package's types and their serde impls, so
/// that the generated cross-package paths (`super::super::common::v1`)
/// resolve.
fn write_module_tree(out_dir: &Path, files: &prost_types::FileDescriptorSet) {
    let packages: BTreeSet<&str> = files.file.iter().map(|f| f.package()).filter(|p| p.starts_with("temporal.")).collect();
    let mut tree = String::new();
    let mut open: Vec<&str> = Vec::new();
    for package in &packages {
        let parts: Vec<&str> = package.split('.').collect();
        let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        for _ in common..open.len() {
            tree.push_str("}\n");
        }
        open.truncate(common);
        for part in &parts[common..] {
            tree.push_str(&format!("pub mod {part} {{\n"));
            open.push(part);
        }
        for suffix in ["rs", "serde.rs"] {
            tree.push_str(&format!("include!(concat!(env!(\"OUT_DIR\"), \"/history_json/{package}.{suffix}\"));\n"));
        }
    }
    for _ in &open {
        tree.push_str("}\n");
    }
    std::fs::write(out_dir.join("mod.rs"), tree).expect("write OUT_DIR/history_json/mod.rs");
}
