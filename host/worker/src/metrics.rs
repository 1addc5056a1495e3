//! Per-plugin metrics, recorded through sdk-core's meter so they are
//! served by the same Prometheus endpoint as core's own `temporal_*`
//! metrics.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `caisson_workflow_tasks` | counter | tenant, plugin |
//! | `caisson_workflow_task_failures` | counter | tenant, plugin |
//! | `caisson_activity_tasks` | counter | tenant, plugin |
//! | `caisson_activity_failures` | counter | tenant, plugin |
//! | `caisson_fuel_used` | counter (wasm fuel units, workflows) | tenant, plugin |
//! | `caisson_instantiation_duration` | histogram (ms) | tenant, plugin |
//! | `caisson_plugin_loaded` | gauge: 1 loaded, 0 removed or replaced | tenant, plugin, kind, sha256, types |
//! | `caisson_inputs_dropped` | counter: undecodable signal inputs left out | tenant, plugin, handler, kind |
//!
//! `caisson plugins --metrics ADDRESS` reads `caisson_plugin_loaded` back
//! to list what a running worker serves.

use std::sync::Arc;
use std::time::Duration;
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, Gauge, HistogramDuration, MetricAttributes, MetricKeyValue, MetricParameters, NewAttributes, NoOpCoreMeter,
};

/// The instruments, created once per worker process.
#[derive(Clone)]
pub struct Metrics {
    meter: Arc<dyn CoreMeter>,
    workflow_tasks: Counter,
    workflow_task_failures: Counter,
    activity_tasks: Counter,
    activity_failures: Counter,
    fuel_used: Counter,
    instantiation: HistogramDuration,
    plugin_loaded: Gauge,
    inputs_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    /// Records nothing (replay, benches, tests).
    fn default() -> Self {
        Metrics::new(Arc::new(NoOpCoreMeter))
    }
}

impl Metrics {
    /// Instruments on `meter` (core's Prometheus meter in a worker).
    pub fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let param = |name: &'static str, description: &'static str, unit: &'static str| {
            MetricParameters::builder().name(name).description(description).unit(unit).build()
        };
        Metrics {
            workflow_tasks: meter.counter(param("caisson_workflow_tasks", "Workflow activations run by a plugin", "")),
            workflow_task_failures: meter.counter(param(
                "caisson_workflow_task_failures",
                "Workflow tasks a plugin failed (trap, fuel, bad result)",
                "",
            )),
            activity_tasks: meter.counter(param("caisson_activity_tasks", "Activity attempts run by a plugin", "")),
            activity_failures: meter.counter(param("caisson_activity_failures", "Activity attempts that failed", "")),
            fuel_used: meter.counter(param("caisson_fuel_used", "Wasm fuel consumed by workflow activations", "")),
            instantiation: meter.histogram_duration(param(
                "caisson_instantiation_duration",
                "Time to instantiate a plugin's component",
                "duration",
            )),
            plugin_loaded: meter.gauge(param("caisson_plugin_loaded", "1 while a plugin version is served, 0 after", "")),
            inputs_dropped: meter.counter(param(
                "caisson_inputs_dropped",
                "Signal inputs a workflow could not be given (undecodable payload) and that were dropped",
                "",
            )),
            meter,
        }
    }

    /// Meters for one plugin of one tenant.
    pub fn for_plugin(&self, tenant: &str, plugin: &str) -> PluginMeters {
        let attributes = self.meter.new_attributes(NewAttributes::new(vec![
            MetricKeyValue::new("tenant", tenant.to_owned()),
            MetricKeyValue::new("plugin", plugin.to_owned()),
        ]));
        PluginMeters { metrics: self.clone(), attributes }
    }

    /// Marks a plugin version as served (`loaded`) or not.
    pub fn plugin_loaded(&self, tenant: &str, plugin: &crate::registry::LoadedPlugin, loaded: bool) {
        let attributes = self.meter.new_attributes(NewAttributes::new(vec![
            MetricKeyValue::new("tenant", tenant.to_owned()),
            MetricKeyValue::new("plugin", plugin.name.clone()),
            MetricKeyValue::new("kind", plugin.kind.to_string()),
            MetricKeyValue::new("sha256", plugin.sha256.clone()),
            MetricKeyValue::new("types", plugin.types.join(",")),
        ]));
        self.plugin_loaded.record(u64::from(loaded), &attributes);
    }
}

impl Metrics {
    /// Counts one input left out of a workflow activation (`kind`:
    /// `signal`), labelled with the handler it was meant for.
    pub fn input_dropped(&self, tenant: &str, plugin: &str, handler: &str, kind: &str) {
        let attributes = self.meter.new_attributes(NewAttributes::new(vec![
            MetricKeyValue::new("tenant", tenant.to_owned()),
            MetricKeyValue::new("plugin", plugin.to_owned()),
            MetricKeyValue::new("handler", handler.to_owned()),
            MetricKeyValue::new("kind", kind.to_owned()),
        ]));
        self.inputs_dropped.add(1, &attributes);
    }
}

/// The instruments bound to one plugin's labels. Cloning is cheap.
#[derive(Clone)]
pub struct PluginMeters {
    metrics: Metrics,
    attributes: MetricAttributes,
}

impl std::fmt::Debug for PluginMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginMeters").finish_non_exhaustive()
    }
}

impl Default for PluginMeters {
    fn default() -> Self {
        Metrics::default().for_plugin("", "")
    }
}

impl caisson_runtime::meter::PluginMeter for PluginMeters {
    fn workflow_task(&self, failed: bool, fuel: u64) {
        let m = &self.metrics;
        m.workflow_tasks.add(1, &self.attributes);
        if failed {
            m.workflow_task_failures.add(1, &self.attributes);
        }
        if fuel > 0 {
            m.fuel_used.add(fuel, &self.attributes);
        }
    }

    fn activity_task(&self, failed: bool) {
        self.metrics.activity_tasks.add(1, &self.attributes);
        if failed {
            self.metrics.activity_failures.add(1, &self.attributes);
        }
    }

    fn instantiated(&self, took: Duration) {
        self.metrics.instantiation.record(took, &self.attributes);
    }
}

/// A row of `caisson_plugin_loaded` from a worker's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPlugin {
    /// Tenant.
    pub tenant: String,
    /// Plugin (file stem).
    pub plugin: String,
    /// `workflow` or `activity`.
    pub kind: String,
    /// Version: SHA-256 of the component.
    pub sha256: String,
    /// Its types, comma-separated.
    pub types: String,
}

/// `GET /metrics` from `host:port`, as text.
pub fn scrape(address: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.to_owned())
}

/// The plugin versions a worker serves now (gauge value 1), sorted.
pub fn loaded_plugins(metrics_text: &str) -> Vec<ServedPlugin> {
    let mut rows: Vec<ServedPlugin> = metrics_text
        .lines()
        .filter_map(|line| line.strip_prefix("caisson_plugin_loaded{"))
        .filter_map(|rest| rest.rsplit_once("} ").filter(|(_, value)| value.trim() == "1").map(|(labels, _)| labels))
        .map(|labels| {
            let labels = parse_labels(labels);
            let get = |k: &str| labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
            ServedPlugin { tenant: get("tenant"), plugin: get("plugin"), kind: get("kind"), sha256: get("sha256"), types: get("types") }
        })
        .collect();
    rows.sort_by(|a, b| (&a.tenant, &a.plugin).cmp(&(&b.tenant, &b.plugin)));
    rows
}

/// `a="x",b="y\"z"` → pairs (Prometheus text format escapes).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim_start_matches(',').trim().to_owned();
        if key.is_empty() || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_plugins_are_read_back_from_the_metrics_text() {
        let text = "# TYPE caisson_plugin_loaded gauge\n\
            caisson_plugin_loaded{kind=\"activity\",plugin=\"greet\",service_name=\"temporal-core-sdk\",sha256=\"ab12\",tenant=\"acme\",types=\"greet,hello\"} 1\n\
            caisson_plugin_loaded{kind=\"activity\",plugin=\"old\",sha256=\"cd34\",tenant=\"acme\",types=\"x\"} 0\n\
            caisson_plugin_loaded{kind=\"workflow\",plugin=\"q\\\"uote\",sha256=\"ef56\",tenant=\"beta\",types=\"w\"} 1\n";
        let rows = loaded_plugins(text);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            rows[0],
            ServedPlugin {
                tenant: "acme".into(),
                plugin: "greet".into(),
                kind: "activity".into(),
                sha256: "ab12".into(),
                types: "greet,hello".into()
            }
        );
        assert_eq!(rows[1].plugin, "q\"uote");
    }
}
