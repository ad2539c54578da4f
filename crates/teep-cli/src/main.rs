//! `teep`: one command for every role of a TEEP deployment.
//!
//! Each sub-command lives in its own module and is a thin layer over the library crates;
//! protocol rules never live here.

use std::io::{ErrorKind, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attest;
mod input;
mod inspect;
mod keys;
mod suit;
mod tam;

/// Trusted Execution Environment Provisioning (IETF TEEP): TAM, Broker, Agent, SUIT and RATS tools.
#[derive(Parser)]
#[command(name = "teep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show any TEEP message, COSE object, COSE_Key or SUIT envelope as JSON or CBOR diagnostic notation.
    Inspect(inspect::Args),
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
}

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Suit(cmd) => suit::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Verifier(cmd) => attest::run_verifier(cmd),
        Command::Tam(cmd) => tam::run(cmd),
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

/// Writes `text` and a newline to standard output. A reader that went away (`teep ... |
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

/// Rust ignores SIGPIPE, so `println!` into a closed pipe panics ("failed printing to
/// stdout: Broken pipe"). Like any filter, `teep` then stops quietly (exit 0) instead; other
/// panics keep the default report.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(0);
        }
        default(info);
    }));
}
