#!/usr/bin/env bash
# The frame-time budget: builds the page, then measures frame times in headless Chromium with
# 500, 2,000 and 5,000 messages in flight (the page's benchmark mode, ?bench=<messages>), prints
# p50/p95, and fails when 5,000 messages need more than 16.7 ms of work per frame at p95.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/setup.sh
trunk build --release
cargo run --quiet --release -p crosstalk-tests --bin frame-budget
