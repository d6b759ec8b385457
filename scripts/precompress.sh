#!/usr/bin/env bash
# Makes the brotli (.br) and gzip (.gz) copies of the page's text and WebAssembly files in a
# folder (Trunk's staging folder, when run as its post-build hook), so the server sends them
# compressed at the highest levels without compressing per request. Release builds only:
# `trunk serve` rebuilds skip it (brotli at level 11 and zopfli take seconds). The gzip copies
# are zopfli's: the same gzip format any browser or proxy reads, about 4 % smaller than
# `gzip -9` (a deflate encoder that searches harder, once, at build time). Needs `brotli` and
# `zopfli` (scripts/setup.sh installs both).
set -euo pipefail
dir=${1:-${TRUNK_STAGING_DIR:?give a folder, or run it as the post-build hook of Trunk}}
if [ -n "${TRUNK_PROFILE:-}" ] && [ "$TRUNK_PROFILE" != release ]; then
  exit 0
fi
for file in "$dir"/*.wasm "$dir"/*.js "$dir"/*.css "$dir"/*.html; do
  [ -e "$file" ] || continue
  # zopfli writes no name and a zero time into the header, so the copy is the same every build.
  zopfli --gzip -c "$file" >"$file.gz"
  brotli --quality=11 --keep --force "$file"
done
