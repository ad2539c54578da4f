#!/usr/bin/env bash
# The console's browser tests need Debian's headless Chromium and its ChromeDriver
# (/usr/bin/chromium, /usr/bin/chromedriver): install them when missing. The tests fail,
# never skip, without them.
set -euo pipefail
if command -v chromedriver > /dev/null && command -v chromium > /dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium chromium-driver
