#!/usr/bin/env bash
# The API reference (make docs): Doxygen over the public headers, with
# docs/Doxyfile.  Any warning -- an undocumented public name, a @param that
# names no parameter -- fails, and the warnings are printed.  The HTML goes
# to build/docs/html/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh docs

out=build/docs
rm -rf "$out"
mkdir -p "$out/include/hyperbuf"
# hyperbuf/config.h as a build generates it (the value does not matter).
sed 's/@HB_CHECKED_VALUE@/0/' include/hyperbuf/config.h.in \
  >"$out/include/hyperbuf/config.h"

# Doxygen lists (and so checks) a header's functions, macros and typedefs
# only if the header has an @file block: every public header needs one.
for h in include/*.h include/*.hpp; do
  if ! grep -q '@file' "$h"; then
    echo "docs: FAILED: $h has no /** @file */ block" >&2
    exit 1
  fi
done

echo "docs: doxygen $(doxygen --version)"
if ! doxygen docs/Doxyfile || [ -s "$out/warnings.log" ]; then
  cat "$out/warnings.log" >&2
  echo "docs: FAILED: $(wc -l <"$out/warnings.log") warning line(s)" >&2
  exit 1
fi
echo "docs: $out/html/index.html"
