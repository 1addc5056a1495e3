//! `caisson new` and `caisson wit`: a plugin project in any folder.
//!
//! A new project carries everything it builds from: its WIT world, the
//! `caisson:*` packages in `wit/deps/`, and the guest library of its
//! language (vendored, since it is on no public registry). All of it is
//! embedded in this binary (see [`crate::embedded`]), so the project points
//! back at no Caisson checkout and a WIT bump reaches new projects with no
//! edit here.

use crate::embedded;
use anyhow::{Context, Result, bail};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What a plugin project holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Workflow types.
    Workflow,
    /// Activity types.
    Activity,
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "workflow" => Ok(Kind::Workflow),
            "activity" => Ok(Kind::Activity),
            other => Err(format!("unknown plugin kind `{other}`: expected `workflow` or `activity`")),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Workflow => "workflow",
            Kind::Activity => "activity",
        })
    }
}

/// The language of a plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust (cargo).
    Rust,
    /// JavaScript (componentize-js).
    JavaScript,
    /// TypeScript workflows on caisson-workflow (the `@temporalio/workflow`
    /// API), transpiled by the build, then componentize-js.
    TypeScript,
    /// Python (componentize-py).
    Python,
    /// C (clang, wasi-libc, wit-bindgen).
    C,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rust" | "rs" => Ok(Lang::Rust),
            "javascript" | "js" => Ok(Lang::JavaScript),
            "typescript" | "ts" => Ok(Lang::TypeScript),
            "python" | "py" => Ok(Lang::Python),
            "c" => Ok(Lang::C),
            other => Err(format!("unknown language `{other}`: expected rust, javascript, typescript, python or c")),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Python => "python",
            Lang::C => "c",
        })
    }
}

/// A plugin name: a WIT identifier (lowercase words joined by `-`), since
/// it names the world and the example type.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.split('-').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase()) && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!("plugin name `{name}`: use lowercase words joined by `-`, each starting with a letter (e.g. `order-saga`)");
    }
    Ok(())
}

/// Writes a new plugin project for `kind` in `lang` named `name` into
/// `dir` (default `./NAME`), which must not exist or be empty. Returns the
/// folder.
pub fn new_project(kind: Kind, lang: Lang, name: &str, dir: Option<&Path>) -> Result<PathBuf> {
    check_name(name)?;
    let template = match (kind, lang) {
        (Kind::Activity, Lang::TypeScript) => bail!(
            "TypeScript activities are not available yet: write the activity in JavaScript (`caisson new activity javascript {name}`), \
             Rust, Python or C; TypeScript is for workflows (`caisson new workflow typescript {name}`)"
        ),
        (Kind::Workflow, Lang::C) => bail!(
            "C workflows are not supported: write the workflow in Rust, TypeScript, JavaScript or Python (`caisson new workflow rust {name}`) \
             and its activities in C (`caisson new activity c {name}`)"
        ),
        _ => format!("{lang}-{kind}"),
    };
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} already exists and is not empty: pick another --dir", dir.display());
    }
    let vars = Vars::new(name)?;
    write_tree(&format!("templates/{template}"), &dir, &vars)?;
    let manifest = match (kind, lang) {
        (Kind::Workflow, Lang::JavaScript | Lang::TypeScript) => "templates/common/workflow-virtual.toml",
        (Kind::Workflow, Lang::Python) => "templates/common/workflow-virtual-python.toml",
        (Kind::Workflow, _) => "templates/common/workflow.toml",
        (Kind::Activity, _) => "templates/common/activity.toml",
    };
    write_file(&dir.join("caisson.toml"), &vars.apply(embedded_text(manifest)?))?;
    write_wit(&dir.join("wit/deps"))?;
    match lang {
        Lang::Rust => {
            write_tree("guest/rust", &dir.join("vendor/caisson-guest"), &Vars::none())?;
            write_file(&dir.join("Cargo.lock"), embedded_text("lock/rust/Cargo.lock")?)?;
            write_file(&dir.join(".gitignore"), "/target\n/build\n")?;
        }
        Lang::JavaScript => {
            if kind == Kind::Workflow {
                write_tree("guest/js", &dir.join("caisson-guest"), &Vars::none())?;
            }
            write_file(&dir.join("package.json"), &package_json(name))?;
            write_file(&dir.join(".gitignore"), "/build\nnode_modules/\n")?;
        }
        Lang::TypeScript => {
            // package.json and tsconfig.json come with the template.
            write_tree("guest/js-workflow", &dir.join("caisson-workflow"), &Vars::none())?;
            write_file(&dir.join(".gitignore"), "/build\nnode_modules/\n")?;
        }
        Lang::Python => {
            write_tree("guest/python-sdk", &dir.join("caisson"), &Vars::none())?;
            write_file(&dir.join(".gitignore"), "/build\n__pycache__/\n")?;
        }
        Lang::C => {
            write_file(&dir.join(".gitignore"), "/build\n")?;
        }
    }
    write_file(&dir.join("README.md"), &readme(kind, lang, name, &dir))?;
    Ok(dir)
}

/// Writes the host's WIT packages into `dir` as `caisson-workflow/`,
/// `caisson-activity/` and `caisson-codec/` (the `wit/deps` layout WIT
/// tools read).
pub fn write_wit(dir: &Path) -> Result<()> {
    let mut wrote = false;
    for (path, bytes) in embedded::tree("wit") {
        let Some((package, file)) = path.split_once('/') else { continue };
        if !file.ends_with(".wit") {
            continue;
        }
        let dest = dir.join(format!("caisson-{package}")).join(file);
        write_bytes(&dest, bytes)?;
        wrote = true;
    }
    if !wrote {
        bail!("this caisson binary embeds no WIT packages: rebuild it from a checkout with a wit/ folder");
    }
    Ok(())
}

/// Template variables: `{{name}}` (kebab-case), `{{snake}}`, `{{camel}}`, `{{pascal}}`,
/// and the WIT package versions.
struct Vars(Vec<(&'static str, String)>);

impl Vars {
    fn new(name: &str) -> Result<Vars> {
        let version = |pkg: &str| embedded::wit_version(pkg).with_context(|| format!("the embedded caisson:{pkg} WIT has no version"));
        let camel = camel_case(name);
        let pascal = name.split('-').filter(|w| !w.is_empty()).map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect::<String>();
        Ok(Vars(vec![
            ("{{name}}", name.to_owned()),
            ("{{pascal}}", pascal),
            ("{{snake}}", name.replace('-', "_")),
            ("{{camel}}", camel),
            ("{{workflow_version}}", version("workflow")?),
            ("{{activity_version}}", version("activity")?),
        ]))
    }

    fn none() -> Vars {
        Vars(Vec::new())
    }

    fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |t, (k, v)| t.replace(k, v))
    }
}

/// `order-saga` -> `orderSaga`: the JavaScript spelling of a plugin name
/// (a TypeScript workflow type is its function's name).
fn camel_case(name: &str) -> String {
    name.split('-')
        .enumerate()
        .map(|(i, w)| if i == 0 || w.is_empty() { w.to_owned() } else { w[..1].to_ascii_uppercase() + &w[1..] })
        .collect()
}

fn embedded_text(path: &str) -> Result<&'static str> {
    let bytes = embedded::file(path).with_context(|| format!("{path} is not embedded in this caisson binary"))?;
    std::str::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))
}

/// Writes every embedded file under `prefix` into `dir`, filling in `vars`.
fn write_tree(prefix: &str, dir: &Path, vars: &Vars) -> Result<()> {
    let mut wrote = false;
    for (rel, bytes) in embedded::tree(prefix) {
        let dest = dir.join(rel);
        match std::str::from_utf8(bytes) {
            Ok(text) => write_file(&dest, &vars.apply(text))?,
            Err(_) => write_bytes(&dest, bytes)?,
        }
        wrote = true;
    }
    if !wrote {
        bail!("{prefix} is not embedded in this caisson binary");
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn package_json(name: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "private": true,
  "type": "module",
  "scripts": {{ "test": "node --test" }},
  "//": "`caisson build` uses componentize-js from ./node_modules (`npm install`) or from the Caisson checkout's setup",
  "devDependencies": {{ "@bytecodealliance/componentize-js": "0.23.0" }}
}}
"#
    )
}

/// The project's README: what is where, and the next three commands.
fn readme(kind: Kind, lang: Lang, name: &str, dir: &Path) -> String {
    let sources = match (lang, kind) {
        (Lang::Rust, _) => "`src/lib.rs`",
        (Lang::JavaScript, _) => "`index.js`",
        (Lang::TypeScript, _) => "`index.ts`",
        (Lang::Python, Kind::Workflow) => "`workflows.py` (made a component by `app.py`)",
        (Lang::Python, Kind::Activity) => "`activities.py` (made a component by `app.py`)",
        (Lang::C, _) => "`activity.c`",
    };
    let unit_test = match lang {
        Lang::Rust => "cargo test",
        Lang::JavaScript => "node --test",
        Lang::TypeScript => "npm install && npm test",
        Lang::Python => "python3 -m unittest",
        Lang::C => "caisson check build/NAME.wasm",
    }
    .replace("NAME", name);
    let vendored = match (lang, kind) {
        (Lang::Rust, _) => {
            "\n* `vendor/caisson-guest/`: the Rust guest library (builders, waits, signals, queries, heartbeats), vendored: \
             it is on no public registry. It speaks the WIT in its own `wit/`."
        }
        (Lang::JavaScript, Kind::Workflow) => {
            "\n* `caisson-guest/`: the JavaScript workflow helpers, imported by name (`from 'caisson-guest'`); \
             `caisson build` resolves the name."
        }
        (Lang::TypeScript, _) => {
            "\n* `caisson-workflow/`: the `@temporalio/workflow` API for Caisson, vendored (it is on no public registry), \
             imported by name (`from 'caisson-workflow'`); its README says what is supported and what differs from the SDK. \
             `caisson build` resolves the name and transpiles the TypeScript (no type check: `npm test` runs `tsc`)."
        }
        (Lang::Python, _) => {
            "\n* `caisson/`: the Python guest library, with the API of the Temporal Python SDK \
             (`from caisson import workflow, activity`), vendored: it is on no public registry. \
             Its README lists what it supports and what differs from the SDK."
        }
        _ => "",
    };
    // A TypeScript workflow type is its function's name.
    let type_name = if lang == Lang::TypeScript { camel_case(name) } else { name.to_owned() };
    let (run, note) = match kind {
        Kind::Workflow => (
            format!(
                "caisson dev build ../greet/build --execute {} --input '{{\"name\": \"Ada\"}}'   # dev server, worker, one run",
                type_name
            ),
            "The workflow calls the activity `greet`; make it beside this folder with\n\
             `caisson new activity rust greet --dir ../greet && caisson build ../greet`.\n"
                .to_owned(),
        ),
        Kind::Activity => (
            "caisson dev build ../hello-flow/build --execute hello-flow --input '{\"name\": \"Ada\"}'".to_owned(),
            format!(
                "An activity runs when a workflow calls it: `caisson new workflow rust hello-flow --dir ../hello-flow` \
                 makes one that calls `greet` (rename it `{name}` there, or this activity `greet`).\n"
            ),
        ),
    };
    let world = match lang {
        Lang::Python => format!("the dynamic {kind} world: the types are what the code defines, declared when the worker loads the plugin"),
        _ => format!("every exported function is one {kind} type"),
    };
    format!(
        "# {name}\n\nA Caisson {kind} plugin in {lang}, made by `caisson new {kind} {lang} {name}`.\n\n\
         * {sources}: the {kind} code; one {kind} type, `{type_name}`.\n\
         * `wit/world.wit`: its world: {world}.\n\
         * `wit/deps/`: the `caisson:*` WIT packages (`caisson wit --dir wit/deps` rewrites them).\n\
         * `caisson.toml`: its grants, copied to `build/{name}.toml` by the build.{vendored}\n\n\
         ## Next\n\n```sh\n\
         caisson build            # -> build/{name}.wasm (+ build/{name}.toml), then the verdict of caisson check\n\
         {unit_test}   # the plain-code test\n\
         {run}\n```\n\n\
         {note}\n(Run these in {}.)\n",
        dir.display()
    )
}
