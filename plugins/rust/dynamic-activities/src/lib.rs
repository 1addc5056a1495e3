//! Activity types declared at run time: the host learns the names from
//! `dynamic.declare` and runs them through `dynamic.run` with JSON
//! arguments. For the host's tests.

wit_bindgen::generate!({
    world: "caisson-plugins:dynamic-activities/dynamic-activities",
    path: ["../../../wit/activity", "wit"],
    generate_all,
});

use caisson::activity::types::ApplicationError;
use exports::caisson::activity::dynamic;

struct DynamicActivities;

impl dynamic::Guest for DynamicActivities {
    fn declare() -> Vec<String> {
        vec!["dyn-greet".into(), "dyn-fail".into(), "dyn-traceback".into()]
    }

    fn run(activity_type: String, args: Vec<String>) -> Result<String, ApplicationError> {
        match activity_type.as_str() {
            "dyn-greet" => {
                let name: String = args.first().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
                Ok(serde_json::to_string(&format!("Hello, {name}! (dynamic)")).unwrap())
            }
            "dyn-fail" => Err(ApplicationError {
                message: "declined".into(),
                error_type: "Declined".into(),
                non_retryable: true,
                details: Some(r#"{"code":7}"#.into()),
            }),
            "dyn-traceback" => {
                eprintln!("Traceback (most recent call last):");
                eprintln!("ValueError: bad input");
                std::process::abort()
            }
            other => Err(ApplicationError {
                message: format!("no activity {other}"),
                error_type: "NotFound".into(),
                non_retryable: true,
                details: None,
            }),
        }
    }
}

export!(DynamicActivities);
