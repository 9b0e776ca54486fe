//! The `brigade` command: parses the arguments, checks them, and hands them to the
//! mode asked for. The work itself lives in the library crates.

mod demo_command;
mod live;
mod mode_args;
mod policy_arg;
mod replay;
mod run_command;
mod sim_command;
mod validate_command;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Records are allocated on one thread and freed on another, millions a minute:
/// mimalloc does that cheaply, where the system allocator contends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// brigade: an adaptive, self-tuning stage runtime for ETL pipelines.
///
/// `brigade run` runs a pipeline file (files, standard input, external programs,
/// SQLite) and `brigade validate` checks one; `brigade demo` runs a synthetic
/// pipeline for real and opens the dashboard; `brigade sim` compares the controllers
/// in virtual time. The library is in README.md.
#[derive(Debug, Parser)]
#[command(name = "brigade", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run_command::RunArgs),
    Validate(validate_command::ValidateArgs),
    Demo(demo_command::DemoArgs),
    Sim(sim_command::SimArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run(args) => args.into_config().and_then(run_command::run),
        Command::Demo(args) => args.into_config().and_then(demo_command::run),
        Command::Sim(args) => {
            if let Err(err) = args.check() {
                usage_error(err, "sim");
            }
            args.into_config()
                .and_then(sim_command::run)
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Validate(args) => Ok(validate_command::run(&args)),
    };
    match result {
        Ok(code) => code,
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
