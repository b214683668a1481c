#!/usr/bin/env bash
# The one build command of the release binary: a static, reproducible
# emma-gateway with its version stamped in. CI (.ci/run) and the container
# image (deploy/Dockerfile) both run this script, so what CI tests is what
# ships.
#
#   bash deploy/build.sh OUTPUT VERSION
set -euo pipefail
out=${1:?usage: deploy/build.sh OUTPUT VERSION}
version=${2:?usage: deploy/build.sh OUTPUT VERSION}
case $out in
/*) ;;
*) out="$PWD/$out" ;;
esac
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/emma-gateway
