#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages onair needs, only those missing. Idempotent.
#   scripts/install-prereqs.sh          ffmpeg (server); chromium, an emoji font, redis-server and postgresql (tests)
#   scripts/install-prereqs.sh --bench  also nginx + nginx-rtmp, wrk (benchmark peers)
set -euo pipefail

want=(ffmpeg chromium fonts-noto-color-emoji redis-server postgresql)
if [[ "${1:-}" == "--bench" ]]; then want+=(nginx libnginx-mod-rtmp wrk); fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-prereqs: all present (${want[*]})"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "install-prereqs: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
echo "install-prereqs: done"
