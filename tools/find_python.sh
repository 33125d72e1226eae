#!/usr/bin/env bash
# Print the path of a Python interpreter named like "python3.13", or explain why there is none.
#   tools/find_python.sh python3.13
# With pyenv: its newest installed 3.13.x (even when it is not the active version);
# otherwise the name on PATH. The interpreter must really run (a pyenv shim for a
# version that is not active does not count).
set -euo pipefail
name="${1:?usage: tools/find_python.sh python3.X}"
want="${name#python}"                       # "3.13"
runs() { "$1" -c 'import sys' >/dev/null 2>&1; }
if command -v pyenv >/dev/null 2>&1; then
  version=$(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1 || true)
  if [ -n "$version" ]; then
    path=$(PYENV_VERSION="$version" pyenv which "$name" 2>/dev/null || true)
    if [ -n "$path" ] && runs "$path"; then echo "$path"; exit 0; fi
  fi
fi
if path=$(command -v "$name" 2>/dev/null) && runs "$path"; then echo "$path"; exit 0; fi
echo "error: $name was not found (not on PATH${version:+, pyenv has $version but gave no $name}$(command -v pyenv >/dev/null 2>&1 || echo ', no pyenv')). Install it (pyenv install $want, or apt/brew python$want) or name another: make test-pythons PYTHON_HIGH=python3.X" >&2
exit 1
