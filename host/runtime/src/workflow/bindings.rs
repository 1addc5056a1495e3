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

impl WorkflowInfo {
    /// The facts of a first attempt with nothing inherited (no parent,
    /// memo, search attributes or earlier run; started at the epoch): for
    /// instances outside a real run, such as the load-time `declare` call,
    /// tests and benchmarks.
    pub fn first_attempt(workflow_type: &str, workflow_id: &str) -> Self {
        WorkflowInfo {
            namespace: "default".into(),
            task_queue: String::new(),
            workflow_type: workflow_type.into(),
            workflow_id: workflow_id.into(),
            run_id: String::new(),
            attempt: 1,
            continued_from_run_id: None,
            parent_workflow_id: None,
            memo: Vec::new(),
            search_attributes: Vec::new(),
            start_time_ms: 0,
        }
    }
}

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
