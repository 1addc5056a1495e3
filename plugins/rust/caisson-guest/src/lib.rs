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
//! Workflows: [`workflow`]. Activities: [`activity`]. A plugin generates
//! its own world with `wit_bindgen::generate!` and maps the `caisson:*`
//! interfaces to these modules with `with:` (see the plugins in this
//! workspace), so both share one set of types.

pub mod activity;
#[cfg(feature = "http")]
pub mod http;
pub mod workflow;
