//! `make bench`: benchmarks of globalingress against the local environment. They measure and
//! print; they assert nothing.
//!
//! - `publish` ([`publish`]): the scale of the DNS engine, cold convergence and one change
//!   touching every GlobalIngress, Route 53 calls and memory.
//! - `failover` ([`failover`]): a region's data plane stops under N GlobalIngresses sharing it;
//!   time until the authoritative answer (Knot) or the record (Route 53) changes, and the DNS
//!   changes per event.
//! - `provision` ([`provision`]): N GlobalIngresses x 2 Provision targets; time until every load
//!   balancer is ready, ELBv2 calls by operation, and the calls of a reconcile with nothing to do.
//! - `paced` ([`paced`]): two failovers in one Route 53 zone while the first change is PENDING
//!   (Route 53's pace through the fault proxy): the second is not delayed by the first.
//! - `admission` ([`admission`]): N creates against copies of the GlobalIngress CRD (as shipped,
//!   without each validation rule, without any, a plain CRD): what each rule costs the API server.

mod admission;
mod dataplane;
mod env;
mod failover;
mod observe;
mod operator;
mod paced;
mod provision;
mod publish;
mod stats;

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Publish,
    Failover,
    Provision,
    Paced,
    Admission,
}

/// Benchmarks of globalingress against the local environment (prints tables; asserts nothing).
#[derive(Debug, Parser)]
pub struct Args {
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "publish,failover,provision,paced,admission"
    )]
    scenarios: Vec<Scenario>,
    /// publish: numbers of GlobalIngresses, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    sizes: Vec<usize>,
    /// provision: numbers of GlobalIngresses (two Provision targets each), one run each.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    provision_sizes: Vec<usize>,
    /// paced: GlobalIngresses in each of the two groups.
    #[arg(long, default_value_t = 100)]
    paced_size: usize,
    /// paced: seconds every Route 53 change stays PENDING (the second run; the first has none).
    #[arg(long, default_value_t = 30)]
    paced_pending: u64,
    /// admission: GlobalIngresses created per copy of the CRD.
    #[arg(long, default_value_t = 1000)]
    admission_size: usize,
    /// admission: also one copy without each validation rule in turn (false: only the whole-schema
    /// variants).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    admission_each_rule: bool,
    /// admission: runs per variant (the median is printed).
    #[arg(long, default_value_t = 3)]
    admission_repeats: usize,
    /// failover: numbers of GlobalIngresses sharing the failing region, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    failover_sizes: Vec<usize>,
    /// failover: region down and back this many times per size and provider.
    #[arg(long, default_value_t = 20)]
    failover_repeats: usize,
    /// failover: DNS providers to run against.
    #[arg(long, value_delimiter = ',', default_value = "knot,route53")]
    failover_providers: Vec<failover::Provider>,
    /// failover: the operators' log filter (their logs go to the environment's directory).
    #[arg(long, env = "GI_BENCH_OPERATOR_LOG", default_value = "info")]
    failover_operator_log: String,
    /// The environment's env file (from `tests/env/env.sh up`).
    #[arg(long, env = "GLOBALINGRESS_TEST_ENV")]
    env: PathBuf,
    /// The globalingress binary.
    #[arg(long)]
    operator: PathBuf,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    globalingress::install_crypto_provider();
    let args = Args::parse();
    let env = env::load(&args.env)?;
    for scenario in &args.scenarios {
        match scenario {
            Scenario::Publish => publish::run(&args, &env).await?,
            Scenario::Failover => failover::run(&args, &env).await?,
            Scenario::Provision => provision::run(&args, &env).await?,
            Scenario::Paced => paced::run(&args, &env).await?,
            Scenario::Admission => admission::run(&args, &env).await?,
        }
    }
    Ok(())
}
