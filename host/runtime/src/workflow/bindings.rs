//! Host-side bindings of the `caisson:workflow` WIT package.
//!
//! Only `wait` and `continue-as-new` are async: they are the calls that
//! suspend the guest on its fiber. Everything else returns at once.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit/workflow",
    world: "caisson:workflow/imports",
    imports: {
        "caisson:workflow/context.wait": async | trappable,
        "caisson:workflow/context.continue-as-new": async | trappable,
        default: trappable,
    },
    additional_derives: [PartialEq],
});

pub use caisson::workflow::types::*;
