//! A tiny activity: turns a name into a greeting.

wit_bindgen::generate!({
    world: "caisson-plugins:greet-activity/greet-activity",
    path: ["../../../wit/activity", "wit"],
    generate_all,
});

use caisson::activity::context;

struct GreetActivity;

impl Guest for GreetActivity {
    fn greet(name: String) -> String {
        let info = context::info();
        context::log(
            context::LogLevel::Info,
            &format!("greeting {name} (attempt {})", info.attempt),
        );
        format!("Hello, {name}!")
    }
}

export!(GreetActivity);
