//! Copies Temporal's protobuf descriptor set (built by `temporalio-protos`)
//! into OUT_DIR, so `caisson replay` can read the proto3 JSON histories of
//! `temporal workflow show --output json` against the real schema.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH");
    let source =
        std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").expect("temporalio-protos exports its descriptor set to direct dependents");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("temporal_descriptors.bin");
    std::fs::copy(&source, &out).expect("copy the Temporal descriptor set");
}
