//! The `caisson` command line.

use anyhow::Context;
use caisson::check::{self, CheckResult};
use caisson::engine::{ComponentCache, EngineOptions, default_cache_dir};
use caisson::plugin::Engines;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAISSON_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
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
    }
}
