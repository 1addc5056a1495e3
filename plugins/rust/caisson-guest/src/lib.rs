//! Write Caisson plugins in Rust the way the Temporal SDKs read.
//!
//! ```ignore
//! use caisson_guest::workflow::{self as wf, Duration};
//!
//! let receipt: String = wf::activity("charge-payment")
//!     .arg(&order)
//!     .start_to_close(Duration::from_secs(30))
//!     .retry(wf::RetryPolicy::default().maximum_attempts(3))
//!     .call()?;
//! ```
//!
//! Workflows that do several things at once write the same calls as
//! futures with [`workflow::aio`]: `execute()` instead of `call()`,
//! `join_all`, `select2`/`first_of`, `spawn`, async update and signal
//! handlers, cancellation at the awaited future with `shielded` scopes,
//! all on a single-threaded executor inside the guest:
//!
//! ```ignore
//! use caisson_guest::workflow::{self as wf, aio};
//!
//! fn order(id: String) -> Result<String, wf::ApplicationError> {
//!     aio::run(async move {
//!         let (charged, shipped) = aio::join2(
//!             wf::activity("charge").arg(&id).execute::<String>(),
//!             wf::activity("ship").arg(&id).execute::<String>(),
//!         ).await;
//!         Ok(format!("{} {}", charged?, shipped?))
//!     })
//! }
//! ```
//!
//! Workflows: [`workflow`]. Activities: [`activity`]. A plugin generates
//! its own world with `wit_bindgen::generate!` and maps the `caisson:*`
//! interfaces to these modules with `with:` (see the plugins in this
//! workspace), so both share one set of types.

pub mod activity;
#[cfg(feature = "http")]
pub mod http;
pub mod workflow;

/// The bindings of a workflow plugin written with this crate: its world
/// from the plugin's `wit/` folder, the shared `caisson:workflow` interfaces
/// taken from [`workflow::bindings`] (so the helpers' types are the
/// plugin's), and every record serde-(de)serializable and `Clone`, since
/// records travel as activity arguments and results.
///
/// ```ignore
/// caisson_guest::workflow_bindings!("my-org:orders/order-workflow");
/// ```
///
/// The `caisson:workflow` package is read from the plugin's `wit/deps/`
/// (the WIT convention: `caisson new` and `caisson wit --dir wit/deps`
/// put it there), so the plugin can live in any folder. The plugin crate
/// depends on `wit-bindgen` and `serde`.
#[macro_export]
macro_rules! workflow_bindings {
    ($world:tt) => {
        wit_bindgen::generate!({
            world: $world,
            path: "wit",
            with: {
                "caisson:workflow/types@0.2.0": caisson_guest::workflow::bindings::caisson::workflow::types,
                "caisson:workflow/context@0.2.0": caisson_guest::workflow::bindings::caisson::workflow::context,
            },
            additional_derives: [serde::Serialize, serde::Deserialize, Clone],
            generate_unused_types: true,
            generate_all,
        });
    };
}

/// The bindings of an activity plugin written with this crate: its world
/// from the plugin's `wit/` folder (with `caisson:activity` in
/// `wit/deps/`), the shared `caisson:activity` interfaces taken from
/// [`activity::bindings`], records serde-(de)serializable and `Clone`.
///
/// ```ignore
/// caisson_guest::activity_bindings!("my-org:orders/order-activities");
/// ```
#[macro_export]
macro_rules! activity_bindings {
    ($world:tt) => {
        wit_bindgen::generate!({
            world: $world,
            path: "wit",
            with: {
                "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
                "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
            },
            additional_derives: [serde::Serialize, serde::Deserialize, Clone],
            generate_unused_types: true,
            generate_all,
        });
    };
}
