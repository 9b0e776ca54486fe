//! The `brigade` command. It only wires: the commands arrive with the simulator and
//! the dashboard; until then it says what exists.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            println!(
                "brigade {}: an adaptive, self-tuning stage runtime for ETL pipelines\n\n\
                 The library is ready (see README.md). Try the runtime demo:\n  \
                 cargo run --release --example etl",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("brigade {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("brigade: unknown command `{other}` (see `brigade --help`)");
            ExitCode::from(2)
        }
    }
}
