//! `quern`: the command-line interface. See `docs/cli.md`.
//!
//! Exit status: 0 on success, 1 when an operation failed, 2 on bad usage. Errors are one line
//! on stderr (`{"error":{"code","message"}}` with `--json`).

mod archive;
mod bench;
mod cli;
mod cmd;
mod error;
mod log;
#[cfg(feature = "otlp")]
mod otlp;
mod output;
mod parse;
mod runner;
mod settings;
mod store;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a draining worker allocates per job (the job,
/// its task, its acknowledgement), and glibc's malloc was a fifth of its CPU time in
/// profiles; with mimalloc the worker used about 15 % less CPU per job (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult, EXIT_FAILED, EXIT_USAGE};
use crate::output::Out;
use crate::settings::Settings;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Known before parsing, so that even a usage error can be reported as JSON.
    let json_hint = args.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, json_hint),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut settings = match Settings::load(cli.config.as_deref(), env) {
        Ok(s) => s,
        Err(e) => {
            Out { json: json_hint }.error(&e);
            return ExitCode::from(e.exit);
        }
    };
    // Flags win over the file and the environment.
    if cli.store.is_some() {
        settings.store = cli.store.clone();
    }
    settings.json |= cli.json;
    let out = Out {
        json: settings.json,
    };
    let worker = matches!(cli.command, Command::Worker(_) | Command::Serve(_));
    // OTLP: the flag, else the standard variable (read only by a build that can export).
    #[cfg(feature = "otlp")]
    let _otlp = match cli
        .otlp_endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|u| !u.is_empty())
    {
        Some(url) => match log::init_with_otlp(worker, cli.log_format, &url) {
            Ok(guard) => Some(guard),
            Err(e) => {
                out.error(&CliError::usage("invalid_argument", e));
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => {
            log::init(worker, cli.log_format);
            None
        }
    };
    #[cfg(not(feature = "otlp"))]
    {
        if cli.otlp_endpoint.is_some() {
            out.error(&CliError::usage(
                "invalid_argument",
                "--otlp-endpoint: this quern was built without otlp (rebuild with `cargo build --release -p quern-cli --features otlp`)",
            ));
            return ExitCode::from(EXIT_USAGE);
        }
        log::init(worker, cli.log_format);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&CliError::failed("runtime", format!("cannot start: {e}")));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let ctx = Ctx { settings, out };
    let result = runtime.block_on(dispatch(&ctx, cli.command));
    // Do not wait for lingering blocking tasks (a stdin reader, a slow store close).
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let code = match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit)
        }
    };
    log::report_dropped();
    code
}

async fn dispatch(ctx: &Ctx, command: Command) -> CliResult<u8> {
    match command {
        Command::Enqueue(a) => as_cli(cmd::enqueue::run(ctx, *a)).await,
        Command::Worker(a) => cmd::worker::run(ctx, a).await,
        Command::Serve(a) => cmd::serve::run(ctx, a).await,
        Command::Jobs(c) => as_cli(cmd::jobs::run(ctx, c)).await,
        Command::Queues(c) => as_cli(cmd::admin::queues(ctx, c)).await,
        Command::Dlq(c) => as_cli(cmd::admin::dlq(ctx, c)).await,
        Command::Workers(c) => cmd::admin::workers(ctx, c).await,
        Command::Prune(a) => as_cli(cmd::prune::run(ctx, a)).await,
        Command::Workflow(c) => as_cli(cmd::workflow::run(ctx, c)).await,
        Command::Bench(a) => bench::run(ctx, a).await,
        Command::Cron(c) => cmd::cron::run(ctx, c).await,
        Command::Maintain(c) => cmd::maintain::run(ctx, c).await,
        Command::Stats(a) => cmd::stats::run(ctx, a).await,
        Command::Backup(a) => cmd::backup::backup(ctx, a).await,
        Command::Restore(a) => cmd::backup::restore(ctx, a).await,
        Command::Migrate(a) => cmd::backup::migrate(ctx, a).await,
    }
}

/// Help and version go to stdout with status 0; anything else is one line and status 2.
fn usage_error(e: clap::Error, json: bool) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            let rendered = e.render().to_string();
            // The first paragraph: its heading and what it lists (such as the missing
            // arguments), folded into one line.
            let first = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.trim_start_matches("error: ");
            let first = if first.is_empty() { "bad usage" } else { first };
            let message = format!("{first} (see quern --help)");
            Out { json }.error(&CliError::usage("usage", message));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Runs an operator's command with the actor `cli` on the job events it causes (the
/// worker, the server and the maintenance services record their own or none).
async fn as_cli<F: std::future::Future>(fut: F) -> F::Output {
    quern::model::with_actor(Some("cli".to_string()), fut).await
}
