#!/usr/bin/env bash
# sd-sandbox.sh - boot a real systemd as PID 1 in private namespaces, for
# corral's end-to-end tests (units, socket activation, sd_notify, reload,
# journald, logrotate, nginx) on a host that may not run systemd at all.
#
# Usage: sd-sandbox.sh COMMAND [ARGS...]
#   up           boot an instance; prints the host PID of its systemd on
#                stdout, then waits for `systemctl is-system-running --wait`
#   exec CMD...  run CMD inside every namespace of the instance
#   shell        interactive bash inside the instance
#   status       PID, system state and failed units
#   pid          host PID of the instance's systemd
#   down         power off, kill leftovers, remove the cgroup, check that
#                nothing of the instance is left on the host
#   --help       this text
#
# Environment:
#   SDS_NAME      instance name, [A-Za-z0-9_.-]+ (default: default); several
#                 instances may run at once, one per name
#   SDS_BASE      state directory on the host, shared read-write with the
#                 instance at the same path (default: /tmp/corral-e2e)
#   SDS_BIND      more host directories shared read-write (space separated)
#   SDS_TARGET    boot target (default: multi-user.target)
#   SDS_MASK      more units to mask (space separated)
#   SDS_NO_DEFAULT_MASKS=1  keep the default mask list empty
#   SDS_TIMEOUT   seconds allowed for boot and for poweroff (default: 60)
#   SDS_HOSTNAME  hostname inside (default: sds-$SDS_NAME)
#   SDS_REAP_WAIT seconds `down` waits for the host to reap the detached
#                 unshare process (default: 5; 0 = do not wait)
#
# What keeps the host unchanged:
#   - namespaces: pid, mount (private propagation), uts, ipc, net, cgroup;
#   - the root is an overlay of the host's "/" whose upper layer is a tmpfs
#     that only exists in the instance's mount namespace: units, users, files
#     written under /etc, /srv, /var ... disappear at `down`; only SDS_BASE
#     and SDS_BIND are shared live with the host;
#   - /proc/sys and /sys are read-only (except /proc/sys/net, per netns);
#     /dev is a small private tmpfs; /run is a private tmpfs;
#   - a fresh cgroup2 hierarchy rooted at a dedicated child cgroup of the
#     host's cgroup2 mount (sds-$SDS_NAME), removed at `down`;
#   - capabilities with host-wide effects are dropped from the bounding set;
#   - units that would touch host-wide state or slow the boot are masked.
# This guards against accidents by trusted test code; it is not a security
# boundary (the instance keeps CAP_SYS_ADMIN in the host user namespace).
#
# Needs: root, util-linux (unshare, nsenter, setpriv), systemd installed (it
# need not be running), overlayfs, and a cgroup2 mount on the host (pure
# unified at /sys/fs/cgroup, or hybrid at /sys/fs/cgroup/unified).

set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
NAME=${SDS_NAME:-default}
BASE=${SDS_BASE:-/tmp/corral-e2e}
STATE=$BASE/run/$NAME
TIMEOUT=${SDS_TIMEOUT:-60}
TARGET=${SDS_TARGET:-multi-user.target}
SD_HOSTNAME=${SDS_HOSTNAME:-sds-$NAME}
SYSTEMD=/lib/systemd/systemd

usage() { sed -n '2,/^[^#]/p' "$SCRIPT" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "sd-sandbox: $*" >&2; exit 1; }
say() { echo "sd-sandbox: $*" >&2; }

case "$NAME" in
  '' | *[!A-Za-z0-9_.-]*) echo "sd-sandbox: invalid SDS_NAME '$NAME'" >&2; exit 2 ;;
esac

# Kernel-wide capabilities nobody inside needs.
CAPS_DROP=-sys_module,-sys_time,-sys_boot,-sys_rawio,-syslog,-mac_admin,-mac_override,-wake_alarm,-block_suspend,-audit_control,-sys_pacct

# Masked at boot: each would act on host-wide state, start a service the host
# image ships enabled (nginx, cron ...), or only cost boot time.
MASKS_DEFAULT="
  console-getty.service getty@.service serial-getty@.service container-getty@.service
  getty.target getty-static.service
  systemd-modules-load.service kmod-static-nodes.service modprobe@.service
  systemd-sysctl.service systemd-binfmt.service
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service
  systemd-random-seed.service systemd-pstore.service systemd-timesyncd.service
  systemd-machine-id-commit.service systemd-firstboot.service
  systemd-tmpfiles-clean.timer systemd-tmpfiles-clean.service
  ldconfig.service systemd-update-done.service systemd-journal-catalog-update.service
  systemd-logind.service systemd-journal-flush.service
  e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer
  apt-daily-upgrade.timer man-db.timer dpkg-db-backup.timer logrotate.timer
  nginx.service haproxy.service postgresql.service postgresql@.service cron.service
  ssh.service rsyslog.service
"

# The host's cgroup2 mount point.
cgroup2_root() { awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo; }

# A process is alive when it exists and is not a zombie (a detached unshare
# is reaped by the host's init, sometimes seconds later).
alive() {
  local s
  [ -n "${1:-}" ] || return 1
  s=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "$s" != Z ]
}

# Host PID of the instance's systemd, checked against the pid namespace
# recorded at boot so that a recycled PID is never taken for it.
instance_pid() {
  local pid ns
  [ -f "$STATE/pid" ] || return 1
  pid=$(cat "$STATE/pid")
  ns=$(cat "$STATE/pidns" 2>/dev/null || true)
  alive "$pid" || return 1
  [ "$(readlink "/proc/$pid/ns/pid_for_children" 2>/dev/null)" = "$ns" ] || return 1
  echo "$pid"
}

# Run "$@" in every namespace of the instance with its capability bounding
# set, in $PWD when that path exists inside (else in /).
enter() {
  local pid=$1
  shift
  # shellcheck disable=SC2016 # $0 and $@ belong to the inner shell
  exec nsenter --target "$pid" --mount --uts --ipc --net --pid --cgroup -- \
    setpriv --bounding-set "$CAPS_DROP" --inh-caps=-all -- \
    /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" "$@"
}

# Host facts that must be the same after `down`.
host_facts() {
  local d=$1
  mkdir -p "$d"
  hostname > "$d/hostname"
  awk '{ print $5, $9, $10 }' /proc/self/mountinfo | sort > "$d/mounts"
  ip -o link 2>/dev/null | awk '{ print $2 }' > "$d/links" || true
  find /sys/fs/cgroup -maxdepth 8 -type d 2>/dev/null | sort > "$d/cgroups"
}

# ---------------------------------------------------------------------------
# Inside the new namespaces, as PID 1 of the new pid namespace: build the
# root file system, then become systemd.
# ---------------------------------------------------------------------------
inside() {
  local scratch=$STATE/ns root n d u masks=""
  root=$scratch/root

  mount --make-rprivate /
  hostname "$SD_HOSTNAME"

  mount -t tmpfs -o mode=0755,size=50% sds-scratch "$scratch"
  mkdir -p "$scratch/upper" "$scratch/work" "$root"
  mount -t overlay sds-root -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$root"

  mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
  mount --bind "$root/proc/sys" "$root/proc/sys"
  mount -o remount,bind,ro "$root/proc/sys"
  mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
  mount -o remount,bind,rw "$root/proc/sys/net"
  if [ -e "$root/proc/sysrq-trigger" ]; then
    mount --bind "$root/proc/sysrq-trigger" "$root/proc/sysrq-trigger"
    mount -o remount,bind,ro "$root/proc/sysrq-trigger"
  fi
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
  mount -t cgroup2 -o rw,nosuid,nodev,noexec,relatime cgroup2 "$root/sys/fs/cgroup"

  mount -t tmpfs -o mode=0755,nosuid,size=4m sds-dev "$root/dev"
  for n in null zero full random urandom tty; do
    : > "$root/dev/$n"
    mount --bind "/dev/$n" "$root/dev/$n"
  done
  # The console is a plain file on the host side: nothing reaches the real one.
  : > "$root/dev/console"
  mount --bind "$STATE/console.log" "$root/dev/console"
  mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/dev/mqueue"
  mount -t devpts -o newinstance,gid=5,mode=0620,ptmxmode=0666 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev sds-shm "$root/dev/shm"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"

  mount -t tmpfs -o mode=0755,nosuid,nodev,size=20% sds-run "$root/run"
  mkdir -p "$root/run/systemd/system" "$root/run/tmpfiles.d" "$root/run/lock"
  ln -s /dev/null "$root/run/tmpfiles.d/tmp.conf"   # keep /tmp (no "D /tmp")
  [ "${SDS_NO_DEFAULT_MASKS:-0}" = 1 ] || masks=$MASKS_DEFAULT
  for u in $masks ${SDS_MASK:-}; do ln -sf /dev/null "$root/run/systemd/system/$u"; done

  # Non-recursive bind: our own scratch mount under $BASE stays out.
  mkdir -p "$root$BASE"
  mount --bind "$BASE" "$root$BASE"
  for d in ${SDS_BIND:-}; do
    [ -d "$d" ] || { echo "sd-sandbox: SDS_BIND entry $d is not a directory" >&2; exit 1; }
    mkdir -p "$root$d"
    mount --rbind "$d" "$root$d"
  done

  # A journal that starts empty and lives in RAM.
  if [ -d "$root/var/log/journal" ]; then
    mount -t tmpfs -o mode=2755,nosuid,nodev sds-journal "$root/var/log/journal"
  fi
  echo "$SD_HOSTNAME" > "$root/etc/hostname"

  cd "$root"
  pivot_root . .
  umount -l .
  cd /
  # "/" is shared on a real host; without it mounts made in a unit's own
  # namespace (e.g. /run/credentials) never reach PID 1's view.  Our
  # namespace was made private first, so the host is not affected.
  mount --make-rshared /
  ip link set lo up 2>/dev/null || true

  exec setpriv --bounding-set "$CAPS_DROP" --inh-caps=-all -- \
    env -i container=sd-sandbox TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$SYSTEMD" --unit="$TARGET"
}

# ---------------------------------------------------------------------------
cmd_up() {
  local cg2 cg t0 t1 upid pid="" st
  [ "$(id -u)" = 0 ] || die "must run as root"
  [ -x "$SYSTEMD" ] || die "$SYSTEMD not found (install the systemd package)"
  if pid=$(instance_pid); then die "instance '$NAME' is already running (pid $pid)"; fi
  [ -e "$STATE/cgroup" ] && die "stale state in $STATE: run 'SDS_NAME=$NAME $0 down' first"
  cg2=$(cgroup2_root)
  [ -n "$cg2" ] || die "the host has no cgroup2 mount"
  cg=$cg2/sds-$NAME
  [ -e "$cg" ] && die "cgroup $cg exists (stale instance?): run 'SDS_NAME=$NAME $0 down'"

  mkdir -p "$STATE/ns"
  rm -f "$STATE/pid" "$STATE/pidns" "$STATE/mntns" "$STATE/unshare.pid"
  : > "$STATE/console.log"
  host_facts "$STATE/before"
  mkdir "$cg"
  echo "$cg" > "$STATE/cgroup"
  t0=$(date +%s.%N)

  # Enter the dedicated cgroup first, so that the new cgroup namespace is
  # rooted there; setsid detaches from the caller's session; the whole
  # instance dies with the unshare process (--kill-child).
  (
    echo "$BASHPID" > "$cg/cgroup.procs"
    export SDS_NAME="$NAME" SDS_BASE="$BASE" SDS_TARGET="$TARGET" SDS_HOSTNAME="$SD_HOSTNAME"
    exec setsid unshare --pid --fork --kill-child=SIGKILL --mount --propagation private \
      --uts --ipc --net --cgroup -- "$SCRIPT" __inside
  ) < /dev/null >> "$STATE/console.log" 2>&1 &
  upid=$!
  echo "$upid" > "$STATE/unshare.pid"

  for _ in $(seq 1 $((TIMEOUT * 10))); do
    alive "$upid" || { cat "$STATE/console.log" >&2; teardown > /dev/null 2>&1 || true; die "the sandbox died while being set up"; }
    pid=$(awk '{ print $1 }' "/proc/$upid/task/$upid/children" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$SYSTEMD")" ]; then
      break
    fi
    pid=""
    sleep 0.1
  done
  [ -n "$pid" ] || { teardown > /dev/null 2>&1 || true; die "systemd did not start (see $STATE/console.log)"; }
  echo "$pid" > "$STATE/pid"
  readlink "/proc/$pid/ns/pid_for_children" > "$STATE/pidns"
  readlink "/proc/$pid/ns/mnt" > "$STATE/mntns"
  echo "$pid"

  for _ in $(seq 1 $((TIMEOUT * 20))); do
    [ -S "/proc/$pid/root/run/systemd/private" ] && break
    alive "$pid" || die "systemd exited during boot (see $STATE/console.log)"
    sleep 0.05
  done
  st=$( (enter "$pid" timeout "$TIMEOUT" systemctl is-system-running --wait) 2> /dev/null || true)
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$NAME" -v p="$pid" -v s="${st:-unknown}" \
    'BEGIN { printf "sd-sandbox: instance %s: pid %s, state %s, boot %.2fs\n", n, p, s, b - a }' >&2
  echo "${st:-unknown}" > "$STATE/boot-state"
  case "$st" in
    running) ;;
    degraded) (enter "$pid" systemctl --failed --no-pager --plain --no-legend) >&2 || true ;;
    *) say "boot did not settle (state '${st:-unknown}'; see $STATE/console.log)"; return 1 ;;
  esac
}

cmd_exec() {
  local pid
  [ $# -gt 0 ] || die "usage: sd-sandbox.sh exec CMD [ARGS...]"
  pid=$(instance_pid) || die "instance '$NAME' is not running"
  enter "$pid" "$@"
}

cmd_status() {
  local pid
  pid=$(instance_pid) || { echo "instance '$NAME': not running"; return 1; }
  echo "instance '$NAME': pid $pid, cgroup $(cat "$STATE/cgroup")"
  (enter "$pid" sh -c 'systemctl is-system-running; systemctl --failed --no-pager --no-legend') || true
}

# Power off, then make sure no process and no cgroup of the instance remain.
teardown() {
  local pid upid="" cg
  [ -f "$STATE/unshare.pid" ] && upid=$(cat "$STATE/unshare.pid")
  if pid=$(instance_pid); then
    # SIGRTMIN+4 asks systemd to power off: every unit is stopped cleanly and,
    # in a container, systemd-shutdown then exits, which ends the namespace.
    kill -s SIGRTMIN+4 "$pid" 2> /dev/null || true
    for _ in $(seq 1 $((TIMEOUT * 10))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      say "poweroff timed out; killing the instance's PID 1"
      kill -KILL "$pid" 2> /dev/null || true
    fi
  fi
  if [ -n "$upid" ] && [ "$(cat "/proc/$upid/comm" 2> /dev/null)" = unshare ]; then
    for _ in $(seq 1 50); do alive "$upid" || break; sleep 0.1; done
    if alive "$upid"; then kill -KILL "$upid" 2> /dev/null || true; fi
    for _ in $(seq 1 $((${SDS_REAP_WAIT:-5} * 10))); do
      [ "$(cat "/proc/$upid/comm" 2> /dev/null)" = unshare ] || break
      sleep 0.1
    done
  fi
  if [ -f "$STATE/cgroup" ]; then
    cg=$(cat "$STATE/cgroup")
    case "$cg" in */sds-*) ;; *) die "refusing to remove unexpected cgroup '$cg'" ;; esac
    for _ in $(seq 1 50); do
      [ -d "$cg" ] || break
      if [ -e "$cg/cgroup.kill" ]; then echo 1 > "$cg/cgroup.kill" 2> /dev/null || true; fi
      find "$cg" -name cgroup.procs -exec cat {} + 2> /dev/null |
        while read -r p; do kill -KILL "$p" 2> /dev/null || true; done
      find "$cg" -depth -type d -exec rmdir {} \; 2> /dev/null || true
      sleep 0.1
    done
    if [ -d "$cg" ]; then say "WARNING: could not remove $cg"; else rm -f "$STATE/cgroup"; fi
  fi
}

cmd_down() {
  local pidns mntns bad=0 p a b
  [ -d "$STATE" ] || { say "instance '$NAME' is not running"; return 0; }
  pidns=$(cat "$STATE/pidns" 2> /dev/null || true)
  mntns=$(cat "$STATE/mntns" 2> /dev/null || true)
  teardown
  if [ -n "$pidns$mntns" ]; then
    # A namespace's inode number is reused once the namespace is gone: another instance
    # started since may carry ours. Its processes are told apart by the SDS_NAME its
    # launcher and its systemd were started with, and their namespaces are skipped.
    local foreign=" " e
    for p in /proc/[0-9]*; do
      e=$(tr '\0' '\n' < "$p/environ" 2> /dev/null | sed -n 's/^SDS_NAME=//p' || true)
      if [ -n "$e" ] && [ "$e" != "$NAME" ]; then
        foreign+="$(readlink "$p/ns/pid" 2> /dev/null || true) $(readlink "$p/ns/mnt" 2> /dev/null || true) "
      fi
    done
    for p in /proc/[0-9]*; do
      alive "${p#/proc/}" || continue
      a=$(readlink "$p/ns/pid" 2> /dev/null || true)
      b=$(readlink "$p/ns/mnt" 2> /dev/null || true)
      case "$foreign" in *" $a "*|*" $b "*) continue ;; esac
      if { [ -n "$pidns" ] && [ "$a" = "$pidns" ]; } || { [ -n "$mntns" ] && [ "$b" = "$mntns" ]; }; then
        say "left over: process ${p#/proc/} ($(tr '\0' ' ' < "$p/cmdline" 2> /dev/null))"
        bad=1
      fi
    done
  fi
  [ -f "$STATE/cgroup" ] && { say "left over: cgroup $(cat "$STATE/cgroup")"; bad=1; }
  host_facts "$STATE/after"
  if [ -d "$STATE/before" ]; then
    if ! cmp -s "$STATE/before/hostname" "$STATE/after/hostname"; then
      say "the host's hostname changed"
      bad=1
    fi
    if grep -q -e "$STATE" -e 'sds-' "$STATE/after/mounts"; then
      say "left over: host mounts:"
      grep -e "$STATE" -e 'sds-' "$STATE/after/mounts" >&2
      bad=1
    fi
  fi
  mkdir -p "$BASE/logs"
  cp -f "$STATE/console.log" "$BASE/logs/$NAME.console.log" 2> /dev/null || true
  if [ "$bad" = 0 ]; then
    rm -rf "$STATE"
    say "instance '$NAME' is down; nothing left behind"
  else
    say "instance '$NAME': problems found (see above); run down again"
    return 1
  fi
}

case "${1:-}" in
  up) shift; cmd_up ;;
  exec) shift; cmd_exec "$@" ;;
  shell) shift; cmd_exec /bin/bash -l ;;
  status) shift; cmd_status ;;
  pid) instance_pid || die "instance '$NAME' is not running" ;;
  down) shift; cmd_down ;;
  __inside) inside ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
