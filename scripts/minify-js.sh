#!/usr/bin/env bash
# Minifies the JS glue wasm-bindgen writes (terser: whitespace, comments, local names; exported
# names and the WebAssembly imports' keys stay), then puts the minified file's SHA-384 in place
# of the old one in index.html, whose <link rel="modulepreload" integrity=…> the browser checks.
# Trunk minifies the CSS and HTML itself (`minify = "on_release"`); its JS minifier (minify-js)
# cannot parse this file's `export default` and leaves it as it is ("Failed to minify JS" in the
# build log). Release builds only, like scripts/precompress.sh; scripts/setup.sh installs terser into .tools/.
set -euo pipefail
dir=${1:-${TRUNK_STAGING_DIR:?give a folder, or run it as the post-build hook of Trunk}}
if [ -n "${TRUNK_PROFILE:-}" ] && [ "$TRUNK_PROFILE" != release ]; then
  exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
terser="$root/.tools/node_modules/.bin/terser"
[ -x "$terser" ] || { echo "minify-js: $terser is missing: run scripts/setup.sh" >&2; exit 1; }
# Node is here already (npm installs wasm-opt and terser); its crypto gives the SRI digest.
sri() {
  node -e 'const c = require("crypto"), f = require("fs");
    process.stdout.write("sha384-" + c.createHash("sha384").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
}
for file in "$dir"/*.js; do
  [ -e "$file" ] || continue
  before=$(sri "$file")
  "$terser" "$file" --module --compress --mangle --output "$file.min"
  mv "$file.min" "$file"
  after=$(sri "$file")
  grep -qF "$before" "$dir/index.html" || { echo "minify-js: index.html has no integrity $before for $(basename "$file")" >&2; exit 1; }
  sed -i "s|$before|$after|g" "$dir/index.html"
done
