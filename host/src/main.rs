//! The `caisson` command line.

use anyhow::Context;
use caisson::check::{self, CheckResult};
use caisson::codec::Codec;
use caisson::engine::{ComponentCache, EngineOptions, default_cache_dir, start_epoch_ticker};
use caisson::manifest::{CodecSettings, PluginSettings, TenantSettings, WorkerManifest, WorkerSettings, limits};
use caisson::plugin::Engines;
use caisson::registry::{LiveRegistry, Registry};
use caisson::settings::{check_duration, check_range};
use caisson::tenant::Admission;
use caisson::versioning::{VersionStore, VersioningOptions};
use caisson::watch::PluginFolder;
use caisson::worker::{Endpoint, Telemetry, Tenant};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// A Temporal worker whose workflows and activities are WebAssembly components.
///
/// Every function a workflow component exports is a workflow type; every
/// function an activity component exports is an activity type. Workflows
/// are kept deterministic (no clock, randomness, files or network);
/// activities reach only the directories and hosts their manifest grants.
#[derive(Parser)]
#[command(name = "caisson", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text, or as one JSON object per line with each field
    /// (tenant, plugin, workflow_id, run_id...) as a key. What is logged:
    /// CAISSON_LOG, e.g. `info,temporalio_sdk_core=warn`.
    #[arg(long, global = true, value_enum, default_value_t, env = "CAISSON_LOG_FORMAT")]
    log_format: caisson::logging::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect plugins: kind, workflow/activity types with their WIT
    /// signatures, imports, and the determinism verdict.
    ///
    /// Grants are read from NAME.toml beside NAME.wasm when present.
    /// Exit status: 0 when every plugin would load, 1 when a workflow is
    /// refused for its imports, 2 when a file is not a loadable component.
    Check {
        /// Component files (.wasm).
        #[arg(required = true)]
        plugins: Vec<PathBuf>,
        /// Compile without reading or writing the compile cache.
        #[arg(long)]
        no_cache: bool,
    },
    /// Write a standalone plugin project: its WIT world (with the
    /// caisson:* packages in wit/deps), sources with one example type, a
    /// manifest with commented grants, a README, a test.
    New {
        /// workflow or activity.
        kind: caisson::scaffold::Kind,
        /// rust, javascript, typescript (workflows), python or c.
        lang: caisson::scaffold::Lang,
        /// The plugin's name (lowercase words joined by `-`): its world and example type.
        name: String,
        /// Where to write it [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write the host's WIT packages (caisson-workflow/, caisson-activity/,
    /// caisson-codec/) for tools that want them.
    Wit {
        /// Where to write them [default: wit/deps].
        #[arg(long, default_value = "wit/deps")]
        dir: PathBuf,
    },
    /// Build a plugin project into DIR/build/NAME.wasm and print the
    /// verdict of `caisson check`; in a Caisson checkout, build every
    /// plugin into build/plugins.
    Build {
        /// The project folder (or a Caisson checkout) [default: .].
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// In a checkout: only these plugins.
        #[arg(long = "only", value_name = "NAME")]
        only: Vec<String>,
    },
    /// Run a worker: poll a Temporal task queue and serve the plugins'
    /// workflow and activity types until SIGINT/SIGTERM.
    Worker(WorkerArgs),
    /// Replay recorded histories against workflow plugins: proves that
    /// changed code still produces the recorded commands.
    ///
    /// Histories are files from `temporal workflow show --output json`, or
    /// the binary protobuf form, or folders of them. Prints one line per
    /// history and a summary; exits 1 if any history fails.
    ///
    /// With --plugin-dir, each history replays on the plugin set version
    /// whose build id it records (a versioned worker's), chosen among the
    /// folder's subfolders (one per version, as the worker keeps them in
    /// ~/.local/state/caisson/versions/NAMESPACE/DEPLOYMENT/).
    Replay {
        /// Workflow plugin(s) to replay with (repeatable).
        #[arg(long = "plugin", short = 'p', required_unless_present = "plugin_dir", value_name = "PLUGIN.wasm")]
        plugins: Vec<PathBuf>,
        /// A folder of versions: one subfolder of workflow plugins per
        /// version; each history replays on the version it records.
        #[arg(long, value_name = "DIR", conflicts_with = "plugins")]
        plugin_dir: Option<PathBuf>,
        /// History files or folders.
        #[arg(required = true, value_name = "HISTORY")]
        histories: Vec<PathBuf>,
        /// Replay workers run at once, on N CPUs [default: one per CPU].
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// A worker manifest whose [codec] encoded the histories'
        /// payloads: replay decodes and encodes through it, as the worker
        /// did (its secrets are read from this environment).
        #[arg(long, short = 'm', value_name = "MANIFEST")]
        manifest: Option<PathBuf>,
        /// With --manifest: the [[tenant]] whose codec to use.
        #[arg(long, value_name = "NAME", requires = "manifest")]
        tenant: Option<String>,
    },
    /// List the plugins a running worker serves: tenant, plugin, kind,
    /// version (SHA-256) and types, read from its metrics endpoint.
    Plugins {
        /// The worker's --metrics-address.
        #[arg(long, value_name = "HOST:PORT")]
        metrics: String,
    },
    /// Route new runs between the plugin set versions of a worker
    /// deployment: ramp a version, or make it current. Build ids are
    /// listed by `caisson plugins` and logged by the worker.
    Deployment {
        #[command(subcommand)]
        action: DeploymentAction,
    },
    /// Serve the codec of a worker manifest over Temporal's codec server
    /// protocol (POST /encode, POST /decode), so that the Temporal UI and
    /// `temporal workflow show --codec-endpoint URL` show plaintext.
    ///
    /// Whoever reaches it can decrypt: it listens on 127.0.0.1 unless
    /// told otherwise, answers CORS only for --cors-origin, and with
    /// --require-token only requests carrying `Authorization: Bearer
    /// <token>`. Prints `listening on http://ADDRESS` once ready.
    CodecServer {
        /// Worker manifest with a [codec] table (or [[tenant]] entries with their own).
        #[arg(long, short = 'm')]
        manifest: PathBuf,
        /// Serve this tenant's codec instead of the top-level [codec].
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
        /// Where to listen (port 0: any free port).
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8081")]
        listen: String,
        /// The Temporal UI's origin, the only one CORS is answered for,
        /// e.g. http://localhost:8233 (none: no CORS headers).
        #[arg(long, value_name = "ORIGIN")]
        cors_origin: Option<String>,
        /// Require `Authorization: Bearer <token>`: the name of an
        /// environment variable holding the token (preferred: a value on
        /// the command line is visible to other users), or the token.
        #[arg(long, value_name = "ENV_VAR_OR_TOKEN")]
        require_token: Option<String>,
    },
    /// The embedded default: start a Temporal dev server unless one is
    /// reachable, then run a worker. With no plugins given, runs the
    /// example set of examples/dev.toml (plugins from ./build/plugins, built
    /// by `cargo xtask plugins`), prints each workflow's result and stops.
    Dev {
        #[command(flatten)]
        worker: WorkerArgs,
        /// Start this workflow type once the worker runs, print its
        /// result, then stop (used by `make demo`).
        #[arg(long, value_name = "WORKFLOW_TYPE")]
        execute: Option<String>,
        /// JSON argument(s) for --execute, one per flag.
        #[arg(long, value_name = "JSON", requires = "execute")]
        input: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DeploymentAction {
    /// Send PERCENT % of new runs to BUILD_ID beside the current version
    /// (0 ends the ramp).
    Ramp {
        #[command(flatten)]
        target: DeploymentTarget,
        /// The version's build id (`caisson-…`).
        build_id: String,
        /// 0 to 100.
        percentage: f32,
    },
    /// Make BUILD_ID the current version: new runs start on it, runs
    /// pinned to other versions stay where they are.
    Promote {
        #[command(flatten)]
        target: DeploymentTarget,
        /// The version's build id (`caisson-…`).
        build_id: String,
    },
}

#[derive(Args)]
struct DeploymentTarget {
    /// The worker deployment: the worker's --deployment, by default its
    /// task queue's name.
    #[arg(long)]
    deployment: String,
    /// Temporal frontend host:port [env: TEMPORAL_ADDRESS; default: localhost:7233]
    #[arg(long)]
    address: Option<String>,
    /// Namespace [env: TEMPORAL_NAMESPACE; default: default]
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(Args, Clone)]
struct WorkerArgs {
    /// Plugin files (.wasm, with optional NAME.toml grants beside them) or
    /// folders of them. A plugin in a folder that fails to load is
    /// reported and skipped; one named directly stops the worker.
    plugins: Vec<PathBuf>,
    /// Worker manifest: [temporal] connection, [worker] tuning, [[plugin]] and
    /// [[tenant]] entries (see the README).
    #[arg(long, short = 'm')]
    manifest: Option<PathBuf>,
    /// Temporal frontend host:port [env: TEMPORAL_ADDRESS; default: localhost:7233]
    #[arg(long)]
    address: Option<String>,
    /// Namespace [env: TEMPORAL_NAMESPACE; default: default]
    #[arg(long)]
    namespace: Option<String>,
    /// Task queue to poll [env: TEMPORAL_TASK_QUEUE; default: caisson]
    #[arg(long)]
    task_queue: Option<String>,
    /// Running workflows kept in memory (sticky cache); evicted ones are
    /// replayed from history when they next run.
    #[arg(long)]
    max_cached_workflows: Option<usize>,
    /// Keep watching the plugin folders given: a NAME.wasm dropped in is
    /// served within 2 s, a replaced one is served in its new version, a
    /// removed one stops taking new work.
    #[arg(long)]
    watch: bool,
    /// Serve Prometheus metrics (core's and per-plugin) on this address,
    /// e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_address: Option<std::net::SocketAddr>,
    /// On SIGINT/SIGTERM, how long in-flight activities may run before
    /// they are cancelled (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = caisson::manifest::parse_duration)]
    shutdown_grace: Option<std::time::Duration>,
    /// Worker deployment name under which each workflow plugin set is
    /// served as a version [default: the task queue's name].
    #[arg(long, value_name = "NAME")]
    deployment: Option<String>,
    /// Serve plugins unversioned: a replaced workflow plugin serves every
    /// running workflow's next task (as on a server without worker
    /// versioning).
    #[arg(long)]
    no_versioning: bool,
    /// Promote a new plugin set even when it drops workflow types the
    /// current version serves (new runs of those types then wait for
    /// another worker).
    #[arg(long)]
    allow_type_removal: bool,
    /// Register a new plugin set as a version without making it current:
    /// ramp it and promote it with `caisson deployment` (the first set of
    /// a new deployment is made current all the same).
    #[arg(long)]
    manual_promotion: bool,
    /// Keep serving this plugin set version (a `caisson-…` build id from
    /// `caisson plugins`) even once drained, side by side with the current
    /// one, to ramp to or roll back to; while its copy is kept, a
    /// restarted worker serves it too. Repeatable; adds to `[worker]
    /// keep_versions`.
    #[arg(long = "keep-version", value_name = "BUILD_ID")]
    keep_versions: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Replay reports its own verdicts; core's warnings about the failures
    // it detects would repeat them.
    let default_filter = match cli.command {
        Command::Replay { .. } => "warn,temporalio_sdk_core=error",
        _ => "info,temporalio_sdk_core=warn,temporalio_client=warn",
    };
    caisson::logging::init(cli.log_format, default_filter);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { plugins, no_cache } => {
            let cache = if no_cache { ComponentCache::disabled() } else { ComponentCache::new(default_cache_dir()) };
            let engines = Engines::new(&EngineOptions::default(), cache).context("setting up wasmtime")?;
            let (mut refused, mut failed) = (0, 0);
            for path in &plugins {
                match check::check(path, &engines) {
                    CheckResult::Accepted(report) => print!("{report}"),
                    CheckResult::Refused(report) => {
                        refused += 1;
                        print!("{report}");
                    }
                    CheckResult::Failed(e) => {
                        failed += 1;
                        println!("error: {e}");
                    }
                }
            }
            Ok(if failed > 0 {
                ExitCode::from(2)
            } else if refused > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::New { kind, lang, name, dir } => {
            let dir = caisson::scaffold::new_project(kind, lang, &name, dir.as_deref())?;
            println!("wrote the {kind} plugin `{name}` in {lang}: {}", dir.display());
            println!("next: cd {} && caisson build   (see its README.md)", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Wit { dir } => {
            caisson::scaffold::write_wit(&dir)?;
            println!("wrote caisson-workflow/, caisson-activity/ and caisson-codec/ into {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { dir, only } => build(&dir, &only),
        Command::Worker(args) => {
            let runtime = tokio_runtime()?;
            runtime.block_on(async {
                let (tenants, telemetry) = prepare(&args, false)?;
                caisson::worker::run(tenants, telemetry, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Plugins { metrics } => list_plugins(&metrics),
        Command::Deployment { action } => tokio_runtime()?.block_on(route(action)),
        Command::Replay { plugins, plugin_dir, histories, jobs, manifest, tenant } => {
            let runtime = tokio_runtime()?;
            let jobs = jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
            let source = match plugin_dir {
                Some(dir) => ReplayPlugins::Versions(dir),
                None => ReplayPlugins::Files(plugins),
            };
            let codec = match &manifest {
                Some(m) => Some(manifest_codec(m, tenant.as_deref())?),
                None => None,
            };
            runtime.block_on(replay(source, histories, jobs, codec))
        }
        Command::CodecServer { manifest, tenant, listen, cors_origin, require_token } => {
            tokio_runtime()?.block_on(codec_server(&manifest, tenant.as_deref(), &listen, cors_origin, require_token))
        }
        Command::Dev { worker: args, execute, input } => {
            let runtime = tokio_runtime()?;
            runtime.block_on(dev(args, execute, input))
        }
    }
}

/// `caisson build`: builds, then checks what it built (the same verdict
/// and exit status as `caisson check`).
fn build(dir: &Path, only: &[String]) -> anyhow::Result<ExitCode> {
    if caisson::build::is_repository(dir) {
        caisson::build::build_repository(dir, only)?;
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(only.is_empty(), "--only selects plugins of a Caisson checkout; {} is a plugin project", dir.display());
    let built = caisson::build::build_project(dir)?;
    let engines = Engines::new(&EngineOptions::default(), ComponentCache::new(default_cache_dir())).context("setting up wasmtime")?;
    let (report, code) = match check::check(&built.wasm, &engines) {
        CheckResult::Accepted(report) => (report, ExitCode::SUCCESS),
        CheckResult::Refused(report) => (report, ExitCode::from(1)),
        CheckResult::Failed(e) => (format!("error: {e}\n"), ExitCode::from(2)),
    };
    print!("{report}");
    print!("{}", check::grants_summary(&built.wasm));
    Ok(code)
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")
}

/// Resolves each tenant's endpoint and settings and loads its plugins.
///
/// Without `[[tenant]]` entries the worker has one tenant, `default`,
/// made of the command line and the manifest's `[temporal]`/`[[plugin]]`.
fn prepare(args: &WorkerArgs, dev: bool) -> anyhow::Result<(Vec<Tenant>, Telemetry)> {
    let manifest = match &args.manifest {
        Some(path) => WorkerManifest::load(path)?,
        None => WorkerManifest::default(),
    };
    let mut temporal = manifest.temporal.clone();
    temporal.address = args.address.clone().or(temporal.address);
    temporal.namespace = args.namespace.clone().or(temporal.namespace);
    temporal.task_queue = args.task_queue.clone().or(temporal.task_queue);
    let mut settings = manifest.worker.clone();
    if let Some(n) = args.max_cached_workflows {
        check_range("--max-cached-workflows", n as u64, limits::MAX_CACHED_WORKFLOWS, "")?;
        settings.max_cached_workflows = n;
    }
    if let Some(grace) = args.shutdown_grace {
        check_duration("--shutdown-grace", grace, limits::SHUTDOWN_GRACE)?;
        settings.shutdown_grace = grace;
    }
    settings.metrics_address = args.metrics_address.or(settings.metrics_address);
    if args.no_versioning {
        settings.versioning = caisson::manifest::VersioningMode::Off;
    }
    if let Some(name) = &args.deployment {
        caisson::manifest::check_deployment_name("--deployment", name)?;
        settings.deployment = Some(name.clone());
    }
    let state_root = settings.state_dir.clone().unwrap_or_else(VersionStore::default_root);
    for id in &args.keep_versions {
        caisson::manifest::check_build_id("--keep-version", id)?;
    }
    settings.keep_versions.extend(args.keep_versions.iter().cloned());
    let versioning_for = |deployment: Option<&String>, keep: &[String], endpoint: &Endpoint| {
        (settings.versioning == caisson::manifest::VersioningMode::Auto).then(|| {
            let deployment = deployment.cloned().unwrap_or_else(|| caisson::versioning::deployment_name_for(&endpoint.task_queue));
            VersioningOptions {
                store: VersionStore::new(&state_root, &endpoint.namespace, &deployment),
                deployment,
                allow_type_removal: args.allow_type_removal,
                auto_promote: !args.manual_promotion,
                keep: keep.to_vec(),
            }
        })
    };
    let otlp = caisson::traces::OtlpExport::resolve(settings.otlp_endpoint.as_deref(), settings.otlp_protocol, |k| std::env::var(k).ok())?;
    let telemetry = Telemetry::start(settings.metrics_address, otlp.as_ref())?;

    // One pooling allocator for the whole process, sized for every tenant.
    let tenant_settings: Vec<WorkerSettings> = manifest.tenant.iter().map(|t| tenant_limits(&settings, t)).collect();
    let all = || std::iter::once(&settings).chain(&tenant_settings);
    let cached = all().fold(0usize, |n, s| n.saturating_add(s.max_cached_workflows));
    let activities = all().fold(0usize, |n, s| n.saturating_add(s.max_concurrent_activities));
    // While a new plugin set version takes new runs, the old one still
    // holds its cached runs: both caches share the pool, so a versioned
    // worker asks for room for two when the machine allows it.
    let versioned = settings.versioning == caisson::manifest::VersioningMode::Auto;
    let options = match versioned.then(|| EngineOptions::for_worker(cached.saturating_mul(2), activities)) {
        Some(Ok(options)) => options,
        doubled => {
            if doubled.is_some() {
                tracing::info!(
                    "the instance pool holds {cached} cached workflows, not twice that: while a replaced plugin set \
                     drains, its cached runs and the new version's share it (a workflow task that finds it full fails, and Temporal retries it)"
                );
            }
            EngineOptions::for_worker(cached, activities)?
        }
    };
    let mut engines = Engines::new(&options, ComponentCache::new(default_cache_dir())).context("setting up wasmtime")?;
    engines.memory_budget = caisson::memory_budget::MemoryBudget::from_setting(settings.memory_budget_mb).map_err(anyhow::Error::msg)?;
    start_epoch_ticker(&[&engines.workflow, &engines.activity]);

    let mut tenants = Vec::new();
    let mut paths = args.plugins.clone();
    if paths.is_empty() && manifest.plugin.is_empty() && manifest.tenant.is_empty() && dev {
        paths.push(PathBuf::from("build/plugins"));
    }
    if !paths.is_empty() || !manifest.plugin.is_empty() {
        let registry = Registry::new(engines.clone())?.with_metrics("default", telemetry.metrics.clone());
        let live = Arc::new(LiveRegistry::new(registry, Admission::unrestricted("default")));
        for plugin in &manifest.plugin {
            let path = plugin.path.clone().expect("manifest plugins have paths");
            report(&live.load(&path, plugin.clone()).with_context(|| format!("loading plugin {}", path.display()))?);
        }
        let mut folders = Vec::new();
        for path in &paths {
            if path.is_dir() {
                let mut folder = PluginFolder::new(path.clone(), live.clone());
                folder.load_now().with_context(|| format!("reading plugin folder {}", path.display()))?;
                if args.watch {
                    folders.push(folder);
                }
            } else {
                let plugin_settings = PluginSettings::for_component(path)?;
                report(&live.load(path, plugin_settings)?);
            }
        }
        anyhow::ensure!(
            args.watch || !live.snapshot().loaded().is_empty(),
            "no plugins to serve: name .wasm files or folders, or list [[plugin]] entries in a manifest \
             (build the examples with `cargo xtask plugins`)"
        );
        let endpoint = Endpoint::resolve(&temporal)?;
        let versioning = versioning_for(settings.deployment.as_ref(), &settings.keep_versions, &endpoint);
        let codec = load_codec(manifest.codec_for(None), &Admission::unrestricted("default"), &engines.cache)?;
        tenants.push(Tenant { name: "default".into(), endpoint, settings: settings.clone(), registry: live, folders, versioning, codec });
    }
    for (tenant, tenant_settings) in manifest.tenant.iter().zip(tenant_settings) {
        let name = &tenant.name;
        let admission = Admission::new(name, &tenant.limits).map_err(anyhow::Error::msg)?;
        let codec = load_codec(manifest.codec_for(Some(tenant)), &admission, &engines.cache)?;
        let registry = Registry::new(engines.clone())?.with_metrics(name, telemetry.metrics.clone());
        let live = Arc::new(LiveRegistry::new(registry, admission));
        for plugin in &tenant.plugin {
            let path = plugin.path.clone().expect("manifest plugins have paths");
            report(&live.load(&path, plugin.clone()).with_context(|| format!("tenant `{name}`: loading plugin {}", path.display()))?);
        }
        let mut folders = Vec::new();
        if let Some(dir) = &tenant.plugin_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("tenant `{name}`: creating plugin_dir {}", dir.display()))?;
            let mut folder = PluginFolder::new(dir.clone(), live.clone());
            folder.load_now().with_context(|| format!("tenant `{name}`: reading plugin_dir {}", dir.display()))?;
            folders.push(folder);
        }
        let tenant_temporal = caisson::manifest::TemporalSettings {
            namespace: tenant.namespace.clone().or(temporal.namespace.clone()),
            task_queue: Some(tenant.task_queue.clone().unwrap_or_else(|| name.clone())),
            ..temporal.clone()
        };
        let mut endpoint = Endpoint::resolve(&tenant_temporal)?;
        endpoint.fairness_key = Some(name.clone());
        let keep: Vec<String> = settings.keep_versions.iter().chain(&tenant.keep_versions).cloned().collect();
        let versioning = versioning_for(tenant.deployment.as_ref(), &keep, &endpoint);
        tenants.push(Tenant { name: name.clone(), endpoint, settings: tenant_settings, registry: live, folders, versioning, codec });
    }
    anyhow::ensure!(
        !tenants.is_empty(),
        "no plugins to serve: name .wasm files or folders, or list [[plugin]] or [[tenant]] entries in a manifest \
         (build the examples with `cargo xtask plugins`)"
    );
    Ok((tenants, telemetry))
}

/// `caisson codec-server`.
async fn codec_server(
    manifest: &Path,
    tenant: Option<&str>,
    listen: &str,
    cors_origin: Option<String>,
    require_token: Option<String>,
) -> anyhow::Result<ExitCode> {
    let codec = manifest_codec(manifest, tenant)?;
    let token = match require_token {
        Some(t) => {
            let token = std::env::var(&t).unwrap_or(t);
            anyhow::ensure!(!token.trim().is_empty(), "--require-token: the token is empty");
            Some(token)
        }
        None => None,
    };
    let (listener, bound) = caisson::codec_server::bind(listen).await?;
    if !bound.ip().is_loopback() {
        tracing::warn!("the codec server listens on {bound}, beyond this machine: whoever reaches it can decrypt");
    }
    println!("listening on http://{bound}");
    let options = caisson::codec_server::Options { cors_origin, token };
    tokio::select! {
        served = caisson::codec_server::serve(listener, codec, options) => served?,
        _ = shutdown_signal() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The codec a manifest gives tenant `tenant` (`None`: the default
/// tenant, i.e. the top-level `[codec]`), for `codec-server` and `replay`.
fn manifest_codec(path: &Path, tenant: Option<&str>) -> anyhow::Result<Arc<Codec>> {
    let manifest = WorkerManifest::load(path)?;
    let (settings, admission) = match tenant {
        Some(name) => {
            let t = manifest.tenant.iter().find(|t| t.name == name).with_context(|| {
                let names: Vec<&str> = manifest.tenant.iter().map(|t| t.name.as_str()).collect();
                format!("--tenant {name}: {} has no such [[tenant]] (it has: {})", path.display(), names.join(", "))
            })?;
            (manifest.codec_for(Some(t)), Admission::new(name, &t.limits).map_err(anyhow::Error::msg)?)
        }
        None => (manifest.codec_for(None), Admission::unrestricted("default")),
    };
    let settings = settings.with_context(|| format!("{}: no [codec] table for this tenant", path.display()))?;
    load_codec(Some(settings), &admission, &ComponentCache::new(default_cache_dir()))?.context("a codec is named")
}

/// Loads the payload codec a tenant uses (once, at start), its secrets
/// checked against the tenant's `allow_secrets`.
fn load_codec(settings: Option<&CodecSettings>, admission: &Admission, cache: &ComponentCache) -> anyhow::Result<Option<Arc<Codec>>> {
    let Some(settings) = settings else { return Ok(None) };
    admission.admit_codec(settings)?;
    let codec = Codec::load(settings, cache).with_context(|| format!("tenant `{}`: loading its payload codec", admission.tenant()))?;
    tracing::info!(tenant = admission.tenant(), "payload codec {}: payloads are encoded and decoded with it", codec.name());
    Ok(Some(Arc::new(codec)))
}

/// A tenant's share of the worker: its own limits, else the worker's.
fn tenant_limits(worker: &WorkerSettings, tenant: &TenantSettings) -> WorkerSettings {
    WorkerSettings {
        max_cached_workflows: tenant.max_cached_workflows.unwrap_or(worker.max_cached_workflows),
        max_concurrent_workflow_tasks: tenant.max_concurrent_workflow_tasks.unwrap_or(worker.max_concurrent_workflow_tasks),
        max_concurrent_activities: tenant.max_concurrent_activities.unwrap_or(worker.max_concurrent_activities),
        ..worker.clone()
    }
}

/// `caisson deployment ramp|promote`.
async fn route(action: DeploymentAction) -> anyhow::Result<ExitCode> {
    let (target, build_id, percentage) = match &action {
        DeploymentAction::Ramp { target, build_id, percentage } => (target, build_id, Some(*percentage)),
        DeploymentAction::Promote { target, build_id } => (target, build_id, None),
    };
    if let Some(p) = percentage {
        anyhow::ensure!((0.0..=100.0).contains(&p), "PERCENTAGE = {p}: must be between 0 and 100");
    }
    caisson::manifest::check_deployment_name("--deployment", &target.deployment)?;
    caisson::manifest::check_build_id("BUILD_ID", build_id)?;
    let settings =
        caisson::manifest::TemporalSettings { address: target.address.clone(), namespace: target.namespace.clone(), ..Default::default() };
    let endpoint = Endpoint::resolve(&settings)?;
    let connection = caisson::worker::connect(&endpoint).await?;
    let deployment = caisson::versioning::Deployment::new(connection, &endpoint.namespace, &target.deployment, &endpoint.address);
    match percentage {
        Some(p) => deployment.set_ramping(build_id, p).await?,
        None => deployment.set_current(build_id).await?,
    }
    deployment.wait_for_routing(caisson::versioning::ROUTING_LIMIT).await?;
    match percentage {
        Some(p) => println!("deployment {}: version {build_id} takes {p}% of new runs", target.deployment),
        None => println!("deployment {}: version {build_id} is current", target.deployment),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a running worker serves, from its `caisson_plugin_loaded`
/// metric.
fn list_plugins(metrics: &str) -> anyhow::Result<ExitCode> {
    let address = metrics.trim_start_matches("http://").trim_end_matches('/').trim_end_matches("/metrics");
    let text = caisson::metrics::scrape(address)
        .with_context(|| format!("reading metrics from {address} (is the worker running with --metrics-address {address}?)"))?;
    let plugins = caisson::metrics::loaded_plugins(&text);
    if plugins.is_empty() {
        println!("no plugins loaded");
    } else {
        println!("{:<12} {:<24} {:<9} {:<14} TYPES", "TENANT", "PLUGIN", "KIND", "SHA256");
        for p in plugins {
            println!("{:<12} {:<24} {:<9} {:<14} {}", p.tenant, p.plugin, p.kind, &p.sha256[..p.sha256.len().min(12)], p.types);
        }
    }
    let versions = caisson::metrics::versions(&text);
    if !versions.is_empty() {
        println!();
        println!("{:<12} {:<20} {:<26} {:<9} {:>5}  WORKFLOW PLUGINS", "TENANT", "DEPLOYMENT", "BUILD ID", "STATUS", "OPEN");
        for v in versions {
            let open = v.open.map_or_else(|| "?".to_owned(), |n| n.to_string());
            println!("{:<12} {:<20} {:<26} {:<9} {:>5}  {}", v.tenant, v.deployment, v.build_id, v.status, open, v.plugins);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(p: &caisson::registry::LoadedPlugin) {
    tracing::info!(
        "loaded {} ({} {}: {}) sha256 {}…",
        p.name,
        p.kind,
        if p.types.len() == 1 { "type" } else { "types" },
        p.types.join(", "),
        &p.sha256[..12]
    );
}

/// What `caisson replay` replays with.
enum ReplayPlugins {
    /// These plugins, for every history.
    Files(Vec<PathBuf>),
    /// A folder of versions: each history on the one it records.
    Versions(PathBuf),
}

/// One plugin set to replay on.
struct ReplaySet {
    /// How the output names it (`version caisson-… (DIR)`), if a version.
    label: Option<String>,
    /// Its workflow plugins' build id (hashed once, matched per history).
    build_id: String,
    registry: Arc<Registry>,
}

impl ReplaySet {
    fn new(label: Option<String>, registry: Registry) -> Self {
        ReplaySet { label, build_id: registry.workflow_build_id(), registry: Arc::new(registry) }
    }
}

fn load_set(engines: &Engines, files: &[PathBuf]) -> anyhow::Result<Registry> {
    let mut registry = Registry::new(engines.clone())?;
    for path in files {
        let settings = PluginSettings::for_component(path)?;
        registry.load(path, settings)?;
    }
    Ok(registry)
}

/// Each subfolder of `dir` holding .wasm files, as a version.
fn load_versions(engines: &Engines, dir: &Path) -> anyhow::Result<Vec<ReplaySet>> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading --plugin-dir {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    folders.sort();
    let mut sets = Vec::new();
    for folder in folders {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        if files.is_empty() {
            continue;
        }
        let registry = load_set(engines, &files).with_context(|| format!("loading the version in {}", folder.display()))?;
        let mut set = ReplaySet::new(None, registry);
        set.label = Some(format!("version {} ({})", set.build_id, folder.display()));
        sets.push(set);
    }
    anyhow::ensure!(
        !sets.is_empty(),
        "--plugin-dir {}: no version folders (expected one subfolder of workflow plugins per version)",
        dir.display()
    );
    Ok(sets)
}

async fn replay(source: ReplayPlugins, histories: Vec<PathBuf>, jobs: usize, codec: Option<Arc<Codec>>) -> anyhow::Result<ExitCode> {
    use caisson::replay::{self, ReplayOutcome};
    // The worker's pooling allocator: each replay worker holds one run at
    // a time (two while one is evicted and the next starts), and a pooled
    // slot is reused instead of mapping and unmapping memory per history.
    let options = EngineOptions::for_worker(jobs.saturating_mul(2), 0)?;
    let engines = Engines::new(&options, ComponentCache::new(default_cache_dir())).context("setting up wasmtime")?;
    start_epoch_ticker(&[&engines.workflow, &engines.activity]);
    let (sets, by_version) = match &source {
        ReplayPlugins::Files(files) => (vec![ReplaySet::new(None, load_set(&engines, files)?)], false),
        ReplayPlugins::Versions(dir) => (load_versions(&engines, dir)?, true),
    };
    let files = replay::history_files(&histories).context("listing history files")?;
    anyhow::ensure!(!files.is_empty(), "no history files found in {histories:?}");
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut groups: Vec<Vec<replay::RecordedHistory>> = sets.iter().map(|_| Vec::new()).collect();
    for read in replay::read_histories(&files, jobs) {
        let h = match read {
            Ok(h) => h,
            Err(e) => {
                failed += 1;
                println!("ERROR {e}");
                continue;
            }
        };
        let chosen = if by_version {
            let Some(build_id) = &h.build_id else {
                failed += 1;
                println!(
                    "ERROR {}: it records no worker deployment build id (an unversioned worker ran it): replay it with --plugin",
                    h.name
                );
                continue;
            };
            match sets.iter().position(|s| s.build_id == *build_id) {
                Some(i) => i,
                None => {
                    failed += 1;
                    let known: Vec<&str> = sets.iter().map(|s| s.build_id.as_str()).collect();
                    println!(
                        "ERROR {}: it ran on version {build_id}, which is not in --plugin-dir (it holds {})",
                        h.name,
                        known.join(", ")
                    );
                    continue;
                }
            }
        } else {
            0
        };
        if sets[chosen].registry.workflow(&h.workflow_type).is_none() {
            failed += 1;
            let served: Vec<&str> = sets[chosen].registry.workflow_types().collect();
            println!("ERROR {}: workflow type `{}` is not in the plugins (they serve: {})", h.name, h.workflow_type, served.join(", "));
            continue;
        }
        groups[chosen].push(h);
    }
    for (set, loaded) in sets.iter().zip(groups) {
        if loaded.is_empty() {
            continue;
        }
        let names: Vec<(String, usize)> = loaded.iter().map(|h| (h.name.clone(), h.history.events.len())).collect();
        let outcomes = replay::replay_on_with_codec(set.registry.clone(), codec.clone(), loaded, jobs).await?;
        let on = set.label.as_ref().map(|l| format!(" on {l}")).unwrap_or_default();
        for ((name, events), outcome) in names.into_iter().zip(outcomes) {
            match outcome {
                ReplayOutcome::Ok => {
                    ok += 1;
                    println!("ok    {name} ({events} events){on}");
                }
                ReplayOutcome::Nondeterminism(message) => {
                    failed += 1;
                    println!("NONDETERMINISM {name}{on}: {message}");
                }
                ReplayOutcome::Failed(message) => {
                    failed += 1;
                    println!("ERROR {name}{on}: {message}");
                }
            }
        }
    }
    println!("{} histories: {ok} ok, {failed} failed", ok + failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

async fn dev(mut args: WorkerArgs, execute: Option<String>, input: Vec<String>) -> anyhow::Result<ExitCode> {
    use caisson::dev_examples::{DEV_SET, DevSet};
    // No plugins, no manifest, nothing to execute: the example set.
    let examples = if args.plugins.is_empty() && args.manifest.is_none() && execute.is_none() && Path::new(DEV_SET).exists() {
        let set = DevSet::load(Path::new(DEV_SET))?;
        args.plugins = set.plugin_files(Path::new("build/plugins"));
        if let Some(missing) = args.plugins.iter().find(|p| !p.exists()) {
            anyhow::bail!("{} is missing: build the example plugins first (`cargo xtask plugins`, or `make demo`)", missing.display());
        }
        Some(set)
    } else {
        None
    };
    let (mut tenants, telemetry) = prepare(&args, true)?;
    let mut endpoint = tenants[0].endpoint.clone();
    let mut server = None;
    if !caisson::devserver::reachable(&endpoint.address).await {
        let port: u16 = endpoint
            .address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .with_context(|| format!("`{}` has no port to start a dev server on", endpoint.address))?;
        tracing::info!("no Temporal server at {}: starting a dev server", endpoint.address);
        let started = caisson::devserver::start(port, Some(port.saturating_add(1000))).await?;
        tracing::info!("Temporal dev server on {} (web UI: {})", started.address, started.ui.as_deref().unwrap_or("off"));
        endpoint.address = started.address.clone();
        for tenant in &mut tenants {
            tenant.endpoint.address = started.address.clone();
        }
        server = Some(started);
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut code = ExitCode::SUCCESS;
    let worker = caisson::worker::run(tenants, telemetry, async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = stop_rx => {}
        }
    });
    let ui = server.as_ref().and_then(|s: &caisson::devserver::DevServer| s.ui.clone());
    let execution = async {
        let ok = match (&examples, execute) {
            (Some(set), _) => Ok(run_examples(set, &endpoint, ui.as_deref()).await),
            (None, Some(workflow_type)) => execute_workflow(&endpoint, &workflow_type, &input).await,
            (None, None) => return std::future::pending::<anyhow::Result<bool>>().await,
        };
        let _ = stop_tx.send(());
        ok
    };
    tokio::pin!(worker);
    tokio::select! {
        r = &mut worker => r?,
        ok = execution => {
            if !ok? { code = ExitCode::FAILURE; }
            worker.await?;
        }
    }
    if let Some(server) = server {
        server.stop().await;
    }
    Ok(code)
}

/// Runs the example set and prints what each workflow did. True when
/// every example ended as expected.
async fn run_examples(set: &caisson::dev_examples::DevSet, endpoint: &Endpoint, ui: Option<&str>) -> bool {
    let _services = match caisson::dev_examples::start_services(set, endpoint).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return false;
        }
    };
    tracing::info!("running {} examples with the temporal CLI (see examples/README.md)", set.example.len());
    let outcomes = caisson::dev_examples::run_all(set, endpoint).await;
    let mut all = true;
    println!();
    for o in &outcomes {
        all &= o.as_expected;
        let mark = if o.as_expected { "ok  " } else { "FAIL" };
        println!("{mark} {}  ({}, workflow {} {})", o.example.name, o.example.readme, o.example.workflow, o.workflow_id);
        print!("{}", o.report);
    }
    if let Some(ui) = ui {
        println!("\nSee the histories in the Temporal UI: {ui}/namespaces/{}/workflows", endpoint.namespace);
    }
    println!("{} of {} examples ended as expected.", outcomes.iter().filter(|o| o.as_expected).count(), outcomes.len());
    all
}

/// Starts a workflow with the Temporal CLI, as any user would, and prints
/// its result. True when it completed.
async fn execute_workflow(endpoint: &Endpoint, workflow_type: &str, input: &[String]) -> anyhow::Result<bool> {
    let cli = caisson::devserver::temporal_cli()?;
    let workflow_id = format!("{workflow_type}-{}", std::process::id());
    let mut cmd = tokio::process::Command::new(cli);
    cmd.args(["workflow", "execute", "--type", workflow_type, "--workflow-id", &workflow_id]).args([
        "--task-queue",
        &endpoint.task_queue,
        "--address",
        &endpoint.address,
        "--namespace",
        &endpoint.namespace,
    ]);
    for i in input {
        cmd.args(["--input", i]);
    }
    tracing::info!("starting workflow {workflow_id} ({workflow_type}) with the temporal CLI");
    let status = cmd.status().await.context("running `temporal workflow execute`")?;
    Ok(status.success())
}
