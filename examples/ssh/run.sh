#!/usr/bin/env bash
# Runs examples/ssh/sshcmd.yaml against a throwaway sshd on 127.0.0.1
# (scripts/sshd.sh: installs Debian's openssh-server if needed), then stops it.
#   examples/ssh/run.sh [prova run options, e.g. --junit junit.xml]
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(scripts/sshd.sh start)"
trap 'scripts/sshd.sh stop "$PROVA_TEST_SSHD_DIR"' EXIT
# The descriptor beside the server's id_ed25519 and known_hosts, with its
# port and login user.
sed -e "s/port: \[\"2222\"\]/port: [\"$PROVA_TEST_SSH_PORT\"]/" \
    -e "s/user: \[tester\]/user: [$PROVA_TEST_SSH_USER]/" \
    examples/ssh/sshcmd.yaml >"$PROVA_TEST_SSHD_DIR/sshcmd.yaml"
cargo run -q -p prova-cli -- run "$PROVA_TEST_SSHD_DIR/sshcmd.yaml" "$@"
