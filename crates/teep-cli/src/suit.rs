//! `teep suit` sub-commands.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub(crate) enum Command {}

pub(crate) fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {}
}
