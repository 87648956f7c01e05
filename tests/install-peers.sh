#!/usr/bin/env bash
# The Debian packages the tests talk to, installed if missing: a real Prometheus Alertmanager
# (the notification tests start their own, on a free 127.0.0.1 port), openssl (for the
# certificate of the SMTP test's STARTTLS) and Chromium (the browser the web page's tests drive
# through Playwright, at /usr/bin/chromium: Playwright never downloads a browser of its own).
set -euo pipefail
missing=()
for package in prometheus-alertmanager openssl chromium; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y -qq "${missing[@]}" \
    || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq "${missing[@]}"; }
