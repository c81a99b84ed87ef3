# shellcheck shell=bash
# The sourcing script sets the variables used here and reads the ones set here:
# shellcheck disable=SC2034,SC2154
# Shared by scripts/check-runtime-image and scripts/check-package: a minbase Debian root made with
# debootstrap (cached as a tarball), commands run in it with chroot, and the small process helpers
# both checks use. Sourced, not run. The sourcing script sets, before calling these:
#   prog              name used in log lines ("check-package")
#   root, logs        the root filesystem and the log directory (make_root, in_root, show_log)
#   suite, mirror, security_mirror, refresh_cache   (make_root)
#   reason_file       optional: fail() writes the reason there, for a parent process to print
# and provides an EXIT trap that calls runtime_cleanup.

cache_dir="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/patchbay-runtime-rootfs"
root_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

declare -a background_pids=()
proc_mounted=0

log() { printf '%s: %s\n' "$prog" "$*" >&2; }

# Records why the check failed (the summary line shows it) and exits.
fail() {
  if [[ -n ${reason_file:-} ]]; then printf '%s\n' "$*" >"$reason_file"; fi
  failure_reason=$*
  exit 1
}

# Installs the given Debian packages on the host with apt if any is missing.
ensure_host_packages() {
  local package
  local -a missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing on the host: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Leaves a fresh minbase root of $suite at $root: unpacked from the cache, or made by debootstrap.
# Then points apt at $mirror (plus <suite>-updates and, unless "none", $security_mirror) and copies
# the host's resolv.conf.
make_root() {
  local arch tarball started
  arch=$(dpkg --print-architecture)
  tarball="$cache_dir/$suite-$arch-minbase.tar.gz"
  started=$SECONDS
  if [[ -f $tarball && ${refresh_cache:-0} -eq 0 ]]; then
    log "unpacking the cached $suite root ($tarball)"
    mkdir -p "$root"
    tar --numeric-owner -xpzf "$tarball" -C "$root" || fail "cannot unpack $tarball (try --refresh-cache)"
  else
    log "debootstrap --variant=minbase $suite $root $mirror (cached afterwards)"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$logs/debootstrap.log" 2>&1 || {
      tail -n 20 "$logs/debootstrap.log" >&2
      fail "debootstrap failed (log above)"
    }
    # Like the image: no package lists or downloaded .debs (apt-get update runs in every check).
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
    mkdir -p "$cache_dir"
    if tar --numeric-owner -czf "$tarball.tmp.$$" -C "$root" .; then
      mv -f "$tarball.tmp.$$" "$tarball"
    else
      rm -f "$tarball.tmp.$$"
      log "warning: could not cache the root at $tarball"
    fi
  fi
  log "root filesystem ready in $((SECONDS - started)) s"

  {
    printf 'deb %s %s main\n' "$mirror" "$suite"
    printf 'deb %s %s main\n' "$mirror" "$suite-updates"
    [[ $security_mirror == none ]] || printf 'deb %s %s main\n' "$security_mirror" "$suite-security"
  } >"$root/etc/apt/sources.list"
  cp -L --remove-destination /etc/resolv.conf "$root/etc/resolv.conf"
}

# For --debug-libs only: copies the toolchain's Swift libraries the non-static binary $1 links
# (ldd on the host) into the root, and adds their directory to the root's loader configuration
# (run `in_root ldconfig` afterwards).
copy_debug_libs() {
  local binary=$1 dir="$root/usr/local/lib/patchbay-debug-libs" lib count=0
  mkdir -p "$dir"
  while read -r lib; do
    cp -L "$lib" "$dir/"
    count=$((count + 1))
  done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /\/lib\/swift\// { print $3 }')
  echo "/usr/local/lib/patchbay-debug-libs" >"$root/etc/ld.so.conf.d/zz-patchbay-debug-libs.conf"
  log "--debug-libs: copied $count Swift runtime libraries into the root (script test only)"
}

# Runs a command in the root as root, with a clean environment.
in_root() {
  chroot "$root" /usr/bin/env -i PATH="$root_path" HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# Prints the libraries the root's dynamic loader cannot find for the root's executable $1.
missing_libraries() {
  in_root ldd "$1" 2>&1 | awk '/not found/ { printf "%s%s", sep, $1; sep = " " }' || true
}

# Installs Debian packages in the root with apt-get (no recommends), then drops the package lists.
install_in_root() {
  local started=$SECONDS
  log "installing in the root: $*"
  {
    in_root apt-get update &&
      in_root apt-get install -y --no-install-recommends "$@" &&
      in_root sh -c 'rm -rf /var/lib/apt/lists/*'
  } >>"$logs/apt.log" 2>&1 || {
    show_log apt.log
    fail "apt-get install $* failed in the root"
  }
  log "packages installed in $((SECONDS - started)) s"
}

# Prints a TCP port on 127.0.0.1 that nothing answers on (other than $1).
free_port() {
  local port _
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    [[ $port == "${1:-}" ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Waits up to $2 seconds for process $1 to exit; its exit status goes to $exit_status.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && return 1
  exit_status=0
  wait "$pid" || exit_status=$?
  local -a rest=()
  local p
  for p in "${background_pids[@]}"; do [[ $p == "$pid" ]] || rest+=("$p"); done
  background_pids=("${rest[@]}")
}

# Waits up to $2 seconds for http://127.0.0.1:<port $1>/healthz to answer 200 while the processes
# named by the remaining arguments ("pid:logname") keep running.
wait_healthz() {
  local port=$1 seconds=$2 deadline code=000 item
  shift 2
  deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    for item in "$@"; do
      kill -0 "${item%%:*}" 2>/dev/null || { show_log "${item#*:}"; fail "the process logging to ${item#*:} exited at start"; }
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz" || true)
    [[ $code == 200 ]] && return 0
    sleep 0.3
  done
  fail "/healthz on 127.0.0.1:$port did not answer 200 within $seconds s (last: $code)"
}

# Prints the JSON of a patch.completed event whose window is around now.
example_event() {
  local app=$1 environment=$2 instance=$3 now start end
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  start=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)
  end=$(date -u -d '+20 min' +%Y-%m-%dT%H:%M:%SZ)
  printf '{"type":"patch.completed","app":"%s","environment":"%s","instance":{"id":"i-%s","name":"%s"},"window":{"start":"%s","end":"%s"},"packages":["tzdata"],"occurredAt":"%s"}' \
    "$app" "$environment" "$instance" "$instance" "$start" "$end" "$now"
}

show_log() {
  log "--- $1 (last lines) ---"
  tail -n 15 "$logs/$1" >&2 || true
}

# Kills the background processes and unmounts /proc in the root.
runtime_cleanup() {
  local pid
  for pid in "${background_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  background_pids=()
  if ((proc_mounted)); then
    umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true
    proc_mounted=0
  fi
}

mount_proc() {
  mount -t proc proc "$root/proc"
  proc_mounted=1
}

# Runs "$self --inner-phase STATE" (which must source STATE and run the phase) inside
# `unshare --mount --pid --fork --kill-child` when available, so mounts and processes go with it;
# else runs the function named by $1 directly. The remaining arguments name the variables the
# phase needs; they are written to $work/state.
run_phase_isolated() {
  local phase=$1
  shift
  if unshare --mount --pid --fork --kill-child true 2>/dev/null; then
    declare -p "$@" >"$work/state"
    log "running in the root under unshare --mount --pid --fork"
    # In the background so that a signal to this script is handled at once: on_exit kills unshare,
    # --kill-child then kills the namespace's first process, and with it every process and mount.
    unshare --mount --pid --fork --kill-child bash "$self" --inner-phase "$work/state" &
    background_pids=("$!")
    local inner_status=0
    wait "${background_pids[0]}" || inner_status=$?
    background_pids=()
    ((inner_status == 0)) || exit "$inner_status"
  else
    log "unshare is not available: mounting /proc in the root directly"
    "$phase"
  fi
}

# Removes $work unless --keep-root was given or something is still mounted under it.
remove_work() {
  [[ -n ${work:-} && -d $work ]] || return 0
  if ((${keep_root:-0})); then
    log "kept the root filesystem at $root (logs in $work/logs)"
  elif awk -v w="$work" '$2 == w || index($2, w "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    log "warning: something is still mounted under $work; left it in place"
  else
    rm -rf --one-file-system "$work"
  fi
}
