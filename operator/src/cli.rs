//! The command line: `globalingress <command>`, flags grouped per concern, every flag also settable
//! through an environment variable (shown in `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::duration::parse as parse_duration;

/// Keeps one global hostname pointed at healthy regions.
///
/// globalingress runs in a hub cluster, watches GlobalIngress objects, provisions AWS load balancers
/// and certificates in the spoke clusters' VPCs, health-checks every spoke, and drives Route 53 or
/// RFC 2136 DNS records so traffic leaves a failing region within seconds.
#[derive(Debug, Parser)]
#[command(name = "globalingress", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the hub cluster (the long-running operator process).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (GlobalIngress, SpokeCluster, DNSZone) as YAML, for
    /// `kubectl apply -f -`, or write one file per CRD into a directory (`make crds`).
    Crds(CrdsArgs),
    /// Validate GlobalIngress, SpokeCluster and DNSZone YAML (the API server's schema and CEL
    /// rules) and print the DNS records the controller would publish, without contacting
    /// anything. Exits 1, naming file, object and field, when the input is invalid.
    Plan(PlanArgs),
}

/// Flags of `globalingress plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// YAML files (one or more documents each). Include the DNSZone each GlobalIngress refers
    /// to, and its SpokeClusters for their regions.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PlanOutput::Table)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Table,
    Json,
}

/// Flags of `globalingress crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write `<crd name>.yaml` files into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Flags of `globalingress run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub controller: ControllerArgs,

    #[command(flatten)]
    pub health: HealthArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,

    #[command(flatten)]
    pub dns: DnsArgs,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(flatten)]
    pub admin: AdminArgs,
}

/// What the controllers watch and how often they look again.
#[derive(Debug, Args)]
#[command(next_help_heading = "Controller")]
pub struct ControllerArgs {
    /// Reconcile every GlobalIngress and DNSZone at least this often, even without changes
    /// (DNS, AWS and spokes change without watch events).
    #[arg(long, env = "GLOBALINGRESS_RESYNC_INTERVAL", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Check every SpokeCluster's API server this often.
    #[arg(long, env = "GLOBALINGRESS_SPOKE_CHECK_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub spoke_check_interval: Duration,

    /// Reconciles running at once, per kind. A reconcile waits while its zone writer publishes,
    /// so this also caps how many objects one change batch can carry: keep it above the number
    /// of GlobalIngresses one change may touch at once, and below what the API server absorbs.
    #[arg(
        long,
        env = "GLOBALINGRESS_RECONCILE_CONCURRENCY",
        value_name = "N",
        default_value_t = 1024
    )]
    pub reconcile_concurrency: u16,

    /// Writes to the hub in flight at once (status patches, finalizers, Events; the Lease is
    /// never held back). The API server works through a burst — 10,000 objects published at
    /// once — at its own pace either way; more in flight only makes each wait longer, until
    /// calls time out, are retried, and the Lease renewal times out behind them.
    #[arg(
        long,
        env = "GLOBALINGRESS_HUB_WRITE_CONCURRENCY",
        value_name = "N",
        default_value_t = 32
    )]
    pub hub_write_concurrency: usize,

    /// Watch GlobalIngresses in this namespace only (default: all namespaces).
    #[arg(long, env = "GLOBALINGRESS_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Manage only the GlobalIngresses, DNSZones and SpokeClusters carrying these labels (a
    /// Kubernetes label selector, e.g. `globalingress.io/shard=eu`), to shard one hub's objects
    /// between several operators. A GlobalIngress can only use DNSZones and SpokeClusters its
    /// operator manages (others are `DNSZoneNotFound` / `SpokeClusterNotFound`); give each
    /// shard its own Lease.
    #[arg(long, env = "GLOBALINGRESS_SELECTOR", value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// How often a DNSZone found at its provider is checked again (one GetHostedZone per zone
    /// for Route 53). A zone not found, or failing, is checked again within seconds.
    #[arg(long, env = "GLOBALINGRESS_ZONE_CHECK_INTERVAL", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub zone_check_interval: Duration,

    /// Write, in each spoke, a NetworkPolicy admitting a provisioned target's backend pods only
    /// from its load balancer's subnets on the target port, for every GlobalIngress that does
    /// not set `spec.backendNetworkPolicy` itself. Needs the spoke chart's
    /// `networkPolicies.enabled` grant. Cuts off every other client of those pods.
    #[arg(long, env = "GLOBALINGRESS_BACKEND_NETWORK_POLICIES")]
    pub backend_network_policies: bool,
}

/// The prober and the failover guard rails.
#[derive(Debug, Args)]
#[command(next_help_heading = "Health checks")]
pub struct HealthArgs {
    /// Where probes resolve load-balancer host names: `system` (the operating system's
    /// resolver) or the `IP:PORT` of a DNS server asked directly, without recursion (e.g. a
    /// local authoritative server mapping emulated load-balancer names to test addresses).
    #[arg(long, env = "GLOBALINGRESS_PROBE_RESOLVER", value_name = "IP:PORT|system", default_value = "system", value_parser = parse_resolver)]
    pub probe_resolver: crate::health::probe::Resolver,

    /// Probes in flight at once (each unique endpoint is probed once per interval, whatever the
    /// number of GlobalIngresses sharing it).
    #[arg(
        long,
        env = "GLOBALINGRESS_PROBE_CONCURRENCY",
        value_name = "N",
        default_value_t = 256
    )]
    pub probe_concurrency: usize,

    /// The false-failover guard's window: endpoints that fell within it (or are failing their
    /// latest probes) count as failing at once. When more than a GlobalIngress's
    /// `failover.panicThreshold` of all probed endpoints do, it withdraws nothing. An outage
    /// longer than this is taken as real (every target down: fail open). Never shorter than the
    /// slowest endpoint needs to fall (interval × (unhealthyThreshold + 1)); endpoints that were
    /// never healthy do not count.
    #[arg(long, env = "GLOBALINGRESS_PANIC_WINDOW", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub panic_window: Duration,
}

fn parse_resolver(s: &str) -> Result<crate::health::probe::Resolver, String> {
    use crate::health::probe::Resolver;
    if s == "system" {
        return Ok(Resolver::System);
    }
    s.parse()
        .map(Resolver::Server)
        .map_err(|_| format!("{s:?}: expected IP:PORT (e.g. 127.0.0.1:5353) or \"system\""))
}

/// Leader election: every replica watches and plans; only the Lease holder writes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Leader election")]
pub struct LeaderArgs {
    /// Namespace of the Lease (must exist).
    #[arg(
        long,
        env = "GLOBALINGRESS_LEASE_NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "globalingress-system"
    )]
    pub lease_namespace: String,

    /// Name of the Lease; replicas sharing it elect one leader.
    #[arg(
        long,
        env = "GLOBALINGRESS_LEASE_NAME",
        value_name = "NAME",
        default_value = "globalingress-leader"
    )]
    pub lease_name: String,

    /// This replica's identity in the Lease (default: host name and process id).
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub identity: Option<String>,

    /// How long a Lease stays valid without renewal; a follower takes over after it.
    #[arg(long, env = "GLOBALINGRESS_LEASE_DURATION", value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// A leader that could not renew for this long stops writing (shorter than the lease
    /// duration), even while a renewal hangs; each Lease call times out after half of it.
    #[arg(long, env = "GLOBALINGRESS_RENEW_DEADLINE", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,

    /// Time between attempts to acquire or renew the Lease.
    #[arg(long, env = "GLOBALINGRESS_LEASE_RETRY_PERIOD", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
}

/// DNS zones.
#[derive(Debug, Args)]
#[command(next_help_heading = "DNS")]
pub struct DnsArgs {
    /// How often each zone writer lists its zone again (records changed by others become
    /// visible); between listings it keeps its copy current from its own writes, so a reconcile
    /// costs no reads and a zone in sync costs no writes.
    #[arg(long, env = "GLOBALINGRESS_ZONE_RELIST_INTERVAL", value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub zone_relist_interval: Duration,

    /// Local address of connections to RFC 2136 servers (for servers that allow updates by
    /// source address, or a hub with several addresses). Default: chosen by the system.
    #[arg(long, env = "GLOBALINGRESS_DNS_BIND_ADDRESS", value_name = "IP")]
    pub dns_bind_address: Option<std::net::IpAddr>,
}

/// AWS access.
#[derive(Debug, Args)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// Region for regional AWS services (Route 53 is global).
    #[arg(
        long,
        env = "AWS_REGION",
        value_name = "REGION",
        default_value = "us-east-1"
    )]
    pub aws_region: String,

    /// Send every AWS call to this endpoint instead (an emulator, e.g. http://127.0.0.1:5000).
    #[arg(long, env = "GLOBALINGRESS_AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint_url: Option<String>,

    /// Attempts per AWS call for throttling and server errors (exponential backoff with jitter).
    #[arg(
        long,
        env = "GLOBALINGRESS_AWS_MAX_ATTEMPTS",
        value_name = "N",
        default_value_t = 5
    )]
    pub aws_max_attempts: u32,

    /// The longest one AWS HTTP attempt may take, counted from when it got its budget token
    /// (the wait for the token does not count); a timed-out attempt is retried.
    #[arg(long, env = "GLOBALINGRESS_AWS_ATTEMPT_TIMEOUT", value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub aws_attempt_timeout: Duration,

    /// The AWS account's Route 53 health-check limit (200 unless AWS raised it). Every check in
    /// the account counts; creates beyond it are not sent and the GlobalIngress reports
    /// `HealthChecksSynced=False` with reason `HealthCheckQuotaExceeded`.
    #[arg(
        long,
        env = "GLOBALINGRESS_ROUTE53_HEALTH_CHECK_QUOTA",
        value_name = "N",
        default_value_t = 200
    )]
    pub route53_health_check_quota: usize,

    /// How often Route 53 health checks tagged as ours but belonging to no GlobalIngress target
    /// (deleted while the operator was down) are deleted.
    #[arg(long, env = "GLOBALINGRESS_HEALTH_CHECK_GC_INTERVAL", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub health_check_gc_interval: Duration,

    /// How long an account's ELBv2 listing (every load balancer and target group with its tags;
    /// our listeners and target health, read when first needed) is trusted before it is listed
    /// again; our own writes keep it current in between, and a failed write lists again (at
    /// most every 2 s).
    #[arg(long, env = "GLOBALINGRESS_ELB_RESYNC_INTERVAL", value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub elb_resync_interval: Duration,

    /// How long a replaced (or removed) load balancer stays after the records stopped pointing
    /// at it: resolvers keep an ALIAS for its TTL (60 s for load balancers) after Route 53
    /// changed it, and a real change takes tens of seconds to be in sync.
    #[arg(long, env = "GLOBALINGRESS_REPLACED_LOAD_BALANCER_GRACE", value_name = "DURATION", default_value = "3m", value_parser = parse_duration)]
    pub replaced_load_balancer_grace: Duration,

    /// Route 53 requests per second this process may make (retries included). AWS allows 10/s
    /// per account, shared with every other tool in it.
    #[arg(
        long,
        env = "GLOBALINGRESS_ROUTE53_RATE",
        value_name = "N",
        default_value_t = 4
    )]
    pub route53_rate: u32,

    /// Route 53 requests that may go at once after a quiet period.
    #[arg(
        long,
        env = "GLOBALINGRESS_ROUTE53_BURST",
        value_name = "N",
        default_value_t = 8
    )]
    pub route53_burst: u32,
}

/// How to reach the hub cluster.
#[derive(Debug, Args)]
#[command(next_help_heading = "Kubernetes (hub cluster)")]
pub struct KubeArgs {
    /// Kubeconfig of the hub cluster. Without it: the in-cluster service account, or $KUBECONFIG,
    /// or ~/.kube/config.
    #[arg(long, env = "GLOBALINGRESS_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// The admin HTTP server.
#[derive(Debug, Args)]
#[command(next_help_heading = "Admin server")]
pub struct AdminArgs {
    /// Address of the admin server: /healthz (process alive), /readyz (every watch synced once),
    /// /metrics (Prometheus text format).
    #[arg(
        long,
        env = "GLOBALINGRESS_ADMIN_ADDRESS",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_address: SocketAddr,
}

/// Logging.
#[derive(Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log line format: text for people, json for log pipelines.
    #[arg(
        long,
        global = true,
        env = "GLOBALINGRESS_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// Which log lines to keep, as a tracing filter (e.g. `info`, `globalingress=debug,kube=warn`).
    #[arg(
        long,
        global = true,
        env = "GLOBALINGRESS_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_names_its_environment_variable() {
        let mut cmd = Cli::command();
        // Global flags reach subcommands only once the command is built.
        cmd.build();
        let help = cmd
            .find_subcommand_mut("run")
            .expect("run subcommand")
            .render_long_help()
            .to_string();
        for var in [
            "GLOBALINGRESS_KUBECONFIG",
            "GLOBALINGRESS_ADMIN_ADDRESS",
            "GLOBALINGRESS_RESYNC_INTERVAL",
            "GLOBALINGRESS_LEASE_NAME",
            "GLOBALINGRESS_AWS_ENDPOINT_URL",
            "GLOBALINGRESS_LOG_FORMAT",
            "GLOBALINGRESS_LOG",
            "GLOBALINGRESS_SELECTOR",
            "GLOBALINGRESS_ZONE_RELIST_INTERVAL",
            "GLOBALINGRESS_ZONE_CHECK_INTERVAL",
            "GLOBALINGRESS_DNS_BIND_ADDRESS",
            "GLOBALINGRESS_AWS_ATTEMPT_TIMEOUT",
        ] {
            assert!(
                help.contains(&format!("[env: {var}")),
                "{var} missing from:\n{help}"
            );
        }
    }
}
