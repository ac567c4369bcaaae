#!/bin/sh
# The project's C and OpenCL C sources through clang-format (.clang-format):
#   tools/format.sh          rewrite them in place
#   tools/format.sh --check  list the files that differ and exit 1 if any does (CI)
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' '*.cl' | grep -v '^lib/device/kernels_gen.c$')
if [ "${1:-}" = --check ]; then
  bad=0
  for f in $files; do
    if ! clang-format --assume-filename="${f%.cl}.c" "$f" | cmp -s - "$f"; then echo "not formatted: $f"; bad=1; fi
  done
  [ $bad = 0 ] && echo "clang-format: $(echo "$files" | wc -w) files formatted"
  exit $bad
fi
for f in $files; do
  clang-format --assume-filename="${f%.cl}.c" "$f" > "$f.fmt.tmp" && mv "$f.fmt.tmp" "$f"
done
