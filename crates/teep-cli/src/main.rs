//! `teep`: one command for every role of a TEEP deployment.
//!
//! Each sub-command lives in its own module and is a thin layer over the library crates;
//! protocol rules never live here.

use std::io::{ErrorKind, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attest;
mod demo;
mod device;
mod encode;
mod input;
mod inspect;
mod keys;
mod loadgen;
mod suit;
mod tam;
mod tam_admin;
mod tam_config;
mod tee;
mod trace;

/// Trusted Execution Environment Provisioning (IETF TEEP): TAM, Broker, Agent, SUIT and RATS tools.
#[derive(Parser)]
#[command(name = "teep", version, about)]
struct Cli {
    /// What to log on standard error, in `RUST_LOG` syntax (`debug`, `teep_verifier=debug`,
    /// ...); takes precedence over RUST_LOG. Default: `info` for servers (their refusals
    /// too), `warn` for one-shot commands.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show any TEEP message, COSE object, COSE_Key or SUIT envelope as JSON or CBOR diagnostic notation.
    Inspect(inspect::Args),
    /// Turn the JSON view of a TEEP message (`teep inspect` output) back into CBOR, optionally signed.
    Encode(encode::Args),
    /// Draw a TAM log (`teep tam serve` standard error) as the sequence diagram of its sessions.
    Trace(trace::Args),
    /// Make, convert and certify keys.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Create, sign, verify, inspect and process SUIT manifests.
    #[command(subcommand)]
    Suit(suit::Command),
    /// Make and appraise EAT Evidence.
    #[command(subcommand)]
    Attest(attest::Command),
    /// Run the RATS Verifier.
    #[command(subcommand)]
    Verifier(attest::VerifierCommand),
    /// Run the TAM (TEEP over HTTP).
    #[command(subcommand)]
    Tam(tam::Command),
    /// Run the software TEE (the TEEP Agent) as a process.
    #[command(subcommand)]
    Tee(tee::Command),
    /// Run the device's Broker and talk to it as an app (request, list, invoke TAs).
    #[command(subcommand)]
    Device(device::Command),
    /// Run the whole lifecycle across real processes on loopback (Verifier, TAM, TEE,
    /// Broker): attest, install, invoke, update, a refused rollback, delete; each step
    /// checked, and the message sequence drawn from the roles' logs.
    Demo(demo::Args),
    /// Load a TAM with many simulated devices (real Agents and Brokers, in process) and
    /// print sessions per second, p50/p99 latency and errors.
    Loadgen(Box<loadgen::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = init_logging(cli.log_level.as_deref(), &cli.command) {
        eprintln!("teep: {err:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Suit(cmd) => suit::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Verifier(cmd) => attest::run_verifier(cmd),
        Command::Tam(cmd) => tam::run(cmd),
        Command::Tee(cmd) => tee::run(cmd),
        Command::Device(cmd) => device::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Loadgen(args) => loadgen::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("teep: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The default log filter of a command: a server says what it did with each request (the
/// Verifier logs its refusals at debug level, so that target is opened one step further);
/// a one-shot command says only what went wrong.
fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Verifier(_) => "info,teep_verifier=debug",
        Command::Tam(_) | Command::Tee(_) | Command::Device(device::Command::Run(_)) => "info",
        _ => "warn",
    }
}

/// Logs go to standard error (standard output is the command's result), filtered by
/// `--log-level`, else `RUST_LOG`, else the command's default.
fn init_logging(flag: Option<&str>, command: &Command) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (source, filter) = match (flag, env.as_deref()) {
        (Some(flag), _) => ("--log-level", flag),
        (None, Some(env)) => ("RUST_LOG", env),
        (None, None) => ("default", default_log_filter(command)),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("{source} {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

/// Writes `text` and a newline to standard output: the only way the CLI prints there
/// (never `println!`, which panics on a closed pipe). A reader that went away (`teep ... |
/// head`) makes this fail with `BrokenPipe`, which `main` turns into a quiet exit.
pub(crate) fn print_line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Whether an error comes from writing to a closed pipe (directly or through serde_json).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| cause.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(ErrorKind::BrokenPipe)
    })
}
