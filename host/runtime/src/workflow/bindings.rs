//! Host-side bindings of the `caisson:workflow` WIT packages: the current
//! `0.2.0` at the top level, and the frozen `0.1.0` in [`v0_1`] so that
//! plugins built against it keep loading (see [`super::legacy`]).
//!
//! Only `wait`, `continue-as-new` and `end-cancelled` are async: they are
//! the calls that suspend the guest on its fiber. Everything else returns
//! at once.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit/workflow",
    world: "caisson:workflow/imports",
    imports: {
        "caisson:workflow/context.wait": async | trappable,
        "caisson:workflow/context.continue-as-new": async | trappable,
        "caisson:workflow/context.end-cancelled": async | trappable,
        default: trappable,
    },
    additional_derives: [PartialEq],
});

pub use caisson::workflow::types::*;

/// `caisson:workflow@0.1.0`, frozen in `wit/frozen/workflow@0.1.0`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/frozen/workflow@0.1.0",
        world: "caisson:workflow/imports",
        imports: {
            "caisson:workflow/context.wait": async | trappable,
            "caisson:workflow/context.continue-as-new": async | trappable,
            default: trappable,
        },
        additional_derives: [PartialEq],
    });

    pub use caisson::workflow::types::*;
}
