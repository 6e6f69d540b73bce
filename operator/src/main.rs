use clap::Parser as _;
use globalingress::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    globalingress::install_crypto_provider();
    let cli = Cli::parse();
    globalingress::telemetry::init_logging(&cli.log)?;
    match cli.command {
        Command::Run(args) => globalingress::run::run(args).await?,
        Command::Crds(args) => match args.dir {
            None => print!("{}", globalingress::api::crds_yaml()?),
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                for crd in globalingress::api::crds() {
                    let name = crd.metadata.name.clone().unwrap_or_default();
                    let path = dir.join(format!("{name}.yaml"));
                    std::fs::write(&path, globalingress::api::crd_yaml(&crd)?)?;
                    eprintln!("wrote {}", path.display());
                }
            }
        },
    }
    Ok(())
}
