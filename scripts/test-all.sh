#!/usr/bin/env bash
# Install everything the test suite needs on a Debian machine (browsers included) and run the whole suite:
# unit tests, then the real-browser matrix on Chromium, Firefox ESR and WebKitGTK.
# Needs root (or sudo) for apt-get and for mapping the test hostnames to loopback in /etc/hosts; everything Python
# goes into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

packages=(chromium firefox-esr webkit2gtk-driver xvfb xauth redis-server nginx)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "test-all: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv .venv
  }
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

# Node runs the browser scripts' unit tests (tests/js) and checks that static/mangled/ is what tools/terser makes
# of the readable sources. Installing or running cookiebridge never needs it.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test-all: installing Node.js"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --prefix tools/terser --no-audit --no-fund --loglevel=error >/dev/null

# The browser tests also run on hostnames (bridge.test, www.domain-a.test, ...: HOSTNAMES in e2e/drivers.py), which
# all three engines resolve through /etc/hosts. Our lines live between two markers and are rewritten only when
# they differ; the file is written in place, since /etc/hosts is often a bind mount that cannot be replaced.
begin="# cookiebridge e2e hostnames: begin" end="# cookiebridge e2e hostnames: end"
wanted=$(.venv/bin/python -c 'from e2e.drivers import hosts_lines; print(hosts_lines())')
current=$(sed -n "/^$begin\$/,/^$end\$/p" /etc/hosts)
if [ "$current" != "$(printf '%s\n%s\n%s' "$begin" "$wanted" "$end")" ]; then
  echo "test-all: mapping the test hostnames to loopback in /etc/hosts"
  hosts=$(sed "/^$begin\$/,/^$end\$/d" /etc/hosts)
  printf '%s\n%s\n%s\n%s\n' "$hosts" "$begin" "$wanted" "$end" | $sudo tee /etc/hosts >/dev/null
fi
# Fails loudly (and stops the run) when a name still does not resolve to its address.
.venv/bin/python -c 'from e2e.drivers import check_hostnames; check_hostnames()'

# Firefox (driven over WebDriver BiDi) wants a HOME its user owns.
export HOME="${HOME:-/root}"
# The browser tests spend most of their time waiting on the pages' own timers (the widget's plugin loads and polls),
# so three pytest-xdist workers finish the run in about half the time even on two cores; TEST_WORKERS=0 runs it in
# one process, and an -n given on the command line wins over this one.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-3}" --dist worksteal "$@"
