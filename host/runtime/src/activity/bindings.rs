//! Host-side bindings of the `caisson:activity` WIT package.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit/activity",
    world: "caisson:activity/imports",
});

pub use caisson::activity::types::*;
