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
//! | `caisson_version_status` | gauge: 1 current, 2 ramping, 3 draining, 4 drained, 5 inactive | tenant, deployment, build_id, plugins |
//! | `caisson_version_open_workflows` | gauge: open workflows on the version (from visibility) | tenant, deployment, build_id |
//!
//! `caisson plugins --metrics ADDRESS` reads `caisson_plugin_loaded` and
//! the version gauges back to list what a running worker serves.

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
    version_status: Gauge,
    version_open: Gauge,
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
            version_status: meter.gauge(param(
                "caisson_version_status",
                "State of a workflow plugin set version: 1 current, 2 ramping, 3 draining, 4 drained, 5 inactive",
                "",
            )),
            version_open: meter.gauge(param("caisson_version_open_workflows", "Open workflows on a plugin set version", "")),
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

impl Metrics {
    /// Records a version's state and, when known, its open workflows.
    pub fn version_status(
        &self,
        tenant: &str,
        deployment: &str,
        build_id: &str,
        status: VersionState,
        open: Option<u64>,
        plugins: &crate::registry::Registry,
    ) {
        let labels = |extra: Vec<MetricKeyValue>| {
            let mut kv = vec![
                MetricKeyValue::new("tenant", tenant.to_owned()),
                MetricKeyValue::new("deployment", deployment.to_owned()),
                MetricKeyValue::new("build_id", build_id.to_owned()),
            ];
            kv.extend(extra);
            self.meter.new_attributes(NewAttributes::new(kv))
        };
        let names: Vec<String> =
            plugins.workflow_plugins().map(|p| format!("{}@{}", p.name, &p.sha256[..p.sha256.len().min(12)])).collect();
        self.version_status.record(status.code(), &labels(vec![MetricKeyValue::new("plugins", names.join(","))]));
        if let Some(open) = open {
            self.version_open.record(open, &labels(Vec::new()));
        }
    }
}

/// A plugin set version's state, as the metrics code it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// New runs start on it.
    Current,
    /// Takes a share of new runs beside the current version.
    Ramping,
    /// Serves only the runs pinned to it.
    Draining,
    /// No open pinned run is left: unloaded.
    Drained,
    /// Registered (its pollers run) but never current or ramping.
    Inactive,
}

impl VersionState {
    const ALL: [VersionState; 5] =
        [VersionState::Current, VersionState::Ramping, VersionState::Draining, VersionState::Drained, VersionState::Inactive];

    /// The gauge's value.
    pub fn code(self) -> u64 {
        match self {
            VersionState::Current => 1,
            VersionState::Ramping => 2,
            VersionState::Draining => 3,
            VersionState::Drained => 4,
            VersionState::Inactive => 5,
        }
    }

    /// Lowercase name (logs, `caisson plugins`).
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Current => "current",
            VersionState::Ramping => "ramping",
            VersionState::Draining => "draining",
            VersionState::Drained => "drained",
            VersionState::Inactive => "inactive",
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl std::fmt::Display for VersionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of the version gauges from a worker's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedVersion {
    /// Tenant.
    pub tenant: String,
    /// Worker deployment name.
    pub deployment: String,
    /// Build id (derived from the workflow plugins' hashes).
    pub build_id: String,
    /// Its state.
    pub status: VersionState,
    /// Open workflows on it, when counted.
    pub open: Option<u64>,
    /// Its workflow plugins, `name@sha256-prefix`, comma-separated.
    pub plugins: String,
}

/// The workflow plugin set versions a worker serves or has drained.
pub fn versions(metrics_text: &str) -> Vec<ServedVersion> {
    let rows = |name: &str| -> Vec<(Vec<(String, String)>, u64)> {
        metrics_text
            .lines()
            .filter_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix('{')))
            .filter_map(|rest| rest.rsplit_once("} "))
            .filter_map(|(labels, value)| value.trim().parse::<f64>().ok().map(|v| (parse_labels(labels), v as u64)))
            .collect()
    };
    let get = |labels: &[(String, String)], k: &str| labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let open = rows("caisson_version_open_workflows");
    let mut versions: Vec<ServedVersion> = rows("caisson_version_status")
        .into_iter()
        .filter_map(|(labels, code)| {
            let key = (get(&labels, "tenant"), get(&labels, "deployment"), get(&labels, "build_id"));
            let open = open.iter().find(|(l, _)| (get(l, "tenant"), get(l, "deployment"), get(l, "build_id")) == key).map(|(_, n)| *n);
            Some(ServedVersion {
                tenant: key.0,
                deployment: key.1,
                build_id: key.2,
                status: VersionState::from_code(code)?,
                open,
                plugins: get(&labels, "plugins"),
            })
        })
        .collect();
    versions.sort_by(|a, b| (&a.tenant, a.status.code(), &a.build_id).cmp(&(&b.tenant, b.status.code(), &b.build_id)));
    versions
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
    fn versions_are_read_back_with_their_state_and_open_runs() {
        let text = "caisson_version_status{build_id=\"caisson-b\",deployment=\"orders\",plugins=\"saga@51aa03d9e8f2\",tenant=\"default\"} 3\n\
            caisson_version_status{build_id=\"caisson-a\",deployment=\"orders\",plugins=\"saga@9be1f04c2a11\",tenant=\"default\"} 1\n\
            caisson_version_open_workflows{build_id=\"caisson-b\",deployment=\"orders\",tenant=\"default\"} 7\n\
            caisson_version_status{build_id=\"caisson-c\",deployment=\"orders\",plugins=\"\",tenant=\"default\"} 9\n";
        let rows = versions(text);
        assert_eq!(rows.len(), 2, "an unknown state code is left out: {rows:?}");
        assert_eq!((rows[0].build_id.as_str(), rows[0].status, rows[0].open), ("caisson-a", VersionState::Current, None));
        assert_eq!((rows[1].build_id.as_str(), rows[1].status, rows[1].open), ("caisson-b", VersionState::Draining, Some(7)));
        assert_eq!(rows[1].plugins, "saga@51aa03d9e8f2");
    }

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
