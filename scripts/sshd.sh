#!/usr/bin/env bash
# Starts a throwaway OpenSSH server for the SSH steps' tests, installing
# Debian's openssh-server first if sshd is missing, and prints what the
# tests need to reach it.
#
#   eval "$(scripts/sshd.sh start)"   exports the PROVA_TEST_SSH* variables below
#   scripts/sshd.sh stop              stops $PROVA_TEST_SSHD_DIR's server, or every
#                                     server this script started if it is unset
#   scripts/sshd.sh stop DIR          stops the server whose state is in DIR
#
# The server listens on 127.0.0.1 only, at a free port, with its own config,
# host key and logs in a fresh state directory (never /etc/ssh, never port
# 22). Each `start` starts an independent server; set PROVA_SSHD_DIR to a
# fixed directory to reuse a running one instead.
#
#   PROVA_TEST_SSH_HOST            127.0.0.1
#   PROVA_TEST_SSH_PORT            the port
#   PROVA_TEST_SSH_USER            user that logs in with PROVA_TEST_SSH_KEY
#   PROVA_TEST_SSH_KEY             its private key (ed25519, no passphrase)
#   PROVA_TEST_SSH_WRONG_KEY       a private key that is authorised for nobody
#   PROVA_TEST_SSH_PASSWORD_USER   user that logs in with PROVA_TEST_SSH_PASSWORD
#   PROVA_TEST_SSH_PASSWORD        (both empty when not run as root: sshd needs
#                                  root to check passwords)
#   PROVA_TEST_SSH_KNOWN_HOSTS     known_hosts with the server's key for [127.0.0.1]:PORT
#   PROVA_TEST_SSH_BAD_KNOWN_HOSTS known_hosts with another key for [127.0.0.1]:PORT
#   PROVA_TEST_SSH_FINGERPRINT     the host key's SHA256:... fingerprint
#   PROVA_TEST_SSHD_PID            the listening sshd's PID
#   PROVA_TEST_SSHD_DIR            the state directory (config, keys, sshd.log)
#
# As root the login user is `prova-ssh` (created if missing, home
# /var/lib/prova-ssh), for keys and password alike, so tests can check that
# no process of that user is left behind. Its password is generated on the
# first start and locked again when the last server stops.
set -euo pipefail

SSH_USER=prova-ssh
SSH_HOME=/var/lib/prova-ssh
BASE="${TMPDIR:-/tmp}"
PASSFILE="$BASE/prova-test-sshd.password"
# Every state directory a start used (PROVA_SSHD_DIR ones live anywhere), so
# a stop knows whether another server still needs the login user unlocked.
DIRS_FILE="$BASE/prova-test-sshd.dirs"

log() { echo "sshd.sh: $*" >&2; }

is_root() { [ "$(id -u)" = 0 ]; }

# Debian's package, without letting its postinst start the system's sshd:
# a policy-rc.d that refuses is put in place for the install if none exists.
sshd_bin() {
  local bin
  bin=$(command -v sshd || true)
  [ -z "$bin" ] && [ -x /usr/sbin/sshd ] && bin=/usr/sbin/sshd
  if [ -z "$bin" ]; then
    log "installing openssh-server from Debian's packages"
    local sudo=""
    is_root || sudo="sudo"
    local policy=/usr/sbin/policy-rc.d added=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
      $sudo chmod 755 "$policy"
      added=1
    fi
    local rc=0
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || rc=$?
    [ "$rc" = 0 ] && { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >&2 || rc=$?; }
    [ -n "$added" ] && $sudo rm -f "$policy"
    [ "$rc" = 0 ] || { log "could not install openssh-server"; exit 1; }
    bin=/usr/sbin/sshd
  fi
  echo "$bin"
}

# A port nothing listens on (TCP, IPv4 or IPv6), from /proc/net.
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == p && $4 == "0A") found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  log "no free port found"
  return 1
}

# True once the port answers with an SSH banner.
answers_ssh() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 4 <&3' _ "$1" 2>/dev/null | grep -q '^SSH-'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The PID in DIR/sshd.pid, if that process is the sshd of DIR's config.
server_pid() {
  local dir=$1 pid
  [ -f "$dir/sshd.pid" ] || return 1
  pid=$(cat "$dir/sshd.pid" 2>/dev/null || true)
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/sshd_config" || return 1
  echo "$pid"
}

q() { printf '%q' "$1"; }

print_exports() {
  local dir=$1
  # shellcheck disable=SC1091
  . "$dir/env"
  local pid
  pid=$(server_pid "$dir")
  echo "export PROVA_TEST_SSH_HOST=127.0.0.1"
  echo "export PROVA_TEST_SSH_PORT=$PORT"
  echo "export PROVA_TEST_SSH_USER=$(q "$KEY_USER")"
  echo "export PROVA_TEST_SSH_KEY=$(q "$dir/id_ed25519")"
  echo "export PROVA_TEST_SSH_WRONG_KEY=$(q "$dir/wrong_ed25519")"
  echo "export PROVA_TEST_SSH_PASSWORD_USER=$(q "$PASSWORD_USER")"
  echo "export PROVA_TEST_SSH_PASSWORD=$(q "$PASSWORD")"
  echo "export PROVA_TEST_SSH_KNOWN_HOSTS=$(q "$dir/known_hosts")"
  echo "export PROVA_TEST_SSH_BAD_KNOWN_HOSTS=$(q "$dir/bad_known_hosts")"
  echo "export PROVA_TEST_SSH_FINGERPRINT=$(q "$FINGERPRINT")"
  echo "export PROVA_TEST_SSHD_PID=$pid"
  echo "export PROVA_TEST_SSHD_DIR=$(q "$dir")"
}

# Root: the login user, with a password shared by every running server of
# this script (a second start must not change the first one's password).
setup_user() {
  if ! id "$SSH_USER" >/dev/null 2>&1; then
    useradd --system --home-dir "$SSH_HOME" --create-home --shell /bin/bash "$SSH_USER"
  fi
  mkdir -p "$SSH_HOME"
  chown "$SSH_USER" "$SSH_HOME"
  local pw=""
  if [ -s "$PASSFILE" ] && [ -n "$(running_dirs)" ]; then
    pw=$(cat "$PASSFILE")
  else
    pw=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
    (umask 077; printf '%s' "$pw" >"$PASSFILE")
  fi
  # Also unlocks the account: with UsePAM no, sshd refuses a locked ("!")
  # account even for key logins.
  echo "$SSH_USER:$pw" | chpasswd
  echo "$pw"
}

running_dirs() {
  local d
  {
    for d in "$BASE"/prova-test-sshd.*/; do echo "${d%/}"; done
    [ -n "${PROVA_SSHD_DIR:-}" ] && echo "$PROVA_SSHD_DIR"
    [ -f "$DIRS_FILE" ] && cat "$DIRS_FILE"
  } | sort -u | while read -r d; do
    [ -d "$d" ] && server_pid "$d" >/dev/null && echo "$d"
  done
  return 0
}

# True when the login user can log in: a stop by another run of this script
# may have locked it while this directory's server kept running.
login_usable() {
  ! is_root || ! passwd -S "$SSH_USER" 2>/dev/null | awk '{ exit $2 != "L" }'
}

start() {
  local bin dir
  bin=$(sshd_bin)
  if [ -n "${PROVA_SSHD_DIR:-}" ]; then
    dir=$PROVA_SSHD_DIR
    if [ -f "$dir/env" ] && server_pid "$dir" >/dev/null && login_usable \
       && { . "$dir/env"; answers_ssh "$PORT"; }; then
      print_exports "$dir"
      return 0
    fi
    stop_dir "$dir"
    mkdir -p "$dir"
  else
    dir=$(mktemp -d "$BASE/prova-test-sshd.XXXXXX")
  fi
  chmod 755 "$dir"
  is_root && mkdir -p /run/sshd && chmod 755 /run/sshd

  # A reused directory keeps a stopped server's keys: make new ones
  # (ssh-keygen would stop to ask before overwriting).
  rm -f "$dir"/ssh_host_ed25519_key* "$dir"/other_host_ed25519_key* \
        "$dir"/id_ed25519* "$dir"/wrong_ed25519*
  ssh-keygen -q -t ed25519 -N '' -C "prova-test-sshd host" -f "$dir/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "prova-test-sshd other host" -f "$dir/other_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "prova-test-sshd user" -f "$dir/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C "prova-test-sshd unauthorised" -f "$dir/wrong_ed25519"

  local key_user password_user password
  if is_root; then
    password=$(setup_user)
    key_user=$SSH_USER
    password_user=$SSH_USER
  else
    key_user=$(id -un)
    password_user=""
    password=""
    log "not root: password login is not set up (sshd can check passwords only as root);" \
        "PROVA_TEST_SSH_PASSWORD_USER and PROVA_TEST_SSH_PASSWORD are empty"
  fi
  mkdir -p "$dir/authorized_keys"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys/$key_user"
  chmod 644 "$dir/authorized_keys/$key_user"

  { [ -f "$DIRS_FILE" ] && cat "$DIRS_FILE"; echo "$dir"; } | sort -u >"$DIRS_FILE.new"
  mv "$DIRS_FILE.new" "$DIRS_FILE"

  local port pid="" attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$dir/sshd_config" <<EOF
# prova's throwaway test sshd (scripts/sshd.sh); not the system's.
Port $port
ListenAddress 127.0.0.1
AddressFamily inet
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys/%u
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $key_user $password_user
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitUserEnvironment no
Subsystem sftp internal-sftp
# The benchmark's OpenSSH side logs in 100 times at once: no early drops
# (default 10:30:100). prova's pool keeps to 10 sessions a connection
# (OpenSSH's default); the library's own tests open 20 on one.
MaxStartups 1000
MaxSessions 100
LoginGraceTime 30
ClientAliveInterval 0
LogLevel VERBOSE
EOF
    "$bin" -t -f "$dir/sshd_config" >&2
    rm -f "$dir/sshd.pid"
    "$bin" -f "$dir/sshd_config" -E "$dir/sshd.log"
    local i
    for i in $(seq 1 100); do
      pid=$(server_pid "$dir" || true)
      if [ -n "$pid" ] && answers_ssh "$port"; then break 2; fi
      sleep 0.1
    done
    # Lost a race for the port (or sshd failed): try another one.
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    pid=""
    log "sshd did not come up on port $port (attempt $attempt); see $dir/sshd.log"
  done
  if [ -z "$pid" ]; then
    tail -n 20 "$dir/sshd.log" >&2 || true
    exit 1
  fi

  local pub other fingerprint
  pub=$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")
  other=$(cut -d' ' -f1,2 "$dir/other_host_ed25519_key.pub")
  echo "[127.0.0.1]:$port $pub" >"$dir/known_hosts"
  echo "[127.0.0.1]:$port $other" >"$dir/bad_known_hosts"
  fingerprint=$(ssh-keygen -l -E sha256 -f "$dir/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
  {
    echo "PORT=$port"
    echo "KEY_USER=$(q "$key_user")"
    echo "PASSWORD_USER=$(q "$password_user")"
    echo "PASSWORD=$(q "$password")"
    echo "FINGERPRINT=$(q "$fingerprint")"
  } >"$dir/env"
  chmod 600 "$dir/env"
  print_exports "$dir"
}

# Every descendant of a PID (the server's sessions), deepest last.
# From /proc, so that procps need not be installed.
descendants() {
  local parent=$1 stat rest child
  for stat in /proc/[0-9]*/stat; do
    rest=$(cat "$stat" 2>/dev/null) || continue
    rest=${rest##*) }          # after "pid (comm) ": "state ppid ..."
    rest=${rest#* }
    if [ "${rest%% *}" = "$parent" ]; then
      child=${stat#/proc/}
      child=${child%/stat}
      echo "$child"
      descendants "$child"
    fi
  done
}

stop_dir() {
  local dir=$1 pid kids p i
  [ -d "$dir" ] || return 0
  if pid=$(server_pid "$dir"); then
    kids=$(descendants "$pid")
    kill "$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    [ -n "$kids" ] && kill -KILL $kids 2>/dev/null || true
    for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    for p in $kids; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
  fi
  case "$dir" in
    "$BASE"/prova-test-sshd.*) rm -rf "$dir" ;;
    *) rm -f "$dir/sshd.pid" "$dir/env" ;;
  esac
}

stop() {
  local dir
  if [ -n "${1:-}" ]; then
    stop_dir "$1"
  elif [ -n "${PROVA_TEST_SSHD_DIR:-}" ]; then
    stop_dir "$PROVA_TEST_SSHD_DIR"
  else
    for dir in "$BASE"/prova-test-sshd.*/; do
      [ -d "$dir" ] && stop_dir "${dir%/}"
    done
  fi
  # The last one out locks the test user's password again.
  if is_root && [ -z "$(running_dirs)" ]; then
    rm -f "$PASSFILE"
    id "$SSH_USER" >/dev/null 2>&1 && usermod -L "$SSH_USER" 2>/dev/null || true
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *)
    echo "usage: $0 start | stop [DIR]" >&2
    exit 2
    ;;
esac
