#!/usr/bin/env bash
# Sets up everything wsgiloop's examples and tests need, idempotently:
# Debian packages (python3-venv when missing), a virtualenv in .venv, and the package
# with its test and example extras.  Sourced by serve-example.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; return 1; fi
}

apt_install() {
    command -v apt-get >/dev/null || { echo "setup: please install: $*" >&2; return 1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Debian packages the tests drive for real: nginx and HAProxy in front of wsgiloop,
# systemd's socket-activation and unit-checking tools, and a headless Chromium (with its
# driver) for the browser tests.
# (Listed by the program each package provides; only missing ones are installed.)
missing=()
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/bin/systemd-socket-activate ] || missing+=(systemd)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,examples]"
