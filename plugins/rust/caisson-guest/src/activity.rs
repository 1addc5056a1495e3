//! Helpers for activity plugins.

/// Bindings of `caisson:activity/imports`.
pub mod bindings {
    wit_bindgen::generate!({
        inline: "package caisson-guest:activity;
            world guest {
                include caisson:activity/imports@0.1.0;
                use caisson:activity/types@0.1.0.{application-error};
            }",
        path: "wit/activity",
        world: "caisson-guest:activity/guest",
        generate_all,
        generate_unused_types: true,
    });
}

pub use bindings::caisson::activity::context;
pub use bindings::caisson::activity::types::{ActivityInfo, ApplicationError, LogLevel};

/// An application error for `result<T, application-error>` returns.
pub fn error(error_type: &str, message: impl Into<String>) -> ApplicationError {
    ApplicationError { message: message.into(), error_type: error_type.into(), non_retryable: false, details: None }
}

/// A non-retryable application error.
pub fn fatal(error_type: &str, message: impl Into<String>) -> ApplicationError {
    ApplicationError { non_retryable: true, ..error(error_type, message) }
}

/// Records progress with JSON-serializable details.
pub fn heartbeat<T: serde::Serialize>(details: &T) {
    context::heartbeat(serde_json::to_string(details).ok().as_deref());
}

/// The previous attempt's last heartbeat details, deserialized.
pub fn last_heartbeat<T: serde::de::DeserializeOwned>() -> Option<T> {
    context::last_heartbeat_details().and_then(|d| serde_json::from_str(&d).ok())
}

/// Logs at info level.
pub fn log(message: &str) {
    context::log(LogLevel::Info, message);
}

/// Logs a warning.
pub fn warn(message: &str) {
    context::log(LogLevel::Warn, message);
}

/// Facts about this attempt (activity id, workflow id, attempt number…).
pub fn info() -> ActivityInfo {
    context::info()
}

/// True once cancellation was requested: return promptly.
pub fn is_cancelled() -> bool {
    context::is_cancelled()
}
