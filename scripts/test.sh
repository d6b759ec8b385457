#!/usr/bin/env bash
# The one test command: installs what is missing, checks formatting and lints, builds the page,
# and runs every test — native, WebAssembly in headless Chromium, backend over real sockets, and
# end to end (the test starts the backend and drives the page in Chromium).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$(date +%s)
step() { printf '\n==> [%d s] %s\n' "$(( $(date +%s) - started ))" "$*" >&2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs a test command, keeping its output to add up the "test result" lines at the end.
tests() { "$@" 2>&1 | tee -a "$log"; }

step "setup"
. scripts/setup.sh

# RabbitMQ starts in the background now and is awaited before the tests: starting takes seconds,
# and a broker idling on localhost harms nothing afterwards (`rabbitmqctl stop` stops it).
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rabbitmq-server -detached
fi

# The page's release build spends minutes on one core (LTO into one codegen unit, wasm-opt,
# brotli), so it runs beside the lints and the test builds, which keep the other core busy. Its
# own target directory: two cargo processes cannot share one (each locks it for its whole build).
step "build the page (dist/) in the background; its log: target/page-build.log"
mkdir -p target
( CARGO_TARGET_DIR="$root/target/page" trunk build --release && scripts/size.sh ) \
  >target/page-build.log 2>&1 &
page_build=$!
trap 'kill "$page_build" 2>/dev/null || true; rm -f "$log"' EXIT

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets --quiet -- -D warnings

step "build the tests"
cargo test --workspace --no-run --quiet
cargo test -p frontend --target wasm32-unknown-unknown --tests --no-run --quiet

step "wait for the page and check its size"
if ! wait "$page_build"; then
  tail -n 60 target/page-build.log >&2
  echo "building the page failed (whole log: target/page-build.log)" >&2
  exit 1
fi
grep '^size:' target/page-build.log >&2

step "wait for RabbitMQ (the live runtime's AMQP tests)"
# `-detached` returns before the node registers with epmd, and `await_startup` fails at once on a
# node it cannot reach yet: ask until it answers (at most 120 s), then wait for the app itself.
for _ in $(seq 120); do
  rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break
  sleep 1
done
if ! timeout 120 rabbitmqctl -q await_startup; then
  echo "RabbitMQ did not start; the end of its log:" >&2
  tail -n 40 /var/log/rabbitmq/*.log >&2 || true
  exit 1
fi
export CROSSTALK_AMQP_URL="${CROSSTALK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

step "native tests (logic, seed sweeps, determinism, backend, end to end)"
tests cargo test --workspace

step "browser tests of the page's logic (wasm-bindgen-test in headless Chromium)"
tests cargo test -p frontend --target wasm32-unknown-unknown --tests

printf '\nscripts/test.sh took %s s\n' "$(( $(date +%s) - started ))" >&2
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
