#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages onair needs, only those missing. Idempotent.
#   scripts/install-prereqs.sh          ffmpeg (server); chromium, an emoji font, redis-server, postgresql and haproxy
#                                       (tests, npm run cluster);
#                                       python3-venv + schemathesis from PyPI in its own venv (npm run test:hostile)
#   scripts/install-prereqs.sh --bench  also nginx + nginx-rtmp, wrk (benchmark peers)
#   scripts/install-prereqs.sh --seaweedfs
#                                       also builds SeaweedFS's `weed` (an S3 server for the recording tests) once with
#                                       the Go toolchain into $(go env GOPATH)/bin; 10-25 minutes on 2 cores
set -euo pipefail

want=(ffmpeg chromium fonts-noto-color-emoji redis-server postgresql haproxy python3 python3-venv)
if [[ " $* " == *" --bench "* ]]; then want+=(nginx libnginx-mod-rtmp wrk); fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-prereqs: all present (${want[*]})"
else
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  echo "install-prereqs: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "install-prereqs: done"
fi

# The API fuzzer of test/hostile (pinned; only PyPI is needed). Its own venv: Debian's Python refuses global pip installs.
SCHEMATHESIS_VERSION=4.32.5
venv="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/onair/schemathesis-$SCHEMATHESIS_VERSION}"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
  echo "install-prereqs: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$venv/bin/schemathesis" --version >/dev/null

# SeaweedFS, pinned. `go install` refuses the module (its go.mod has replace directives), so build it from the
# downloaded module source instead.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
if [[ " $* " == *" --seaweedfs "* ]]; then
  weed="$(go env GOPATH)/bin/weed"
  if [[ ! -x "$weed" ]]; then
    echo "install-prereqs: building SeaweedFS $SEAWEEDFS_VERSION into $weed"
    dir="$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    (cd "$dir" && go build -o "$weed" ./weed)
  fi
  "$weed" version >/dev/null
fi
