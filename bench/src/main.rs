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
//! - `peers` ([`peers`]): globalingress beside external-dns on the same work (N hostnames x 3
//!   weighted records): cold convergence, a change touching every object, two idle minutes;
//!   Route 53 calls by operation, CPU seconds and peak RSS, side by side with the ratios.

mod admission;
mod dataplane;
mod env;
mod external_dns;
mod failover;
mod observe;
mod operator;
mod paced;
mod peers;
mod process;
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
    Peers,
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
    /// peers: hostnames (GlobalIngresses, DNSEndpoints), three weighted records each.
    #[arg(long, default_value_t = 1000)]
    peers_size: usize,
    /// peers: seconds of the idle phase.
    #[arg(long, default_value_t = 120)]
    peers_idle: u64,
    /// peers: the external-dns binary (`tests/env/external-dns.sh` builds it and prints its path).
    #[arg(long)]
    external_dns: Option<PathBuf>,
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
    // On SIGINT or SIGTERM the running scenario's future is dropped, and with it every child
    // process it holds (operators, external-dns, proxies: each killed when dropped); exiting
    // without that would leave them running.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = scenarios(&args, &env) => r,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        _ = term.recv() => anyhow::bail!("terminated"),
    }
}

async fn scenarios(args: &Args, env: &env::Env) -> anyhow::Result<()> {
    for scenario in &args.scenarios {
        match scenario {
            Scenario::Publish => publish::run(args, env).await?,
            Scenario::Failover => failover::run(args, env).await?,
            Scenario::Provision => provision::run(args, env).await?,
            Scenario::Paced => paced::run(args, env).await?,
            Scenario::Admission => admission::run(args, env).await?,
            Scenario::Peers => peers::run(args, env).await?,
        }
    }
    Ok(())
}
