//! Builds every plugin under `plugins/` from source into `build/plugins/`.
//!
//! ```text
//! cargo xtask plugins [NAME...]     build all plugins (or only the named ones)
//! ```
//!
//! * Rust plugins (the members of the `plugins/rust` workspace, which also
//!   lists the example crates under `examples/`) build with cargo for the target named in
//!   `[package.metadata.caisson] target`: workflows for
//!   `wasm32-unknown-unknown` (then wrapped into a component here, with
//!   `wit-component`), activities for `wasm32-wasip2`. The guest toolchain is
//!   rustup's wasm targets, or Debian's Rust with `-Zbuild-std` where rustup
//!   cannot fetch them; `CAISSON_GUEST_TOOLCHAIN=rustup|debian` forces one.
//! * JavaScript plugins (`plugins/js/*/index.js`, `examples/*/*/index.js`)
//!   build with componentize-js.
//! * Python plugins (`plugins/python/*/app.py`, `examples/*/*/app.py`) build
//!   with componentize-py.
//!
//! Each plugin's `wit/` folder holds its world; the `caisson:*` packages from
//! the top-level `wit/` are added as dependencies. A `caisson.toml` beside a
//! plugin's sources is copied next to its `.wasm` as `NAME.toml`: the
//! plugin's grants, in the drop-in folder layout the worker reads. Granted
//! directories that resolve inside `build/` are created (they hold the
//! examples' runtime state); others must exist.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugins") => build_plugins(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask plugins [NAME...]");
            std::process::exit(2);
        }
    }
}

/// The repository root: the nearest folder, from the current one up, that
/// holds `plugins/xtask`. Found at run time, not compile time, so a shared
/// target folder serving two checkouts never builds the wrong one.
fn repo_root() -> PathBuf {
    let start = std::env::current_dir().expect("current directory");
    start
        .ancestors()
        .find(|dir| dir.join("plugins/xtask/Cargo.toml").is_file())
        .unwrap_or_else(|| panic!("run `cargo xtask` inside the Caisson repository (not found above {})", start.display()))
        .to_owned()
}

fn out_dir(root: &Path) -> PathBuf {
    root.join("build/plugins")
}

fn build_plugins(only: &[String]) -> Result<()> {
    let root = repo_root();
    let out = out_dir(&root);
    std::fs::create_dir_all(&out)?;
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let started = Instant::now();
    let mut built = Vec::new();

    let rust = rust_plugins(&root)?;
    let rust: Vec<_> = rust.into_iter().filter(|p| wanted(&p.name)).collect();
    if !rust.is_empty() {
        build_rust(&root, &rust, &out)?;
        built.extend(rust.iter().map(|p| p.name.clone()));
    }
    for lang in [Lang::Js, Lang::Python] {
        for dir in scripted_plugin_dirs(&root, lang)? {
            let name = file_name(&dir);
            if built.contains(&name) {
                bail!("two plugins are named `{name}` (the second in {}): rename one folder", dir.display());
            }
            if wanted(&name) {
                build_scripted(&root, lang, &dir, &out)?;
                built.push(name);
            }
        }
    }
    for name in only {
        if !built.contains(name) {
            bail!("no plugin named `{name}` under plugins/ or examples/");
        }
    }
    eprintln!("built {} plugin(s) into {} in {:.1}s", built.len(), out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Sub-folders of `dir` that hold `entry`, sorted.
fn plugin_dirs(dir: &Path, entry: &str) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e?.path();
            if p.join(entry).is_file() && p.join("wit").is_dir() {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// JS or Python plugin folders: `plugins/js/*` (or `plugins/python/*`),
/// then the examples' `examples/*/*`.
fn scripted_plugin_dirs(root: &Path, lang: Lang) -> Result<Vec<PathBuf>> {
    let mut dirs = plugin_dirs(&root.join(lang.folder()), lang.entry())?;
    for example in example_dirs(root)? {
        dirs.extend(plugin_dirs(&example, lang.entry())?);
    }
    Ok(dirs)
}

/// `examples/*`, sorted.
fn example_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("examples")) {
        for e in rd {
            let p = e?.path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

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

/// The members of the `plugins/rust` workspace that declare
/// `[package.metadata.caisson]`. Members may live outside `plugins/rust`
/// (the examples' crates do, with `package.workspace` pointing back).
fn rust_plugins(root: &Path) -> Result<Vec<RustPlugin>> {
    let ws_path = root.join("plugins/rust/Cargo.toml");
    let ws: WorkspaceManifest =
        toml::from_str(&std::fs::read_to_string(&ws_path)?).with_context(|| format!("reading {}", ws_path.display()))?;
    let mut plugins = Vec::new();
    for member in &ws.workspace.members {
        let dir = root.join("plugins/rust").join(member);
        let manifest_path = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path)?;
        let manifest: CargoManifest = toml::from_str(&text).with_context(|| format!("reading {}", manifest_path.display()))?;
        // Crates without `[package.metadata.caisson]` are guest libraries
        // (like caisson-guest), built as dependencies of the plugins.
        let Some(meta) = manifest.package.metadata.and_then(|m| m.caisson) else {
            continue;
        };
        if plugins.iter().any(|p: &RustPlugin| p.name == manifest.package.name) {
            bail!("two Rust plugins are named `{}`", manifest.package.name);
        }
        plugins.push(RustPlugin { name: manifest.package.name, dir, target: meta.target, variants: meta.variant });
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
            "no Rust toolchain for {targets:?}: run `./scripts/setup` (it adds the targets with rustup, or installs Debian's rustc-web as a fallback)"
        )
    }
}

fn build_rust(root: &Path, plugins: &[RustPlugin], out: &Path) -> Result<()> {
    let mut targets: Vec<&str> = plugins.iter().map(|p| p.target.as_str()).collect();
    targets.sort();
    targets.dedup();
    let toolchain = guest_toolchain(&targets)?;
    let target_dir = guest_target_dir(root, toolchain);
    // Variants first: the plain build below leaves the default artifact.
    for p in plugins {
        for v in &p.variants {
            let mut cmd = Command::new("cargo");
            cmd.current_dir(root.join("plugins/rust"))
                .args(["build", "--release", "--target", &p.target, "-p", &p.name])
                .arg("--features")
                .arg(v.features.iter().map(|f| format!("{}/{f}", p.name)).collect::<Vec<_>>().join(","))
                .arg("--target-dir")
                .arg(&target_dir);
            if toolchain == GuestToolchain::Debian {
                debian_toolchain(&mut cmd, &p.target)?;
            }
            eprintln!("building variant {} of {} (features {:?})", v.name, p.name, v.features);
            run(&mut cmd)?;
            let bytes = std::fs::read(artifact_path(&target_dir, p))?;
            write_plugin(out, &v.name, &componentize(&p.name, bytes)?, &p.dir)?;
        }
    }
    for target in &targets {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root.join("plugins/rust")).args(["build", "--release", "--target", target]).arg("--target-dir").arg(&target_dir);
        for p in plugins.iter().filter(|p| p.target == *target) {
            cmd.args(["-p", &p.name]);
        }
        if toolchain == GuestToolchain::Debian {
            debian_toolchain(&mut cmd, target)?;
        }
        eprintln!("building Rust plugins for {target} ({toolchain:?} toolchain)");
        run(&mut cmd)?;
    }
    for p in plugins {
        let artifact = artifact_path(&target_dir, p);
        let bytes = std::fs::read(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
        write_plugin(out, &p.name, &componentize(&p.name, bytes)?, &p.dir)?;
    }
    Ok(())
}

fn artifact_path(target_dir: &Path, p: &RustPlugin) -> PathBuf {
    target_dir.join(&p.target).join("release").join(format!("{}.wasm", p.name.replace('-', "_")))
}

/// A component as is; a core module wrapped into one.
fn componentize(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if wasmparser_is_component(&bytes) {
        return Ok(bytes);
    }
    wit_component::ComponentEncoder::default()
        .module(&bytes)
        .with_context(|| format!("{name}: reading the core module's component-type section"))?
        .validate(true)
        .encode()
        .with_context(|| format!("{name}: wrapping the core module into a component"))
}

/// True for a component (layer 1), false for a core module.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// Guest builds keep their own target dir, beside the host's, so switching
/// toolchains never rebuilds std for the other one.
fn guest_target_dir(root: &Path, toolchain: GuestToolchain) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    base.join(match toolchain {
        GuestToolchain::Rustup => "guests",
        GuestToolchain::Debian => "guests-debian",
    })
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

#[derive(Clone, Copy)]
enum Lang {
    Js,
    Python,
}

impl Lang {
    fn folder(self) -> &'static str {
        match self {
            Lang::Js => "plugins/js",
            Lang::Python => "plugins/python",
        }
    }
    fn entry(self) -> &'static str {
        match self {
            Lang::Js => "index.js",
            Lang::Python => "app.py",
        }
    }
}

/// Builds a JS or Python plugin, unless its output is newer than every source.
fn build_scripted(root: &Path, lang: Lang, dir: &Path, out: &Path) -> Result<()> {
    let name = file_name(dir);
    let wasm = out.join(format!("{name}.wasm"));
    let mut inputs = vec![dir.to_path_buf(), root.join("wit")];
    if let Lang::Js = lang {
        // The JS guest helpers, imported by relative path.
        inputs.push(root.join("plugins/js/caisson-guest"));
    }
    let newest_input = newest_mtime(&inputs.into_iter().filter(|p| p.exists()).collect::<Vec<_>>())?;
    if let Ok(meta) = std::fs::metadata(&wasm)
        && meta.modified()? >= newest_input
    {
        eprintln!("{name}: up to date");
        copy_manifest(out, &name, dir)?;
        return Ok(());
    }
    let stage = root.join("build/wit").join(&name);
    stage_wit(root, dir, &stage)?;
    let world = world_name(&dir.join("wit"))?;
    let tmp = out.join(format!(".{name}.wasm.partial"));
    let started = Instant::now();
    let mut cmd;
    match lang {
        Lang::Js => {
            let bin = root.join("plugins/js/node_modules/.bin/componentize-js");
            if !bin.exists() {
                bail!("componentize-js is not installed: run ./scripts/setup");
            }
            // Run from the repository root: componentize-js resolves
            // relative imports only inside its working directory, and a
            // plugin may import the shared helpers in plugins/js/caisson-guest.
            cmd = Command::new(bin);
            cmd.current_dir(root)
                .arg(dir.strip_prefix(root).unwrap_or(dir).join("index.js"))
                .arg("--wit")
                .arg(&stage)
                .args(["-n", &world])
                .args(["-d", "http", "fetch-event"])
                .arg("-o")
                .arg(&tmp);
        }
        Lang::Python => {
            cmd = Command::new(python_tool("componentize-py"));
            cmd.current_dir(dir).arg("-d").arg(&stage).args(["-w", &world, "componentize", "app", "-p", "."]).arg("-o").arg(&tmp);
        }
    }
    eprintln!("{name}: componentizing {}", dir.strip_prefix(root).unwrap_or(dir).display());
    run(&mut cmd)?;
    std::fs::rename(&tmp, &wasm)?;
    copy_manifest(out, &name, dir)?;
    eprintln!(
        "{name}: {} ({:.1} MB) in {:.1}s",
        wasm.display(),
        std::fs::metadata(&wasm)?.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// componentize-py from the project's tool venv if setup made one, else PATH.
fn python_tool(name: &str) -> PathBuf {
    let venv = caisson_home().join("venv/bin").join(name);
    if venv.exists() { venv } else { PathBuf::from(name) }
}

fn caisson_home() -> PathBuf {
    std::env::var_os("CAISSON_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/caisson"))
}

/// A plugin's own `wit/` plus the `caisson:*` packages as `deps/`.
fn stage_wit(root: &Path, plugin: &Path, stage: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(stage);
    copy_dir(&plugin.join("wit"), stage)?;
    for pkg in ["workflow", "activity"] {
        copy_dir(&root.join("wit").join(pkg), &stage.join("deps").join(format!("caisson-{pkg}")))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if e.path().extension().is_some_and(|x| x == "wit") {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// The one `world NAME` declared in a plugin's own WIT files.
fn world_name(wit: &Path) -> Result<String> {
    let mut worlds = Vec::new();
    for e in std::fs::read_dir(wit)? {
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

fn newest_mtime(paths: &[PathBuf]) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p)?;
        if meta.is_dir() {
            if file_name(&p) == "node_modules" || file_name(&p) == "__pycache__" {
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

fn write_plugin(out: &Path, name: &str, bytes: &[u8], src: &Path) -> Result<()> {
    let wasm = out.join(format!("{name}.wasm"));
    let tmp = out.join(format!(".{name}.wasm.partial"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &wasm)?;
    copy_manifest(out, name, src)?;
    eprintln!("{name}: {} ({} KB)", wasm.display(), bytes.len() / 1024);
    Ok(())
}

fn copy_manifest(out: &Path, name: &str, src: &Path) -> Result<()> {
    let manifest = src.join("caisson.toml");
    let dest = out.join(format!("{name}.toml"));
    if manifest.exists() {
        std::fs::copy(&manifest, &dest)?;
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
/// (relative to `out`, where the manifest lands) inside `build/`: the
/// examples keep their runtime state there, and the worker refuses a grant
/// of a directory that does not exist.
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
