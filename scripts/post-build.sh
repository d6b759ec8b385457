#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): minifies the JS glue, then writes the compressed copies,
# in that order (the copies must be of the minified file). Both skip builds that are not release.
set -euo pipefail
scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$scripts/minify-js.sh" "$@"
bash "$scripts/precompress.sh" "$@"
