#!/usr/bin/env bash
# Prints the page's transfer size — each file of dist/ as the server sends it: its gzip and
# brotli copies made at build time by scripts/precompress.sh (or, for a dist/ built without them,
# zopfli and brotli -q 11 now) — and fails when the wasm, JS and CSS together exceed the gzip or the brotli budget.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The budgets are the page as it was (532,080 B gzip, 414,947 B brotli, after issue 9's second
# size pass: the maps and sets of `shared` and the page share their trees through
# shared/src/slot_map.rs; then +6.4 KB for the rows the index's copies of the world share,
# shared/src/shared_map.rs; then −4.1 KB for the embed's postMessage API without
# serde_json::Value, −4.2 KB for reading the broker's stored events by hand and −1.8 KB for one
# reader of every tag and unit enum the page reads, shared/src/protocol/read.rs) plus under 1 KB,
# so size can only go down from here. Since: +0.6 KB for the embed's fix (a posted object read one
# level deep, its fields sorted once): 532,682 / 415,418. Stop 20: +0.4 KB to keep two message
# labels on one lane from printing over each other (components/map.rs, `labels_apart`), +0.2 KB
# for issue 9's fourth memory pass (shared_log.rs, the interner's hash table), +0.1 KB for its
# fifth (the interner's table dropped when complete): 533,393 / 416,232; −0.2 KB after the
# review: 533,184 / 415,907. Issue 9's fourth size pass: −39.8 KB gzip for one keyed list, one
# Show, boxed event handlers and shared reactive closures for the whole page
# (frontend/src/components/mod.rs) and no tree code for the enum-keyed maps: 493,377 / 389,371.
# Issue 9's fifth size pass: −3.7 KB gzip for attributes set by name (`components::attr`, one
# attribute type per value type): 489,667 / 386,073; main's engine-speed work merged in
# (+1.1 KB): 490,781 / 386,881; issue 9's sixth memory pass (16-byte event records, outbox
# values' prefixes, shared/src/event_store.rs) +0.6 KB: 491,342 / 387,422. Stop 22: issue 9's
# sixth size pass −31.3 KB gzip (read.rs' `read_fields!`, dense maps by service, no Unicode case
# tables), its seventh memory pass +1.0 KB and second engine pass +0.3 KB: 461,302 / 365,914;
# +0.8 KB to refuse a recorded trace naming a service its header does not list (the maps by
# service are vectors now): 462,148 / 366,738. Issue 9's seventh size pass (`shared`): −4.6 KB gzip
# for the knobs as a `SlotMap<String, f64>` and the maps by (service, name), (copy, key) and
# (row, version) nested on the trees every other map has: 457,753 / 363,524. The gzip copies made
# by zopfli instead of gzip -9 (same format, same bytes when read): −18.6 KB gzip: 439,126.
# Issue 9's seventh size pass of the page's views: −27.6 KB gzip / −18.8 KB brotli (measured
# before merging the two above) for one memo, signal, effect and event-listener type for the whole
# page (frontend/src/components/mod.rs: `Computed`, `Var`, `effect`, `listen`), optional or listed
# views as `AnyView`s and no `f64` attribute values: 411,829 / 344,904. Issue 9's third engine
# pass merged in (inline message labels, `protocol::Label`; fewer copies): +0.6 / +0.8 KB:
# 412,474 / 345,672; the fault form disabled while there is no run to break: 412,564 / 345,583;
# the deepest queue computed by one function (`Metrics::deepest_queue`): 412,438 / 345,654.
# Issue 9's eighth size pass: numbers read by `shared::decimal_text::parse_f64`, not core's float
# parser (its code and 10.4 KB table of powers of five): −14.0 / −12.3 KB: 398,397 / 333,334.
# Core's float formatting out too (shared/src/float_text.rs): −6.6 / −5.9 KB on its own; both: 392,229 / 327,414.
# The id-keyed trees pass: the interner's rows and the maps by timer, message and operation keyed by
# a u64 (TimerMap, MsgMap, OpMap): −2.8 / −2.1 KB: 389,447 / 325,362.
# The CSS and index.html minified by Trunk, the JS glue by terser (scripts/minify-js.sh): −3.5 / −3.0 KB:
# 388,713 / 324,437. LLVM's inline threshold 0 for WebAssembly (.cargo/config.toml): −1.6 / −1.1 KB:
# 387,155 / 323,382. Measured each on its own on 392,229 / 327,414; all three merged: 384,789 / 321,421.
# Issue 9's ninth size pass: everything the page reads as JSON through shared/src/json.rs, not
# serde's deserializer and visitors: −12.6 / −9.4 KB: 379,617 / 318,018 on its own. All merged: 374,196 / 313,324.
# Stop 26: issue 9's tenth size passes — `shared` writes the page's JSON by hand (no serde left in
# the page) and checks required fields before taking any: −5.2 / −3.4 KB; the page's views with
# fewer Leptos instantiations (String values, AnyViews, one context, no NodeRef, its own `show`,
# one sort): −15.1 / −10.7 KB; the views below the map holding still off screen +1.7 / +0.3 KB;
# wasm-opt -O3 instead of -Oz: −1.1 / −1.4 KB; then the functions in name order
# (index.html's data-wasm-opt-params): −8.3 / −1.8 KB. All merged: 347,661 / 297,440.
# Where the bytes go, by twiggy on the wasm before wasm-bindgen (`CARGO_TARGET_DIR=target/page
# trunk build --release`, then `twiggy top` on
# target/page/wasm32-unknown-unknown/wasm-release/frontend.wasm; build with RUSTFLAGS="-C
# symbol-mangling-version=v0" to see each generic's type arguments), of its 1.8 MB of code and
# data: the view code of tachys/leptos/reactive_graph about 25 %, monomorphized core and alloc
# about 19 % (BTreeMap 5 %: one tree per key type is left, `u64` for every id, and a few maps
# keyed by an enum or a knob name; 28.3 KB of `BTreeMap` functions before wasm-opt), the page's own code 12 % and `shared` 12 % (the fold, the
# checker, the services), read-only data (mostly strings) 9 % (before stop 26; serde, 6 % then, is gone).
# Stop 27: 346,160 / 296,163. Stop 28, the one raise, for issue 9's other target: the simulation
# built for speed in a crate of its own (engine/, opt-level 2; 0.62-0.67x -> 0.77x native in
# Chromium) +2,072 / +1,443 B, after keeping its run-once code out of that crate's instances
# (the header moved, not cloned; `seed_tables` not generic; `Envelope::copy_as`): 348,232 / 297,606.
BUDGET_GZIP_BYTES=${BUDGET_GZIP_BYTES:-348300}
BUDGET_BROTLI_BYTES=${BUDGET_BROTLI_BYTES:-297680}
compressed_size() { # file, extension, command that compresses the file to stdout
  if [ -e "$1.$2" ]; then wc -c <"$1.$2"; else $3 "$1" | wc -c; fi
}
total_gz=0
total_br=0
for file in "$root"/dist/*.wasm "$root"/dist/*.js "$root"/dist/*.css; do
  [ -e "$file" ] || continue
  raw=$(wc -c <"$file")
  # A copy the server sends must be its file, byte for byte (not a stale or broken one).
  if [ -e "$file.gz" ] && ! gzip -dc "$file.gz" | cmp -s - "$file"; then
    echo "size: $(basename "$file").gz is not a gzip copy of its file" >&2; exit 1
  fi
  if [ -e "$file.br" ] && ! brotli -dc "$file.br" | cmp -s - "$file"; then
    echo "size: $(basename "$file").br is not a brotli copy of its file" >&2; exit 1
  fi
  gz=$(compressed_size "$file" gz "zopfli --gzip -c")
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
