//! `blis`: the command-line shell around the BLIS twin libraries. Each command lives in its own file
//! under [`cli`]; this entry point only parses the arguments and maps a failure to its exit status
//! (2 for invalid input, 1 for anything else).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::execute(cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
