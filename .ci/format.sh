#!/usr/bin/env bash
# Every tracked C++ file formatted by the pinned clang-format (.clang-format names the version).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format-14 >/dev/null 2>&1; then
  sudo apt-get install -y --no-install-recommends clang-format-14 >/dev/null
fi
git ls-files -z '*.cpp' '*.hpp' '*.h' '*.cc' | xargs -0 clang-format-14 --dry-run --Werror
echo "format: $(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc' | wc -l) files match .clang-format"
