use std::process::ExitCode;

use clap::Parser as _;
use globalingress::cli::{Cli, Command, PlanArgs, PlanOutput};
use globalingress::offline;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    globalingress::install_crypto_provider();
    let cli = Cli::parse();
    globalingress::telemetry::init_logging(
        &cli.log.log_filter,
        cli.log.log_format == globalingress::cli::LogFormat::Json,
    )?;
    match cli.command {
        Command::Run(args) => globalingress::run::run(*args).await?,
        Command::Plan(args) => return plan(&args),
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
    Ok(ExitCode::SUCCESS)
}

fn plan(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let planned = offline::load(&args.files).and_then(|inputs| offline::plan_all(&inputs));
    let planned = match planned {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} problem(s); nothing planned", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    match args.output {
        PlanOutput::Table => print!("{}", offline::render(&planned)),
        PlanOutput::Json => println!("{}", serde_json::to_string_pretty(&planned)?),
    }
    let problems: Vec<String> = planned
        .iter()
        .flat_map(|p| {
            p.plan.problems.iter().map(move |problem| {
                format!(
                    "GlobalIngress/{}: {}: {} ({})",
                    p.global_ingress, problem.field, problem.message, problem.reason
                )
            })
        })
        .collect();
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
