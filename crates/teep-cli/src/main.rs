//! `teep`: one command for every role of a TEEP deployment.
//!
//! Each sub-command lives in its own module and is a thin layer over the library crates;
//! protocol rules never live here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attest;
mod input;
mod inspect;
mod keys;
mod suit;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Suit(cmd) => suit::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Verifier(cmd) => attest::run_verifier(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("teep: {err:#}");
            ExitCode::from(2)
        }
    }
}
