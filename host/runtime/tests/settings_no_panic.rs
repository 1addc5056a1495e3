//! Arbitrary `NAME.toml` text, arbitrary structured settings and arbitrary
//! duration strings: the loader answers with settings inside the accepted
//! ranges or a one-line error, never a panic or an overflow.

use caisson_runtime::settings::{PluginSettings, limits, parse, parse_duration};
use proptest::prelude::*;
use std::path::Path;

const KEYS: &[&str] = &[
    "kind",
    "determinism",
    "dirs",
    "allow_outbound",
    "env",
    "secrets",
    "memory_mb",
    "timeout",
    "fuel",
    "max_concurrency",
    "task_queue",
    "path",
];

fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<f64>().prop_map(toml::Value::Float),
        duration_text().prop_map(toml::Value::String),
        ".{0,10}".prop_map(toml::Value::String),
        prop::sample::select(vec!["workflow", "activity", "virtual", "strict", "/data", "read-write"])
            .prop_map(|s| toml::Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["host", "guest", "access", "A", "B"]), inner, 0..4)
                .prop_map(|m| toml::Value::Table(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof!["([0-9]{0,22}(ms|s|m|h|d|y|)){0,4}", ".{0,12}"]
}

fn check(text: &str) {
    let Ok(settings) = parse::<PluginSettings>(Path::new("p.toml"), text) else { return };
    if settings.validate("").is_ok() {
        if let Some(mb) = settings.memory_mb {
            assert!((limits::MEMORY_MB.0..=limits::MEMORY_MB.1).contains(&mb));
        }
        if let Some(t) = settings.timeout {
            assert!(t >= limits::TIMEOUT.0 && t <= limits::TIMEOUT.1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "(.|\n){0,200}") {
        check(&text);
    }

    #[test]
    fn arbitrary_structured_settings_never_panic(entries in prop::collection::btree_map(prop::sample::select(KEYS), toml_value(), 0..6)) {
        let table: toml::Table = entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        check(&toml::to_string(&table).unwrap_or_default());
    }

    #[test]
    fn arbitrary_durations_parse_within_bounds_or_fail(text in duration_text()) {
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d <= limits::DURATION_MAX);
            prop_assert!(std::time::Instant::now().checked_add(d).is_some());
        }
    }
}
