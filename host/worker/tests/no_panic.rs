//! Arbitrary manifests and arbitrary history JSON: the loaders answer or
//! refuse with an error, never panic (no arithmetic on settings or history
//! values can overflow).

use caisson_worker::manifest::WorkerManifest;
use caisson_worker::replay::history_from_json;
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use std::path::Path;

fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        prop::sample::select(vec![0i64, 1, 2, 64, 4096, 4097, 100_000, 100_001, i64::MAX]).prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
        "([0-9]{0,22}(ms|s|m|h|d)){1,3}".prop_map(toml::Value::String),
        ".{0,10}".prop_map(toml::Value::String),
        prop::sample::select(vec!["127.0.0.1:9464", "x.wasm", "acme"]).prop_map(|s| toml::Value::String(s.into())),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| prop::collection::vec(inner, 0..3).prop_map(toml::Value::Array))
}

fn table(keys: &'static [&'static str]) -> impl Strategy<Value = toml::Table> {
    prop::collection::btree_map(prop::sample::select(keys), toml_value(), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn manifest() -> impl Strategy<Value = String> {
    let worker =
        table(&["max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities", "shutdown_grace", "metrics_address"]);
    let temporal = table(&["address", "namespace", "task_queue"]);
    let plugin = table(&["path", "memory_mb", "fuel", "timeout", "max_concurrency", "task_queue", "secrets"]);
    let tenant = table(&["name", "task_queue", "max_cached_workflows", "max_concurrent_activities", "max_concurrent_workflow_tasks"]);
    let limits = table(&["memory_mb", "fuel", "timeout", "allow_secrets"]);
    (worker, temporal, prop::collection::vec(plugin, 0..3), prop::collection::vec((tenant, limits), 0..3)).prop_map(
        |(worker, temporal, plugins, tenants)| {
            let mut doc = toml::Table::new();
            doc.insert("worker".into(), worker.into());
            doc.insert("temporal".into(), temporal.into());
            doc.insert("plugin".into(), toml::Value::Array(plugins.into_iter().map(toml::Value::Table).collect()));
            let tenants = tenants.into_iter().map(|(mut t, l)| {
                t.insert("limits".into(), l.into());
                toml::Value::Table(t)
            });
            doc.insert("tenant".into(), toml::Value::Array(tenants.collect()));
            toml::to_string(&doc).unwrap_or_default()
        },
    )
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        ".{0,10}".prop_map(Json::from),
        prop::sample::select(vec![
            "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
            "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
            "9223372036854775807",
            "2024-01-01T00:00:00Z",
            "99999999999s",
        ])
        .prop_map(Json::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "eventId",
                    "eventTime",
                    "eventType",
                    "taskId",
                    "workflowExecutionStartedEventAttributes",
                    "workflowType",
                    "name",
                    "input",
                    "payloads",
                    "metadata",
                    "data",
                    "events",
                    "x"
                ]),
                inner,
                0..5
            )
            .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_manifest_text_never_panics(text in "(.|\n){0,300}") {
        let _ = WorkerManifest::from_toml(Path::new("caisson.toml"), &text);
    }

    #[test]
    fn arbitrary_structured_manifests_never_panic(text in manifest()) {
        if let Ok(m) = WorkerManifest::from_toml(Path::new("caisson.toml"), &text) {
            prop_assert!(m.validate().is_ok());
        }
    }

    #[test]
    fn arbitrary_history_json_never_panics(events in prop::collection::vec(json(), 0..6), other in json()) {
        let _ = history_from_json(&json!({ "events": events }).to_string());
        let _ = history_from_json(&other.to_string());
    }
}
