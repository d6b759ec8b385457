#!/usr/bin/env bash
# Benchmarks, each printing its figures (timings are reported; only the synthetic frame budget
# fails the run, as before). Prints the machine's load first: the machine may be shared.
#
#   scripts/bench.sh frames         frame times: 500/2,000/5,000 messages in flight (fails when
#                                   5,000 need more than 16.7 ms of work per frame at p95), and
#                                   the big run with every view at 1× and 10×, with its compute
#                                   time and memory per event in the page
#   scripts/bench.sh compute        the big run computed in the page in slices (every view
#                                   playing; the map alone, paused) beside the engine computing
#                                   it at once in the same browser
#   scripts/bench.sh first-message  an embed on a throttled link, cold: map drawn, first message
#                                   moving
#   scripts/bench.sh engine         trace events/s natively, in WebAssembly (Node, and headless
#                                   Chromium: the page's browser), and a SimPy twin of the same
#                                   workload, side by side
#   scripts/bench.sh                all of them
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
part=${1:-all}
case "$part" in
  frames | compute | first-message | engine | all) ;;
  *) echo "usage: scripts/bench.sh [frames|compute|first-message|engine]" >&2; exit 2 ;;
esac
. scripts/setup.sh
echo "load: $(uptime)"

if [ "$part" != engine ]; then
  trunk build --release
fi
if [ "$part" = frames ] || [ "$part" = all ]; then
  cargo run --quiet --release -p crosstalk-tests --bin frame-budget
fi
if [ "$part" = compute ] || [ "$part" = all ]; then
  # The engine alone, built with the page's own profile, to time it at once in the browser.
  cargo build --quiet -p crosstalk-bench --lib --target wasm32-unknown-unknown --profile wasm-release
  cargo run --quiet --release -p crosstalk-tests --bin frame-budget -- compute
fi
if [ "$part" = first-message ] || [ "$part" = all ]; then
  cargo run --quiet --release -p crosstalk-tests --bin first-message
fi
if [ "$part" = engine ] || [ "$part" = all ]; then
  simpy_dir="$root/.tools/python"
  if ! PYTHONPATH="$simpy_dir" python3 -c 'import simpy' 2>/dev/null; then
    echo "bench: installing SimPy (pip) into $simpy_dir" >&2
    python3 -m pip install --quiet --disable-pip-version-check --target "$simpy_dir" 'simpy==4.1.2'
  fi
  # The WebAssembly is built with the page's own profile and optimized as Trunk optimizes the
  # page (index.html's data-wasm-opt="3" and its function order), so it runs as the engine in the page.
  cargo build --quiet -p crosstalk-bench --lib --target wasm32-unknown-unknown --profile wasm-release
  bench_wasm=target/wasm32-unknown-unknown/wasm-release/crosstalk_bench
  wasm-opt -O3 --reorder-functions-by-name --low-memory-unused --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals "$bench_wasm.wasm" -o "$bench_wasm.opt.wasm"
  cargo build --quiet -p crosstalk-bench --bin engine-bench --release
  PYTHONPATH="$simpy_dir" target/release/engine-bench --wasm "$bench_wasm.opt.wasm" --chromium --simpy python3
fi
