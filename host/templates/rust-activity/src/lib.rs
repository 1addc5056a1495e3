//! The `{{name}}` activity. Every function the world in `wit/world.wit`
//! exports is an activity type; it reaches only the directories, hosts and
//! secrets granted in `caisson.toml`.

caisson_guest::activity_bindings!("local:{{name}}/{{name}}");

use caisson_guest::activity as act;

struct Activity;

impl Guest for Activity {
    fn {{snake}}(name: String) -> String {
        act::log(&format!("greeting {name} (attempt {})", act::info().attempt));
        greeting(&name)
    }
}

/// Plain code runs as it would anywhere; `cargo test` runs it natively.
fn greeting(name: &str) -> String {
    format!("Hello, {name}!")
}

export!(Activity);

#[cfg(test)]
mod tests {
    #[test]
    fn greets_by_name() {
        assert_eq!(super::greeting("Ada"), "Hello, Ada!");
    }
}
