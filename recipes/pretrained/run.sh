#!/usr/bin/env bash
# Rebuild the model shipped in speakerid/pretrained/ from ../shared (about 25 minutes on 2 cores).
# Stages: 1 manifest, 2 train, 3 pack, 4 measure, 5 install; resume with --stage N. See README.md here.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
exec "$PY" recipes/pretrained/build.py "$@"
