# shellcheck shell=bash
# Helpers shared by scripts/install, scripts/uninstall and scripts/health-check.
# Sourced, never run.  The caller sets PROG (its name) before sourcing.
# shellcheck disable=SC2034 # the variables set here are the callers'

# Where corral is: this file is <root>/scripts/lib/common.sh.
CORRAL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CORRAL_CLI=$CORRAL_ROOT/dist/src/cli.js

# Host paths (overridable for packaging; the units name the same paths).
UNIT_DIR=${CORRAL_UNIT_DIR:-/etc/systemd/system}
CONF_DIR=${CORRAL_CONF_DIR:-/etc/corral}
LOG_ROOT=${CORRAL_LOG_ROOT:-/var/log/corral}
RUN_ROOT=/run/corral
LOGROTATE_DIR=${CORRAL_LOGROTATE_DIR:-/etc/logrotate.d}

# The paths the shipped units name; install rewrites them for this host.
SHIPPED_NODE=/usr/bin/node
SHIPPED_ROOT=/usr/local/lib/node_modules/corral

NODE_MIN_MAJOR=20

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  printf "Run '%s --help' for the options.\n" "$PROG" >&2
  exit 2
}

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (it manages system users, /etc and systemd units)"
}

need_systemd() {
  command -v systemctl > /dev/null || die "systemctl not found: corral's units need systemd"
  [ -d /run/systemd/system ] || die "systemd is not running as the init system here (/run/systemd/system is missing)"
}

# App names become instance names, user names and file names: keep them plain.
valid_name() {
  [[ $1 =~ ^[a-z][a-z0-9_-]{0,30}$ ]]
}

check_name() {
  [ -n "${1:-}" ] || usage_error "--name is required"
  valid_name "$1" || usage_error "invalid --name '$1': use 1 to 31 characters a-z 0-9 _ -, starting with a letter"
}

# The per-app paths.
app_paths() {
  local name=$1
  SERVICE=corral@$name.service
  SOCKET=corral@$name.socket
  ENV_FILE=$CONF_DIR/$name.env
  SERVICE_DROPIN_DIR=$UNIT_DIR/$SERVICE.d
  SOCKET_DROPIN_DIR=$UNIT_DIR/$SOCKET.d
  SERVICE_DROPIN=$SERVICE_DROPIN_DIR/10-install.conf
  SOCKET_DROPIN=$SOCKET_DROPIN_DIR/10-install.conf
  LOG_DIR=$LOG_ROOT/$name
  LOGROTATE_FILE=$LOGROTATE_DIR/corral-$name
  DEFAULT_UNIX_SOCKET=$RUN_ROOT/$name.sock
}

# Major version of a node binary, or nothing.
node_major() {
  "$1" -p 'process.versions.node.split(".")[0]' 2> /dev/null || true
}

# The value of KEY in an env file (last assignment wins, quotes removed).
env_file_get() {
  local file=$1 key=$2
  [ -r "$file" ] || return 0
  sed -n -e "s/^[[:space:]]*\(export[[:space:]]\+\)\{0,1\}$key=//p" "$file" | tail -n 1 |
    sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

# One property of a unit, as systemctl shows it.
unit_prop() {
  systemctl show -P "$2" "$1" 2> /dev/null || true
}
