use clap::Parser as _;
use globalingress::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    globalingress::install_crypto_provider();
    let cli = Cli::parse();
    globalingress::telemetry::init_logging(&cli.log)?;
    match cli.command {
        Command::Run(args) => globalingress::run::run(args).await?,
        Command::Crds => print!("{}", globalingress::api::crds_yaml()?),
    }
    Ok(())
}
