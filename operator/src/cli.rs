//! The command line: `globalingress <command>`, flags grouped per concern, every flag also settable
//! through an environment variable (shown in `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Run(RunArgs),
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
    pub admin: AdminArgs,
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
            "GLOBALINGRESS_LOG_FORMAT",
            "GLOBALINGRESS_LOG",
        ] {
            assert!(
                help.contains(&format!("[env: {var}")),
                "{var} missing from:\n{help}"
            );
        }
    }
}
