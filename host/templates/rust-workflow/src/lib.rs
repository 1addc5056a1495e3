//! The `{{name}}` workflow. Every function the world in `wit/world.wit`
//! exports is a workflow type; the worker keeps it deterministic (no clock,
//! randomness, files or network: ask activities for those).

caisson_guest::workflow_bindings!("local:{{name}}/{{name}}");

use caisson_guest::workflow::{self as wf, Duration};

struct Workflow;

impl Guest for Workflow {
    fn {{snake}}(request: Request) -> Result<String, ApplicationError> {
        wf::log(&format!("{{name}} started for {}", request.name));
        wf::sleep(Duration::from_secs(1))?; // a durable timer: survives worker restarts
        let greeting: String = wf::activity("greet").arg(&request.name).start_to_close(Duration::from_secs(10)).call()?;
        Ok(shout(&greeting))
    }
}

/// Plain code runs as it would anywhere; `cargo test` runs it natively.
fn shout(greeting: &str) -> String {
    format!("{greeting} (from {{name}})")
}

export!(Workflow);

#[cfg(test)]
mod tests {
    #[test]
    fn shout_names_the_workflow() {
        assert_eq!(super::shout("Hello, Ada!"), "Hello, Ada! (from {{name}})");
    }
}
