#!/usr/bin/env bash
# Makes (or refreshes) the virtual environment of the Python consumers in
# DIR (default deploy/kafka/python/.venv) and prints its python's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/.venv}"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$dir/bin/python" ]; then
  "$py" -m venv "$dir" >&2
fi
stamp="$dir/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
echo "$dir/bin/python"
