#!/bin/sh
# Builds the Crossroads image offline: the binary is compiled here, outside
# Docker, from the local Go module cache, and copied into a FROM scratch
# image (deploy/Dockerfile). Usage: deploy/build-image.sh [TAG]
set -eu
cd "$(dirname "$0")/.."
tag=${1:-crossroads:dev}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT INT TERM
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/crossroads" ./cmd/crossroads
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
printf 'crossroads:x:65532:65532:Crossroads hub:/var/lib/crossroads:/nonexistent\n' >"$ctx/passwd"
printf 'crossroads:x:65532:\n' >"$ctx/group"
mkdir "$ctx/empty"
cp deploy/Dockerfile "$ctx/Dockerfile"
docker build --pull=false -t "$tag" "$ctx"
