#!/usr/bin/env bash
# Builds the docker example's test image without any registry: suite.c
# compiled with `gcc -static`, alone in an image FROM scratch (no shell, no
# tar). Needs gcc with glibc's static libraries (Debian/Ubuntu: build-essential)
# and the docker CLI talking to a Docker engine.
#
#   examples/docker/build-image.sh          # the suite passes (4 passed, 1 skipped)
#   examples/docker/build-image.sh --fail   # one case fails and the suite exits 1
#
# Both build the same tag (PROVA_EXAMPLE_IMAGE, default
# prova-example/junit-suite:1), the one examples/docker/docker.yaml runs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${PROVA_EXAMPLE_IMAGE:-prova-example/junit-suite:1}
cmd='[]'
case "${1:-}" in
  "") ;;
  --fail) cmd='["--fail"]' ;;
  *) echo "usage: $0 [--fail]" >&2; exit 2 ;;
esac

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
gcc -static -O2 -o "$ctx/suite" "$here/suite.c"
cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY suite /suite
ENTRYPOINT ["/suite"]
CMD $cmd
DOCKERFILE
docker build --quiet --tag "$image" "$ctx" >/dev/null
echo "built $image ($(if [ "$cmd" = '[]' ]; then echo passing; else echo failing; fi)): $(docker image inspect --format '{{.Size}}' "$image") bytes, FROM scratch"
