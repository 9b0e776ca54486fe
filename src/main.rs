//! The `brigade` command: parses the arguments, checks them, and hands them to the
//! mode asked for. The work itself lives in the library crates.

mod replay;
mod sim_command;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
        Command::Sim(args) => {
            if let Err(err) = args.check() {
                usage_error(err, "sim");
            }
            args.into_config().and_then(sim_command::run)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `err` as clap prints its own, with `subcommand`'s usage, and exits with
/// clap's status for usage errors.
fn usage_error(err: clap::Error, subcommand: &str) -> ! {
    let mut cli = Cli::command();
    cli.build();
    let command = cli
        .find_subcommand_mut(subcommand)
        .expect("the subcommand exists");
    err.format(command).exit()
}
