#!/usr/bin/env bash
# The project's test command: every crate's unit, integration and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v cargo-nextest >/dev/null 2>&1; then
  # Doc tests first: nextest does not run them, and its summary should close the run.
  cargo test --workspace --locked --doc
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
