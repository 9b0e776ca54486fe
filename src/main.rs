//! The `brigade` command: parses the arguments, checks them, and hands them to the
//! mode asked for. The work itself lives in the library crates.

mod sim_command;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// brigade: an adaptive, self-tuning stage runtime for ETL pipelines.
///
/// The library is ready (see README.md); the runtime demo is
/// `cargo run --release --example etl`.
#[derive(Debug, Parser)]
#[command(name = "brigade", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Sim(sim_command::SimArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Sim(args) => args.into_config().and_then(sim_command::run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
