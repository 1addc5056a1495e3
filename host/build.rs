//! Embeds what `caisson new`, `caisson wit` and `caisson build` write into
//! a plugin project: the host's WIT packages (from the repository's `wit/`,
//! so a WIT version bump needs no edit here), the guest libraries
//! (Rust, JavaScript, Python), the Rust guests' lock file and the project
//! templates. Generates `$OUT_DIR/embedded.rs`: a list of
//! `(embedded path, bytes)` pairs, each `include_bytes!` of the source file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (prefix in the binary, folder relative to the repository root).
const TREES: &[(&str, &str)] = &[
    ("wit", "wit"),
    ("guest/rust", "plugins/rust/caisson-guest"),
    ("guest/js", "plugins/js/caisson-guest"),
    ("guest/js-workflow", "plugins/js/caisson-workflow"),
    ("guest/python-sdk", "plugins/python/caisson"),
    ("templates", "host/templates"),
];

/// Single files: (path in the binary, file relative to the repository root).
const FILES: &[(&str, &str)] = &[("lock/rust/Cargo.lock", "plugins/rust/Cargo.lock")];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ has a parent").to_path_buf();
    let mut entries = Vec::new();
    for (prefix, dir) in TREES {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&dir, &dir, prefix, &mut entries);
    }
    for (name, file) in FILES {
        let file = root.join(file);
        println!("cargo:rerun-if-changed={}", file.display());
        entries.push((name.to_string(), file));
    }
    entries.sort();
    let mut out = String::from("/// Every embedded file: (path, contents).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in entries {
        let _ = writeln!(out, "    ({name:?}, include_bytes!({:?})),", path.display().to_string());
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}

/// Every file under `dir` but build output and caches, named `prefix/relative`.
fn collect(base: &Path, dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(name.as_str(), "target" | "node_modules" | "__pycache__" | "build") || name.starts_with('.') {
            continue;
        }
        // wit/frozen holds the older WIT versions the host still serves;
        // new projects are written against the current ones only.
        if prefix == "wit" && dir == base && name == "frozen" {
            continue;
        }
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(base, &path, prefix, out);
        } else {
            let rel = path.strip_prefix(base).expect("under base").to_string_lossy().replace('\\', "/");
            out.push((format!("{prefix}/{rel}"), path));
        }
    }
}
