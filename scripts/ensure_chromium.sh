#!/usr/bin/env bash
# CI only: the browser tests need Debian's Chromium at /usr/bin/chromium. Install it when absent
# (needs root for apt-get). Without it the browser tests fail in CI (they skip on a laptop).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "[ci] /usr/bin/chromium is missing and apt-get needs root: the browser tests will fail" >&2
    exit 0
fi
echo "[ci] installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium
