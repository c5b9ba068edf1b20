//! `blis bench`: simulator speed and memory on the built-in benchmark scenarios.

use std::process::ExitCode;

use super::{failed, print_json, CliError, Output};
use blis_plan::bench;

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark: `10k`, `100k` (requests, one replica), `16r100k` (100,000 requests, 16 replicas,
    /// prefix-aware endpoint picker), `1m` (1,000,000 requests, one replica, streaming summary),
    /// `1m-exact` (the same, exact summary), `16r` (1,000,000 requests, 16 replicas) or `all` (10k,
    /// 16r100k and 1m: issue 17's acceptance cases; reference figures in `blis_plan::bench`).
    #[arg(long, default_value = "all")]
    case: String,
    /// Runs per case; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Run without helper threads (no workload generated ahead, no records summarised behind), as
    /// sweeps run each candidate.
    #[arg(long)]
    single_thread: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
}

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let mut results = Vec::new();
    for case in bench::cases(&args.case)? {
        let r = bench::measure(&case, args.repeat, !args.single_thread)
            .map_err(|e| failed(format!("benchmark {}: {e}", case.name)))?;
        if args.output == Output::Table {
            outln!("{}", r.line());
        }
        results.push(r);
    }
    if args.output == Output::Json {
        print_json(&results)?;
    }
    Ok(ExitCode::SUCCESS)
}
