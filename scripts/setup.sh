#!/usr/bin/env bash
# Installs what building and testing Crosstalk needs on a fresh Debian machine, skipping what is
# already there: Chromium and its driver, brotli and zopfli (the page's precompressed copies), RabbitMQ (the live runtime's AMQP tests), the wasm32
# target, Trunk, wasm-bindgen-cli at the version Cargo.lock pins, wasm-opt (binaryen from npm: Debian's is too old and silently breaks the page) and terser (npm).
# Source it (`. scripts/setup.sh`) to get wasm-opt on PATH; running it works too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'setup: %s\n' "$*" >&2; }

TRUNK_VERSION=0.21.14
wasm_bindgen_version=$(grep -A1 '^name = "wasm-bindgen"$' "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')
wasm_opt_version=$(sed -n 's/^wasm_opt = "version_\([0-9]*\)"/\1/p' "$root/Trunk.toml")
wasm_bindgen_pin=$(sed -n 's/^wasm_bindgen = "\(.*\)"/\1/p' "$root/Trunk.toml")
if [ "$wasm_bindgen_version" != "$wasm_bindgen_pin" ]; then
  say "Cargo.lock has wasm-bindgen $wasm_bindgen_version but Trunk.toml pins $wasm_bindgen_pin: bump them together"
  exit 1
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  say "installing chromium and chromium-driver (apt)"
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Release builds of the page leave brotli and gzip copies of its files (scripts/precompress.sh):
# brotli's, and zopfli's for the gzip ones (smaller than gzip -9, readable by any gzip reader).
if ! command -v brotli >/dev/null; then
  say "installing brotli (apt)"
  apt-get update -qq
  apt-get install -y -qq brotli >/dev/null
fi
if ! command -v zopfli >/dev/null; then
  say "installing zopfli (apt)"
  apt-get update -qq
  apt-get install -y -qq zopfli >/dev/null
fi

# The live runtime's tests run against a real RabbitMQ (Debian's package).
if ! command -v rabbitmq-server >/dev/null; then
  say "installing rabbitmq-server (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION (takes about 8 minutes)"
  cargo install --locked "trunk@$TRUNK_VERSION"
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen_version" ]; then
  say "installing wasm-bindgen-cli $wasm_bindgen_version (takes about 3 minutes)"
  # Not --locked: its lock file wants a crate version the registry mirror may lack.
  cargo install --force wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

tools="$root/.tools"
# Two tools from npm, installed together (npm removes from the folder what one install does not
# name): wasm-opt, and terser, which minifies the page's JS glue (scripts/minify-js.sh).
terser_version=5.51.4
if [ "$("$tools/node_modules/.bin/wasm-opt" --version 2>/dev/null | cut -d' ' -f3)" != "$wasm_opt_version" ] ||
  [ "$("$tools/node_modules/.bin/terser" --version 2>/dev/null)" != "terser $terser_version" ]; then
  say "installing wasm-opt $wasm_opt_version (binaryen) and terser $terser_version from npm"
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-save --no-audit --no-fund "binaryen@$wasm_opt_version.0.0" "terser@$terser_version" >/dev/null)
fi
export PATH="$tools/node_modules/.bin:$PATH"

# Trunk builds offline, so every crate must be in the local registry first.
(cd "$root" && cargo fetch --quiet)
