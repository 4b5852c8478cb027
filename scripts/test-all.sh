#!/usr/bin/env bash
# Install everything the test suite needs on a Debian machine (browsers included) and run the whole suite:
# unit tests, then the real-browser matrix on Chromium, Firefox ESR and WebKitGTK.
# Needs root (or sudo) for apt-get; everything Python goes into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(chromium firefox-esr webkit2gtk-driver xvfb xauth redis-server nginx)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test-all: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv .venv
  }
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

# Firefox (driven over WebDriver BiDi) wants a HOME its user owns.
export HOME="${HOME:-/root}"
exec .venv/bin/python -m pytest "$@"
