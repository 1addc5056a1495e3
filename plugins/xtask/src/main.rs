//! `cargo xtask plugins [NAME...]`: builds every plugin under `plugins/`
//! and `examples/` into `build/plugins/`. A thin wrapper: the builder is
//! `caisson build` (`caisson::build`), which also builds plugin projects
//! outside the repository.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugins") => {
            caisson::build::build_repository(&repo_root()?, &args[1..])?;
            Ok(())
        }
        _ => bail!("usage: cargo xtask plugins [NAME...]"),
    }
}

/// The repository root: the nearest folder, from the current one up, that
/// is a Caisson checkout. Found at run time, not compile time, so a shared
/// target folder serving two checkouts never builds the wrong one.
fn repo_root() -> Result<PathBuf> {
    let start = std::env::current_dir().context("reading the current directory")?;
    start
        .ancestors()
        .find(|dir| caisson::build::is_repository(dir))
        .map(PathBuf::from)
        .with_context(|| format!("run `cargo xtask` inside the Caisson repository (none found above {})", start.display()))
}
