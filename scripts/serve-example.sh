#!/usr/bin/env bash
# Sets everything up (see setup.sh) and serves the Flask example on
# http://127.0.0.1:8000 (extra arguments go to wsgiloop, e.g. --bind 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/wsgiloop examples.flask_app:app --access-log - "$@"
