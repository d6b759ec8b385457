#!/usr/bin/env bash
# Runs the product: installs what is missing, builds the page, and serves it with the backend on
# http://127.0.0.1:8080 (override with CROSSTALK_BIND=host:port).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/setup.sh
trunk build --release
cargo build --release -p backend --quiet
exec target/release/crosstalk serve --bind "${CROSSTALK_BIND:-127.0.0.1:8080}" --dist dist
