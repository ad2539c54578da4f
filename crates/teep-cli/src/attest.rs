//! `teep attest` and `teep verifier` sub-commands.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub(crate) enum Command {}

#[derive(clap::Subcommand)]
pub(crate) enum VerifierCommand {}

pub(crate) fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {}
}

pub(crate) fn run_verifier(cmd: VerifierCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
