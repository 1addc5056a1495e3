//! `caisson build`: turns plugin sources into components.
//!
//! Two shapes of folder:
//!
//! * a plugin project (`caisson new`): one plugin, built into
//!   `DIR/build/NAME.wasm` with its `caisson.toml` as `DIR/build/NAME.toml`;
//! * a Caisson checkout: every plugin under `plugins/` and `examples/`,
//!   into `build/plugins/` (what `cargo xtask plugins` runs).
//!
//! Per language: Rust workflows build for `wasm32-unknown-unknown` and are
//! wrapped into a component here (`wit-component`); Rust activities build
//! for `wasm32-wasip2`; JavaScript with componentize-js (TypeScript and
//! JavaScript workflows on `caisson-workflow` are first transpiled by its
//! `tools/transpile.mjs`); Python with componentize-py; C with clang and wasi-libc for `wasm32-wasi`, wrapped
//! with the WASI preview1 reactor adapter. The Rust guest toolchain is
//! rustup's wasm targets, or Debian's Rust with `-Zbuild-std` where rustup
//! cannot fetch them (`CAISSON_GUEST_TOOLCHAIN=rustup|debian` forces one).

use crate::embedded;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

/// One plugin built: where its component is.
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin's name (crate or folder name).
    pub name: String,
    /// `OUT/NAME.wasm`.
    pub wasm: PathBuf,
}

/// True for a folder that is a Caisson checkout (builds every plugin).
pub fn is_repository(dir: &Path) -> bool {
    dir.join("plugins/rust/Cargo.toml").is_file() && dir.join("wit/workflow").is_dir() && dir.join("host/Cargo.toml").is_file()
}

/// Builds the plugin project in `dir` into `dir/build/`.
pub fn build_project(dir: &Path) -> Result<Built> {
    let out = dir.join("build");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if !dir.join("wit").is_dir() {
        bail!("{}: no wit/ folder: not a plugin project (make one with `caisson new KIND LANG NAME`)", dir.display());
    }
    let started = Instant::now();
    let built = if dir.join("Cargo.toml").is_file() {
        let plugin = rust_plugin(dir)?.with_context(|| {
            format!("{}: Cargo.toml has no [package.metadata.caisson] target (wasm32-unknown-unknown or wasm32-wasip2)", dir.display())
        })?;
        let target_dir = guest_target_dir(dir.join("target"), guest_toolchain(&[plugin.target.as_str()])?);
        build_rust_crates(dir, &[plugin], &out, &target_dir, &[])?.remove(0)
    } else if Script::Js.entries().iter().any(|e| dir.join(e).is_file()) {
        build_scripted(Script::Js, dir, &out, &[])?
    } else if dir.join("app.py").is_file() {
        build_scripted(Script::Python, dir, &out, &[])?
    } else if has_c_sources(dir) {
        build_c(dir, &out)?
    } else {
        bail!("{}: no Cargo.toml, index.js, index.ts, app.py or .c sources: nothing to build", dir.display());
    };
    eprintln!("built {} in {:.1}s", built.wasm.display(), started.elapsed().as_secs_f64());
    Ok(built)
}

/// Builds every plugin of the Caisson checkout at `root` (or only the
/// named ones) into `root/build/plugins`.
pub fn build_repository(root: &Path, only: &[String]) -> Result<Vec<Built>> {
    let out = root.join("build/plugins");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let started = Instant::now();
    let mut built: Vec<Built> = Vec::new();

    let rust: Vec<_> = workspace_plugins(root)?.into_iter().filter(|p| wanted(&p.name)).collect();
    if !rust.is_empty() {
        let mut targets: Vec<&str> = rust.iter().map(|p| p.target.as_str()).collect();
        targets.sort();
        targets.dedup();
        let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let target_dir = guest_target_dir(base, guest_toolchain(&targets)?);
        built.extend(build_rust_crates(&root.join("plugins/rust"), &rust, &out, &target_dir, &[])?);
    }
    // The JS helpers resolve by name from plugins/js; the Python helpers from plugins/python.
    let js_packages = [root.join("plugins/js")];
    for (script, folder) in [(Script::Js, "plugins/js"), (Script::Python, "plugins/python")] {
        let mut dirs = plugin_dirs(&root.join(folder), script.entries());
        dirs.extend(example_plugin_dirs(&root.join("examples"), script.entries()));
        for dir in dirs {
            let name = file_name(&dir);
            if built.iter().any(|b| b.name == name) {
                bail!("two plugins are named `{name}` (the second in {}): rename one folder", dir.display());
            }
            if wanted(&name) {
                let extra: Vec<PathBuf> = match script {
                    Script::Js => js_packages.to_vec(),
                    Script::Python => python_path(root, &dir),
                };
                built.push(build_scripted(script, &dir, &out, &extra)?);
            }
        }
    }
    for dir in subdirs(&root.join("plugins/c")) {
        if has_c_sources(&dir) && dir.join("wit").is_dir() && wanted(&file_name(&dir)) {
            built.push(build_c(&dir, &out)?);
        }
    }
    for name in only {
        if !built.iter().any(|b| &b.name == name) {
            bail!("no plugin named `{name}` under plugins/ or examples/");
        }
    }
    eprintln!("built {} plugin(s) into {} in {:.1}s", built.len(), out.display(), started.elapsed().as_secs_f64());
    Ok(built)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Sub-folders of `dir`, sorted; none when it does not exist.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

/// The plugin folders of `examples/`: `examples/SCENARIO/PLUGIN/` and,
/// for groups of scenarios (the Python SDK ports in `examples/python/`),
/// `examples/GROUP/SCENARIO/PLUGIN/`.
fn example_plugin_dirs(examples: &Path, entries: &[&str]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for scenario in subdirs(examples) {
        dirs.extend(plugin_dirs(&scenario, entries));
        for nested in subdirs(&scenario) {
            dirs.extend(plugin_dirs(&nested, entries));
        }
    }
    dirs
}

/// Where componentize-py finds a checkout's Python plugin's imports
/// besides its own folder: the `caisson` package (`plugins/python`) and,
/// for an example's plugin, the example's folder, so that its workflow
/// plugin and its activity plugin import one `workflow.py` and one
/// `activities.py` instead of two copies.
fn python_path(root: &Path, plugin: &Path) -> Vec<PathBuf> {
    let mut path = vec![root.join("plugins/python")];
    if let Some(scenario) = plugin.parent().filter(|p| p.starts_with(root.join("examples")))
        && scenario != root.join("examples")
    {
        path.push(scenario.to_path_buf());
    }
    path
}

/// Sub-folders of `dir` holding one of `entries` and a `wit/` folder.
fn plugin_dirs(dir: &Path, entries: &[&str]) -> Vec<PathBuf> {
    subdirs(dir).into_iter().filter(|p| entries.iter().any(|e| p.join(e).is_file()) && p.join("wit").is_dir()).collect()
}

fn has_c_sources(dir: &Path) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| e.path().extension().is_some_and(|x| x == "c"))
}

// ---------------------------------------------------------------- Rust

struct RustPlugin {
    name: String,
    dir: PathBuf,
    target: String,
    variants: Vec<Variant>,
}

#[derive(serde::Deserialize)]
struct CargoManifest {
    package: Package,
}
#[derive(serde::Deserialize)]
struct Package {
    name: String,
    metadata: Option<Metadata>,
}
#[derive(serde::Deserialize)]
struct Metadata {
    caisson: Option<CaissonMetadata>,
}
#[derive(serde::Deserialize)]
struct CaissonMetadata {
    target: String,
    /// Extra builds of the same crate with features on, under other names
    /// (e.g. a "v2" of a workflow, for versioning tests).
    #[serde(default)]
    variant: Vec<Variant>,
}
#[derive(serde::Deserialize, Clone)]
struct Variant {
    name: String,
    features: Vec<String>,
}
#[derive(serde::Deserialize)]
struct WorkspaceManifest {
    workspace: Workspace,
}
#[derive(serde::Deserialize)]
struct Workspace {
    members: Vec<String>,
}

/// The crate in `dir`, if it declares `[package.metadata.caisson]`.
fn rust_plugin(dir: &Path) -> Result<Option<RustPlugin>> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: CargoManifest = toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let Some(meta) = manifest.package.metadata.and_then(|m| m.caisson) else {
        return Ok(None);
    };
    if !matches!(meta.target.as_str(), "wasm32-unknown-unknown" | "wasm32-wasip2") {
        bail!(
            "{}: package.metadata.caisson.target = {:?}: use wasm32-unknown-unknown (workflows) or wasm32-wasip2 (activities)",
            path.display(),
            meta.target
        );
    }
    Ok(Some(RustPlugin { name: manifest.package.name, dir: dir.to_path_buf(), target: meta.target, variants: meta.variant }))
}

/// The members of the checkout's `plugins/rust` workspace that declare
/// `[package.metadata.caisson]` (the examples' crates are members too).
fn workspace_plugins(root: &Path) -> Result<Vec<RustPlugin>> {
    let ws_path = root.join("plugins/rust/Cargo.toml");
    let text = std::fs::read_to_string(&ws_path).with_context(|| format!("reading {}", ws_path.display()))?;
    let ws: WorkspaceManifest = toml::from_str(&text).with_context(|| format!("reading {}", ws_path.display()))?;
    let mut plugins: Vec<RustPlugin> = Vec::new();
    for member in &ws.workspace.members {
        // Crates without the metadata are guest libraries (caisson-guest).
        let Some(plugin) = rust_plugin(&root.join("plugins/rust").join(member))? else { continue };
        if plugins.iter().any(|p| p.name == plugin.name) {
            bail!("two Rust plugins are named `{}`", plugin.name);
        }
        plugins.push(plugin);
    }
    Ok(plugins)
}

/// Which Rust toolchain builds guests.
#[derive(Clone, Copy, PartialEq, Debug)]
enum GuestToolchain {
    /// rustup's prebuilt wasm targets.
    Rustup,
    /// Debian's `rustc-web` with std built from `rust-web-src`.
    Debian,
}

fn guest_toolchain(targets: &[&str]) -> Result<GuestToolchain> {
    match std::env::var("CAISSON_GUEST_TOOLCHAIN").as_deref() {
        Ok("rustup") => return Ok(GuestToolchain::Rustup),
        Ok("debian") => return Ok(GuestToolchain::Debian),
        Ok(other) if !other.is_empty() => bail!("CAISSON_GUEST_TOOLCHAIN={other}: expected `rustup` or `debian`"),
        _ => {}
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if targets.iter().all(|t| installed.lines().any(|l| l.trim() == *t)) {
        Ok(GuestToolchain::Rustup)
    } else if Path::new("/usr/bin/rustc").exists() {
        Ok(GuestToolchain::Debian)
    } else {
        bail!(
            "no Rust toolchain for {targets:?}: `rustup target add {}` (the setup step `./scripts/setup` of a Caisson checkout does it, \
             or installs Debian's rustc-web as a fallback)",
            targets.join(" ")
        )
    }
}

/// Guest builds keep their own target dir (`BASE/guests`), so switching
/// toolchains never rebuilds std for the other one.
/// `CAISSON_GUEST_TARGET_DIR` overrides it: cargo names path crates by
/// their path inside the workspace, so two checkouts sharing one target
/// folder overwrite each other's guest crates of the same name.
fn guest_target_dir(base: PathBuf, toolchain: GuestToolchain) -> PathBuf {
    if let Some(dir) = std::env::var_os("CAISSON_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or(base);
    base.join(match toolchain {
        GuestToolchain::Rustup => "guests",
        GuestToolchain::Debian => "guests-debian",
    })
}

/// Builds `plugins` with cargo from `workspace` (a workspace or a single
/// crate), wraps core modules into components, writes them to `out`.
fn build_rust_crates(workspace: &Path, plugins: &[RustPlugin], out: &Path, target_dir: &Path, _extra: &[PathBuf]) -> Result<Vec<Built>> {
    let mut targets: Vec<&str> = plugins.iter().map(|p| p.target.as_str()).collect();
    targets.sort();
    targets.dedup();
    let toolchain = guest_toolchain(&targets)?;
    let mut built = Vec::new();
    // Variants first: the plain build below leaves the default artifact.
    for p in plugins {
        for v in &p.variants {
            let mut cmd = cargo_build(workspace, &p.target, target_dir, toolchain)?;
            cmd.args(["-p", &p.name])
                .arg("--features")
                .arg(v.features.iter().map(|f| format!("{}/{f}", p.name)).collect::<Vec<_>>().join(","));
            eprintln!("building variant {} of {} (features {:?})", v.name, p.name, v.features);
            run(&mut cmd)?;
            let bytes = read(&artifact_path(target_dir, p))?;
            built.push(write_plugin(out, &v.name, &componentize(&p.name, bytes, None)?, &p.dir)?);
        }
    }
    for target in &targets {
        let mut cmd = cargo_build(workspace, target, target_dir, toolchain)?;
        for p in plugins.iter().filter(|p| p.target == *target) {
            cmd.args(["-p", &p.name]);
        }
        eprintln!("building Rust plugins for {target} ({toolchain:?} toolchain; the first build compiles dependencies, ~1 min)");
        run(&mut cmd)?;
    }
    for p in plugins {
        let bytes = read(&artifact_path(target_dir, p))?;
        built.push(write_plugin(out, &p.name, &componentize(&p.name, bytes, None)?, &p.dir)?);
    }
    Ok(built)
}

fn cargo_build(workspace: &Path, target: &str, target_dir: &Path, toolchain: GuestToolchain) -> Result<Command> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace).args(["build", "--release", "--target", target]).arg("--target-dir").arg(target_dir);
    if toolchain == GuestToolchain::Debian {
        debian_toolchain(&mut cmd, target)?;
    }
    Ok(cmd)
}

fn artifact_path(target_dir: &Path, p: &RustPlugin) -> PathBuf {
    target_dir.join(&p.target).join("release").join(format!("{}.wasm", p.name.replace('-', "_")))
}

/// The verified Debian recipe (shared/toolchain.md): Debian's rustc with
/// `-Zbuild-std`, linked by rustup's own `rust-lld` / `wasm-component-ld`.
fn debian_toolchain(cmd: &mut Command, target: &str) -> Result<()> {
    let sysroot = capture(Command::new("rustc").args(["--print", "sysroot"]))?;
    let host = capture(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV printed no host")?;
    let rbin = PathBuf::from(sysroot.trim()).join("lib/rustlib").join(host).join("bin");
    cmd.env("RUSTC", "/usr/bin/rustc").env("RUSTC_BOOTSTRAP", "1").arg("-Zbuild-std=std,panic_abort");
    match target {
        "wasm32-unknown-unknown" => {
            cmd.arg("--config").arg(format!("target.wasm32-unknown-unknown.linker='{}'", rbin.join("rust-lld").display()));
        }
        "wasm32-wasip2" => {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", rbin.join("gcc-ld").display()))
                .arg("--config")
                .arg(format!("target.wasm32-wasip2.linker='{}'", rbin.join("wasm-component-ld").display()))
                .arg("--config")
                .arg(r#"target.wasm32-wasip2.rustflags=["-Clink-self-contained=no","-L/usr/lib/wasm32-wasi"]"#);
        }
        other => bail!("the Debian guest toolchain has no recipe for {other}"),
    }
    Ok(())
}

/// A component as is; a core module wrapped into one (with the WASI
/// preview1 adapter when it imports `wasi_snapshot_preview1`).
fn componentize(name: &str, bytes: Vec<u8>, adapter: Option<&[u8]>) -> Result<Vec<u8>> {
    if is_component(&bytes) {
        return Ok(bytes);
    }
    let mut encoder = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .with_context(|| format!("{name}: reading the core module's component-type section"))?
        .validate(true);
    if let Some(adapter) = adapter {
        encoder =
            encoder.adapter("wasi_snapshot_preview1", adapter).with_context(|| format!("{name}: adding the WASI preview1 adapter"))?;
    }
    encoder.encode().with_context(|| format!("{name}: wrapping the core module into a component"))
}

/// True for a component (layer 1), false for a core module.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

// ---------------------------------------------------------- JS, Python

#[derive(Clone, Copy, PartialEq)]
enum Script {
    Js,
    Python,
}

impl Script {
    /// The files that make a folder a plugin of this language.
    fn entries(self) -> &'static [&'static str] {
        match self {
            Script::Js => &["index.js", "index.ts"],
            Script::Python => &["app.py"],
        }
    }
}

/// Builds a JS or Python plugin unless its output is newer than every
/// source. `packages` are extra folders where guest packages are found by
/// name (the checkout's `plugins/js`).
fn build_scripted(script: Script, dir: &Path, out: &Path, packages: &[PathBuf]) -> Result<Built> {
    // Absolute, so `caisson build .` names the plugin after its folder.
    let name = file_name(&std::path::absolute(dir)?);
    let wasm = out.join(format!("{name}.wasm"));
    let mut inputs = vec![dir.to_path_buf()];
    inputs.extend(packages.iter().cloned());
    let newest = newest_mtime(&inputs, out)?;
    if let Ok(meta) = std::fs::metadata(&wasm)
        && meta.modified()? >= newest
    {
        eprintln!("{name}: up to date");
        copy_manifest(out, &name, dir)?;
        return Ok(Built { name, wasm });
    }
    let stage = out.join(".stage").join(&name);
    let _ = std::fs::remove_dir_all(&stage);
    let wit = stage.join("wit");
    stage_wit(&dir.join("wit"), &wit)?;
    let world = world_name(&dir.join("wit"))?;
    let tmp = out.join(format!(".{name}.wasm.partial"));
    let tmp = std::path::absolute(&tmp).unwrap_or(tmp);
    let started = Instant::now();
    let mut cmd;
    match script {
        Script::Js => {
            let bin = componentize_js(dir, packages)?;
            let src = stage.join("src");
            let entry = if uses_dynamic_world(&dir.join("wit"))? {
                // An SDK-shaped workflow (caisson-workflow): transpile
                // TypeScript and JavaScript alike, then stage the result.
                let transpiled = stage.join("transpiled");
                transpile_workflow(dir, &transpiled, packages)?;
                stage_js(dir, &transpiled, &src, packages)?;
                "__caisson_entry.js"
            } else if dir.join("index.js").is_file() {
                stage_js(dir, dir, &src, packages)?;
                "index.js"
            } else {
                bail!(
                    "{}: index.ts is built for caisson-workflow plugins, whose world includes caisson:workflow/dynamic-workflows \
                     (`caisson new workflow typescript NAME` makes one); other JavaScript plugins are written in index.js",
                    dir.display()
                );
            };
            // componentize-js resolves relative imports only inside its
            // working directory: run it in the staged sources.
            cmd = Command::new(bin);
            cmd.current_dir(&src).arg(entry).arg("--wit").arg(std::path::absolute(&wit)?).args(["-n", &world]);
            cmd.args(["-d", "http", "fetch-event"]).arg("-o").arg(&tmp);
            eprintln!("{name}: componentizing {} with componentize-js (about 10-15 s)", dir.display());
        }
        Script::Python => {
            let bin = python_tool("componentize-py").context(
                "componentize-py not found: `pip install componentize-py` (the setup step `./scripts/setup` of a Caisson checkout installs it into ~/.cache/caisson/venv)",
            )?;
            cmd = Command::new(bin);
            cmd.current_dir(dir).arg("-d").arg(std::path::absolute(&wit)?).args(["-w", &world, "componentize", "app", "-p", "."]);
            for p in packages {
                cmd.arg("-p").arg(p);
            }
            cmd.arg("-o").arg(&tmp);
            eprintln!("{name}: componentizing {} with componentize-py (about 10-15 s)", dir.display());
        }
    }
    run(&mut cmd)?;
    std::fs::rename(&tmp, &wasm).with_context(|| format!("writing {}", wasm.display()))?;
    copy_manifest(out, &name, dir)?;
    let _ = std::fs::remove_dir_all(&stage);
    eprintln!(
        "{name}: {} ({:.1} MB) in {:.1}s",
        wasm.display(),
        std::fs::metadata(&wasm)?.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(Built { name, wasm })
}

/// True when the plugin's world includes `caisson:workflow/dynamic-workflows`:
/// its types are the exported functions of its module (caisson-workflow),
/// not WIT exports.
fn uses_dynamic_world(wit: &Path) -> Result<bool> {
    for e in std::fs::read_dir(wit).with_context(|| format!("reading {}", wit.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "wit")
            && std::fs::read_to_string(&p)?.lines().any(|l| l.trim_start().starts_with("include caisson:workflow/dynamic-workflows"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs caisson-workflow's `tools/transpile.mjs` on the plugin's sources
/// into `out`: TypeScript erased by the `typescript` package's
/// `transpileModule` (no type check), every `await` carrying the
/// cancellation scope, relative imports given their `.js`, and the
/// component's entry `__caisson_entry.js` generated.
fn transpile_workflow(dir: &Path, out: &Path, packages: &[PathBuf]) -> Result<()> {
    let library = find_package(dir, packages, "caisson-workflow").context(
        "caisson-workflow not found: a TypeScript/JavaScript workflow imports it; `caisson new workflow typescript NAME` vendors it \
         into the project (caisson-workflow/), a Caisson checkout has it in plugins/js/caisson-workflow",
    )?;
    let tool = library.join("tools/transpile.mjs");
    let typescript = node_tool(dir, packages, "typescript/lib/typescript.js").context(
        "the `typescript` package was not found: `npm install` in the project (its package.json lists it), or run the setup step \
         `./scripts/setup` of a Caisson checkout (npm ci in plugins/js)",
    )?;
    let node = which("node").context("node not found: install Node.js 20 or later (componentize-js needs it too)")?;
    let _ = std::fs::remove_dir_all(out);
    eprintln!("{}: transpiling with {}", file_name(dir), tool.display());
    run(Command::new(node).arg(&tool).arg("--typescript").arg(&typescript).arg(dir).arg(out))
}

/// A file of an npm package: under `node_modules/` of the project (or an
/// ancestor), of `packages`, or of the checkout this binary was built from.
fn node_tool(dir: &Path, packages: &[PathBuf], rel: &str) -> Option<PathBuf> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/js");
    dir.ancestors()
        .map(Path::to_path_buf)
        .chain(packages.iter().cloned())
        .chain(std::iter::once(checkout))
        .map(|d| d.join("node_modules").join(rel))
        .find(|p| p.is_file())
}

/// componentize-js: the project's `node_modules` (or an ancestor's), then
/// `packages`' `node_modules`, then PATH, then the checkout this binary
/// was built from.
fn componentize_js(dir: &Path, packages: &[PathBuf]) -> Result<PathBuf> {
    let rel = "node_modules/.bin/componentize-js";
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/js");
    let found = dir
        .ancestors()
        .map(|a| a.join(rel))
        .chain(packages.iter().map(|p| p.join(rel)))
        .chain(which("componentize-js"))
        .chain(std::iter::once(checkout.join(rel)))
        .find(|p| p.is_file());
    found.context(
        "componentize-js not found: `npm install` in the project (its package.json lists it), or run the setup step `./scripts/setup` \
         of a Caisson checkout (npm ci in plugins/js)",
    )
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// A Python tool from the setup's venv (`CAISSON_HOME/venv/bin`), else PATH.
fn python_tool(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CAISSON_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/caisson"));
    let venv = home.join("venv/bin").join(name);
    if venv.is_file() { Some(venv) } else { which(name) }
}

/// The plugin's `wit/` plus the embedded `caisson:*` packages in `deps/`
/// where the plugin does not vendor them.
fn stage_wit(wit: &Path, stage: &Path) -> Result<()> {
    copy_dir(wit, stage, &|p| p.extension().is_some_and(|x| x == "wit"))?;
    for package in ["workflow", "activity"] {
        if !stage.join("deps").join(format!("caisson-{package}")).is_dir() {
            for (rel, bytes) in embedded::tree(&format!("wit/{package}")) {
                let dest = stage.join("deps").join(format!("caisson-{package}")).join(rel);
                std::fs::create_dir_all(dest.parent().unwrap_or(stage))?;
                std::fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
            }
        }
    }
    Ok(())
}

/// Copies the `.js` files under `sources` (the plugin folder `dir`, or its
/// transpiled copy) to `stage`, with each imported package (a bare
/// specifier like `caisson-guest` or `caisson-guest/workflow.js`, looked up
/// from `dir`) copied into `stage/node_modules/NAME` and the specifier
/// rewritten to a relative path: componentize-js resolves no package names.
fn stage_js(dir: &Path, sources: &Path, stage: &Path, packages: &[PathBuf]) -> Result<()> {
    let skip = |p: &Path| {
        let n = file_name(p);
        n == "node_modules" || n == "build" || n == "wit" || n.starts_with('.')
    };
    let mut files = Vec::new();
    collect_files(sources, &skip, &mut files)?;
    let mut copied: Vec<String> = Vec::new();
    for file in files {
        let rel = file.strip_prefix(sources).unwrap_or(&file).to_path_buf();
        let dest = stage.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap_or(stage))?;
        if file.extension().is_some_and(|x| x == "js" || x == "mjs") {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let depth = rel.components().count() - 1;
            let up = if depth == 0 { "./".to_owned() } else { "../".repeat(depth) };
            let rewritten = rewrite_specifiers(&text, |spec| {
                let (pkg, sub) = split_specifier(spec)?;
                let folder = find_package(dir, packages, pkg)?;
                let sub = match sub {
                    Some(s) => s.to_owned(),
                    None => package_main(&folder),
                };
                if !copied.iter().any(|c| c == pkg) {
                    copied.push(pkg.to_owned());
                }
                Some(format!("{up}node_modules/{pkg}/{sub}"))
            });
            std::fs::write(&dest, rewritten).with_context(|| format!("writing {}", dest.display()))?;
        } else {
            std::fs::copy(&file, &dest).with_context(|| format!("copying {}", file.display()))?;
        }
    }
    for pkg in copied {
        let folder = find_package(dir, packages, &pkg).context("package vanished while staging")?;
        copy_dir(&folder, &stage.join("node_modules").join(&pkg), &|p| !p.ends_with("node_modules"))?;
    }
    Ok(())
}

/// `name` or `name/sub/path.js` (scoped `@a/b` too); `None` for relative,
/// absolute and WIT (`ns:pkg/...`) specifiers.
fn split_specifier(spec: &str) -> Option<(&str, Option<&str>)> {
    if spec.starts_with('.') || spec.starts_with('/') || spec.contains(':') {
        return None;
    }
    let cut = if spec.starts_with('@') { spec.match_indices('/').nth(1).map(|(i, _)| i) } else { spec.find('/') };
    Some(match cut {
        Some(i) => (&spec[..i], Some(&spec[i + 1..])),
        None => (spec, None),
    })
}

/// The folder of package `name`: `node_modules/NAME` in the project or an
/// ancestor, or a folder `NAME` (with a package.json) in the project or in
/// one of `packages`.
fn find_package(dir: &Path, packages: &[PathBuf], name: &str) -> Option<PathBuf> {
    dir.ancestors()
        .map(|a| a.join("node_modules").join(name))
        .chain(std::iter::once(dir.join(name)))
        .chain(packages.iter().map(|p| p.join(name)))
        .find(|p| p.join("package.json").is_file())
}

/// A package's entry file: package.json `main`, else `index.js`.
fn package_main(folder: &Path) -> String {
    std::fs::read_to_string(folder.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("main").and_then(|m| m.as_str()).map(|m| m.trim_start_matches("./").to_owned()))
        .unwrap_or_else(|| "index.js".to_owned())
}

/// Rewrites the module specifiers of `import ... from 'x'`, `export ...
/// from 'x'` and `import 'x'` for which `map` returns a replacement.
fn rewrite_specifiers(text: &str, mut map: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let is_import = trimmed.starts_with("import ")
            || trimmed.starts_with("import'")
            || trimmed.starts_with("import\"")
            || trimmed.starts_with("export ")
            || trimmed.starts_with("} from ")
            || trimmed.starts_with("}from");
        let replaced = is_import
            .then(|| {
                let quote_at = line.rfind(['\'', '"'])?;
                let quote = line[quote_at..].chars().next()?;
                let open = line[..quote_at].rfind(quote)?;
                let spec = &line[open + 1..quote_at];
                let new = map(spec)?;
                Some(format!("{}{new}{}", &line[..open + 1], &line[quote_at..]))
            })
            .flatten();
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    out
}

/// The one `world NAME` declared in a plugin's own WIT files.
fn world_name(wit: &Path) -> Result<String> {
    let mut worlds = Vec::new();
    for e in std::fs::read_dir(wit).with_context(|| format!("reading {}", wit.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "wit") {
            for line in std::fs::read_to_string(&p)?.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("world ") {
                    worlds.push(rest.trim_end_matches(['{', ' ']).trim().to_owned());
                }
            }
        }
    }
    match worlds.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{}: no `world` declared", wit.display()),
        many => bail!("{}: declare exactly one world, found {many:?}", wit.display()),
    }
}

// ------------------------------------------------------------------- C

/// The clang that builds C guests: the newest Debian `clang-NN` with the
/// wasm32 runtime, or `CAISSON_CLANG`.
fn clang() -> Result<PathBuf> {
    if let Some(c) = std::env::var_os("CAISSON_CLANG") {
        return Ok(PathBuf::from(c));
    }
    ["clang-22", "clang-19", "clang"].iter().find_map(|c| which(c)).context(
        "clang not found: `apt-get install clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc` (the setup step `./scripts/setup` of a Caisson checkout does it)",
    )
}

/// Builds a C activity: `wit-bindgen c` generates the bindings of its world
/// (into `build/.stage/NAME/`), clang compiles every `.c` for wasm32-wasi as
/// a reactor, and the core module is wrapped with the preview1 adapter.
fn build_c(dir: &Path, out: &Path) -> Result<Built> {
    let name = file_name(&std::path::absolute(dir)?);
    let started = Instant::now();
    let stage = out.join(".stage").join(&name);
    let _ = std::fs::remove_dir_all(&stage);
    let wit = stage.join("wit");
    stage_wit(&dir.join("wit"), &wit)?;
    let world = world_name(&dir.join("wit"))?;
    let gen_dir = stage.join("gen");
    std::fs::create_dir_all(&gen_dir)?;
    let bindgen = which("wit-bindgen")
        .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/wit-bindgen")).filter(|p| p.is_file()))
        .context(
            "wit-bindgen not found: `cargo install wit-bindgen-cli --version 0.61.1 --locked` (the setup step `./scripts/setup` does it)",
        )?;
    run(Command::new(bindgen).arg("c").arg(&wit).args(["--world", &world]).arg("--out-dir").arg(&gen_dir))?;
    let mut sources: Vec<PathBuf> = Vec::new();
    for d in [dir, gen_dir.as_path()] {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "c") {
                sources.push(p);
            }
        }
    }
    for e in std::fs::read_dir(&gen_dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "o") {
            sources.push(p);
        }
    }
    let module = stage.join(format!("{name}.core.wasm"));
    let mut cmd = Command::new(clang()?);
    cmd.args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-fuse-ld=lld", "--sysroot=/usr"])
        .arg("-I")
        .arg(&gen_dir)
        .arg("-I")
        .arg(dir)
        .args(&sources)
        .arg("-o")
        .arg(&module);
    eprintln!("{name}: compiling {} C file(s) with {}", sources.len(), cmd.get_program().to_string_lossy());
    run(&mut cmd)?;
    let bytes = read(&module)?;
    let component = componentize(&name, bytes, Some(wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER))?;
    let built = write_plugin(out, &name, &component, dir)?;
    let _ = std::fs::remove_dir_all(&stage);
    eprintln!("{name}: built in {:.1}s", started.elapsed().as_secs_f64());
    Ok(built)
}

// --------------------------------------------------------------- files

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn collect_files(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if skip(&p) {
            continue;
        }
        if p.is_dir() {
            collect_files(&p, skip, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            if !file_name(&e.path()).starts_with('.') && file_name(&e.path()) != "node_modules" {
                copy_dir(&e.path(), &dest, keep)?;
            }
        } else if keep(&e.path()) {
            std::fs::copy(e.path(), &dest).with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// The newest modification time under `paths`, skipping `node_modules`,
/// `__pycache__` and the output folder.
fn newest_mtime(paths: &[PathBuf], out: &Path) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            let n = file_name(&p);
            if n == "node_modules" || n == "__pycache__" || n == "build" || p == out {
                continue;
            }
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        } else {
            newest = newest.max(meta.modified()?);
        }
    }
    Ok(newest)
}

fn write_plugin(out: &Path, name: &str, bytes: &[u8], src: &Path) -> Result<Built> {
    let wasm = out.join(format!("{name}.wasm"));
    let tmp = out.join(format!(".{name}.wasm.partial"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &wasm).with_context(|| format!("writing {}", wasm.display()))?;
    copy_manifest(out, name, src)?;
    eprintln!("{name}: {} ({} KB)", wasm.display(), bytes.len() / 1024);
    Ok(Built { name: name.to_owned(), wasm })
}

/// `src/caisson.toml` → `out/NAME.toml` (the drop-in layout the worker reads).
fn copy_manifest(out: &Path, name: &str, src: &Path) -> Result<()> {
    let manifest = src.join("caisson.toml");
    let dest = out.join(format!("{name}.toml"));
    if manifest.exists() {
        std::fs::copy(&manifest, &dest).with_context(|| format!("copying {}", manifest.display()))?;
        create_build_dirs(out, &manifest)?;
    } else {
        let _ = std::fs::remove_file(&dest);
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct Grants {
    #[serde(default)]
    dirs: Vec<DirGrant>,
}
#[derive(serde::Deserialize)]
struct DirGrant {
    host: PathBuf,
}

/// Creates the granted directories of a plugin manifest that resolve
/// (relative to `out`, where the manifest lands) inside `out`'s parent
/// (`build/`): the examples keep their runtime state there, and the worker
/// refuses a grant of a directory that does not exist.
fn create_build_dirs(out: &Path, manifest: &Path) -> Result<()> {
    let text = std::fs::read_to_string(manifest)?;
    let Ok(grants) = toml::from_str::<Grants>(&text) else {
        return Ok(()); // the worker reports a malformed manifest
    };
    let build = out.parent().unwrap_or(out);
    for grant in grants.dirs {
        if grant.host.is_absolute() {
            continue;
        }
        let resolved = normalize(&out.join(&grant.host));
        if resolved.starts_with(build) && !resolved.exists() {
            std::fs::create_dir_all(&resolved).with_context(|| format!("creating {}", resolved.display()))?;
        }
    }
    Ok(())
}

/// Removes `.` and `..` components without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed with {status}", cmd.get_program());
    }
    Ok(())
}

fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_specifiers_are_rewritten_and_others_kept() {
        let src = "import { a } from 'caisson-guest';\nimport x from 'caisson:workflow/context@0.1.0';\nimport { b } from './b.js';\n";
        let out = rewrite_specifiers(src, |s| split_specifier(s).map(|(p, _)| format!("./node_modules/{p}/workflow.js")));
        assert_eq!(
            out,
            "import { a } from './node_modules/caisson-guest/workflow.js';\nimport x from 'caisson:workflow/context@0.1.0';\nimport { b } from './b.js';\n"
        );
    }

    #[test]
    fn specifiers_split_into_package_and_path() {
        assert_eq!(split_specifier("caisson-guest"), Some(("caisson-guest", None)));
        assert_eq!(split_specifier("caisson-guest/workflow.js"), Some(("caisson-guest", Some("workflow.js"))));
        assert_eq!(split_specifier("@scope/pkg/x.js"), Some(("@scope/pkg", Some("x.js"))));
        assert_eq!(split_specifier("./local.js"), None);
        assert_eq!(split_specifier("caisson:activity/context@0.1.0"), None);
    }
}
