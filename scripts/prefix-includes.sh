#!/usr/bin/env bash
# Rewrites the project's own includes to go through the `sluice/` prefix:
#   #include "core/batch.hpp"  ->  #include "sluice/core/batch.hpp"
# for every top-level folder of the repo that holds C++ sources (core, api, sources, ...,
# samples, tests, tools, bench), in every tracked or new (not ignored) C++ source, CMake
# template and Markdown file. Idempotent: an include that already starts with `sluice/`,
# a relative one ("../engine/x.hpp") or one of a file beside it ("job_helpers.hpp") is left
# alone, so the script can be run again after merging a branch written in the old style.
#
# Why: installed headers live in <prefix>/include/sluice/<folder>/, and a user puts only
# <prefix>/include on the include path. A header saying "core/batch.hpp" would need
# <prefix>/include/sluice there too, and would clash with any other library's "core/".
#
# How the build tree resolves the prefix: CMake makes ${CMAKE_BINARY_DIR}/include/sluice a
# symbolic link to the source root (cmake/sluice_helpers.cmake, sluice_include_root) and
# puts ${CMAKE_BINARY_DIR}/include on the include path; the source root itself is not on it,
# so an unprefixed include fails to compile in-tree as it would for a user. A link rather
# than a configured copy: edits are seen at once without a re-configure, ninja's depfiles
# stat the real files through it, ccache hashes header contents (not their paths), and the
# checkheaders target compiles "sluice/<folder>/x.hpp" exactly as a user would write it.
#
# Usage: scripts/prefix-includes.sh   (from anywhere inside the repo; prints what it changed)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The folders: every top-level directory with a C++ source or header in it.
mapfile -t folders < <(git ls-files --cached --others --exclude-standard -- '*.hpp' '*.cpp' '*.h' |
                       awk -F/ 'NF > 1 { print $1 }' | sort -u)
if ((${#folders[@]} == 0)); then
  echo "prefix-includes: no source folders found under $root" >&2
  exit 1
fi
alternation="$(IFS='|'; echo "${folders[*]}")"

mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
                       '*.hpp' '*.cpp' '*.h' '*.in' '*.md' | sort -u)
changed=0
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  if grep -qE "#include ([\"<])($alternation)/" "$f"; then
    sed -i -E "s@#include ([\"<])($alternation)/@#include \\1sluice/\\2/@g" "$f"
    echo "prefix-includes: $f"
    changed=$((changed + 1))
  fi
done
echo "prefix-includes: ${changed} file(s) rewritten (folders: ${folders[*]})"
