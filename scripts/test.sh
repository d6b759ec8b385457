#!/usr/bin/env bash
# The one test command: installs what is missing, checks formatting and lints, builds the page,
# and runs every test — native, WebAssembly in headless Chromium, backend over real sockets, and
# end to end (the test starts the backend and drives the page in Chromium).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$(date +%s)
step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
. scripts/setup.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets --quiet -- -D warnings

step "build the page (dist/)"
trunk build --release
scripts/size.sh

step "native tests (logic, seed sweeps, determinism, backend, end to end)"
cargo test --workspace --quiet

step "browser tests of the page's logic (wasm-bindgen-test in headless Chromium)"
cargo test -p frontend --target wasm32-unknown-unknown --quiet

printf '\nall tests passed in %s s\n' "$(( $(date +%s) - started ))" >&2
