#!/usr/bin/env bash
# Prints the page's transfer size — each file of dist/ as the server sends it: its gzip and
# brotli copies made at build time (or, for a dist/ built without them, gzip -9 and brotli -q 11
# now) — and fails when the wasm, JS and CSS together exceed the gzip or the brotli budget.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The budgets are the page as it is (593,641 B gzip, 455,458 B brotli, after issue 9's size work
# and the capacity and resilience patterns) plus under 1 KB, so size can only go down from here.
# Where the bytes go, by twiggy on the wasm before wasm-bindgen (`CARGO_TARGET_DIR=target/page
# trunk build --release`, then `twiggy top` on
# target/page/wasm32-unknown-unknown/wasm-release/frontend.wasm; build with RUSTFLAGS="-C
# symbol-mangling-version=v0" to see each generic's type arguments): the view code of
# tachys/leptos about 30 %, monomorphized core and alloc about 25 % (mostly BTreeMap: about 40
# key/value types each carry their own insert, remove, merge and drop; one stable sort is left,
# shared/src/ordered.rs), serde about 4 %, read-only data (mostly strings) 8 %.
BUDGET_GZIP_BYTES=${BUDGET_GZIP_BYTES:-594500}
BUDGET_BROTLI_BYTES=${BUDGET_BROTLI_BYTES:-456500}
compressed_size() { # file, extension, command
  if [ -e "$1.$2" ]; then wc -c <"$1.$2"; else $3 <"$1" | wc -c; fi
}
total_gz=0
total_br=0
for file in "$root"/dist/*.wasm "$root"/dist/*.js "$root"/dist/*.css; do
  [ -e "$file" ] || continue
  raw=$(wc -c <"$file")
  gz=$(compressed_size "$file" gz "gzip -9c")
  br=$(compressed_size "$file" br "brotli -q 11 -c")
  total_gz=$((total_gz + gz))
  total_br=$((total_br + br))
  printf 'size: %-40s %9d bytes, %8d gzip, %8d brotli\n' "$(basename "$file")" "$raw" "$gz" "$br"
done
printf 'size: page total %d bytes gzip (budget %d), %d bytes brotli (budget %d)\n' \
  "$total_gz" "$BUDGET_GZIP_BYTES" "$total_br" "$BUDGET_BROTLI_BYTES"
[ "$total_gz" -gt 0 ] || { echo "size: dist/ is empty: build the page first" >&2; exit 1; }
[ "$total_gz" -le "$BUDGET_GZIP_BYTES" ] || { echo "size: over the gzip budget" >&2; exit 1; }
[ "$total_br" -le "$BUDGET_BROTLI_BYTES" ] || { echo "size: over the brotli budget" >&2; exit 1; }
