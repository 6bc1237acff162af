#!/bin/sh
# registry-janitor: runs `registry garbage-collect` in the registry container on this host, as root, with the
# docker CLI on PATH. Static: every input arrives in an SSM_<name> environment variable (SSM Run Command sets them
# for the janitor's own document, whose parameters use interpolationType ENV_VAR; `registry-janitor gc` sets them
# locally), and nothing from a caller is ever pasted into this text. Output lines starting "registry-janitor: " are
# key=value pairs for the caller (lambda/core/gc-script.ts parses them); the full log stays on this host.
# Kept free of bashisms: it runs under dash (Debian/Ubuntu /bin/sh) and bash (Amazon Linux). Lint with
# `shellcheck -s sh`; test with `npx vitest run test/core/gc-script.test.ts` and the GC engine tests.
set -u
PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH

# The caller's choices (the document's parameters). Unset means the caller sent none: see check_parameters.
container=${SSM_containerName-}
config=${SSM_configPath-}
mode=${SSM_mode-}
dry_run=${SSM_dryRun-}
delete_untagged=${SSM_deleteUntagged-}
# The host's own settings: not parameters of the SSM document, so the function cannot choose them.
storage=${SSM_storagePath:-/var/lib/registry}
log_dir=${SSM_logDir:-/var/log/registry-janitor}
lock_file=${SSM_lockPath:-/var/lock/registry-janitor-gc.lock}
lock_wait=${SSM_lockWaitSeconds:-5}
tail_lines=15
# Go template delimiters, spelled so that the two braces never stand together in this text: SSM reads that pair
# in a document as a parameter reference.
lb='{''{'

helper="$container-janitor-gc"
log=''
tmp=''
guardian_pid=''
bg_pid=''
helper_created=0
restore_action=none
restore_failed=0
mode_used=''
gc_line=0

say() {
  printf 'registry-janitor: %s\n' "$1"
  if [ -n "$log" ]; then printf 'registry-janitor: %s\n' "$1" >>"$log" 2>/dev/null; fi
  return 0
}

# die EXIT-STATUS CODE MESSAGE: the EXIT trap then brings the registry back and prints status=failed.
die() {
  say "error_code=$2"
  say "error=$3"
  printf 'registry-janitor: %s\n' "$3" >&2
  exit "$1"
}

# Every engine call leaves the lock descriptor behind, so no container or daemon process can hold the lock.
dk() {
  docker "$@" 9>&-
}

note() {
  if [ -n "$log" ]; then printf '%s\n' "$*" >>"$log" 2>/dev/null; fi
  return 0
}

write_state() {
  [ -n "$tmp" ] || return 0
  {
    printf "container='%s'\n" "$container"
    printf "helper='%s'\n" "$helper"
    printf 'helper_created=%s\n' "$helper_created"
    printf 'restore_action=%s\n' "$restore_action"
  } >"$tmp/state.new" && mv "$tmp/state.new" "$tmp/state"
}

running_state() {
  dk inspect --type container -f "$lb.State.Running}}" "$1" 2>/dev/null
}

# Brings the registry back: removes the helper container and starts (or restarts) the original.
restore() {
  if [ -n "$bg_pid" ]; then
    kill "$bg_pid" 2>/dev/null
    bg_pid=''
  fi
  if [ "$helper_created" = 1 ]; then
    note "+ docker rm -f $helper"
    dk rm -f "$helper" >>"$log" 2>&1
    helper_created=0
    write_state
  fi
  case $restore_action in
    start)
      note "+ docker start $container"
      dk start "$container" >>"$log" 2>&1
      ;;
    restart)
      note "+ docker restart $container"
      dk restart "$container" >>"$log" 2>&1
      ;;
    *) return 0 ;;
  esac
  if [ "$(running_state "$container")" = true ]; then
    say "restored=$container"
    restore_action=none
    write_state
    return 0
  fi
  restore_failed=1
  restore_action=none
  write_state
  say "error_code=restore-failed"
  say "error=could not start $container again after garbage-collect; start it by hand (docker start $container) and look at $log"
  printf 'registry-janitor: could not start %s again; start it by hand (docker start %s)\n' "$container" "$container" >&2
  return 1
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
on_exit() {
  rc=$?
  # A second signal must not cut the restore short (SIGKILL is the guardian's business).
  trap - EXIT
  trap '' INT TERM HUP
  restore
  if [ "$restore_failed" = 1 ]; then rc=6; fi
  if [ -n "$guardian_pid" ]; then kill "$guardian_pid" 2>/dev/null; fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  if [ "$rc" = 0 ]; then
    say "status=ok"
  else
    say "exit_status=$rc"
    say "status=failed"
  fi
  exit "$rc"
}

# shellcheck disable=SC2317 # invoked by the signal traps
on_signal() {
  say "error_code=interrupted"
  say "error=interrupted by SIG$1; the registry is being brought back"
  exit "$2"
}

trap on_exit EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# Runs a command in the background with its output in the log, and waits for it in a way a signal interrupts
# (a shell defers traps until a foreground command ends, and garbage-collect can run for hours).
run_logged() {
  "$@" >>"$log" 2>&1 </dev/null &
  bg_pid=$!
  wait "$bg_pid"
  bg_rc=$?
  bg_pid=''
  # garbage-collect's error message has no final newline; the next log line must not join it.
  if [ -n "$(tail -c 1 "$log")" ]; then echo >>"$log"; fi
  return "$bg_rc"
}

storage_bytes() {
  du_out=$(dk exec "$1" du -sk "$storage" 2>>"$log") || {
    echo unknown
    return 0
  }
  kib=${du_out%%[!0-9]*}
  case $kib in
    '' | *[!0-9]*) echo unknown ;;
    *) echo $((kib * 1024)) ;;
  esac
}

# Restores the registry if this script dies without doing so: SSM kills the whole process group with SIGKILL on a
# timeout or cancel, and no trap runs then. Runs in its own session, keeps the lock until it is done.
start_guardian() {
  cat >"$tmp/guardian.sh" <<'GUARDIAN'
main_pid=$1
state=$2
while kill -0 "$main_pid" 2>/dev/null; do sleep 1 9>&-; done
[ -f "$state" ] || exit 0
. "$state"
echo "registry-janitor: guardian: the garbage-collect script (pid $main_pid) died without bringing the registry back; doing it now"
if [ "$helper_created" = 1 ]; then docker rm -f "$helper" 9>&-; fi
case $restore_action in
  start) docker start "$container" 9>&- ;;
  restart) docker restart "$container" 9>&- ;;
esac
echo "registry-janitor: guardian: done ($container running: $(docker inspect --type container -f '{''{.State.Running}}' "$container" 9>&-))"
rm -rf "${state%/*}"
GUARDIAN
  if command -v setsid >/dev/null 2>&1; then
    setsid /bin/sh "$tmp/guardian.sh" "$$" "$tmp/state" </dev/null >>"$log" 2>&1 &
  else
    say "warning=setsid not found: if this script is killed (SSM timeout), the registry may stay stopped until the next run"
    /bin/sh "$tmp/guardian.sh" "$$" "$tmp/state" </dev/null >>"$log" 2>&1 &
  fi
  guardian_pid=$!
}

gc_args() {
  printf '%s\n' garbage-collect
  if [ "$dry_run" = 1 ]; then printf '%s\n' --dry-run; fi
  if [ "$delete_untagged" = 1 ]; then printf '%s\n' --delete-untagged; fi
  printf '%s\n' "$config"
}

# Runs garbage-collect with `docker exec` in a running container.
gc_exec() {
  set -- exec "$1" registry
  while IFS= read -r a; do set -- "$@" "$a"; done <"$tmp/gc-args"
  note "+ docker $*"
  mark_gc_start
  run_logged dk "$@"
}

is_default_network() {
  [ "$1" = bridge ] || [ "$1" = podman ] || [ "$1" = default ]
}

# create_helper ROLE: a container from the same image with the original's volumes, environment and networks.
# ROLE standin: also its ports, labels and command, in read-only mode. ROLE oneoff: runs garbage-collect.
create_helper() {
  role=$1
  set -- create --name "$helper" --label "registry-janitor.role=$role" --label "registry-janitor.container=$container" \
    --volumes-from "$container" --env-file "$tmp/env"
  if [ -n "$user" ]; then set -- "$@" --user "$user"; fi
  first_network=''
  case $network_mode in
    host | none | container:*) set -- "$@" --network "$network_mode" ;;
    *)
      if IFS=' ' read -r first_network aliases <"$tmp/networks" && [ -n "$first_network" ]; then
        set -- "$@" --network "$first_network"
        if [ "$role" = standin ] && ! is_default_network "$first_network"; then
          set -f
          for a in $container $aliases; do set -- "$@" --network-alias "$a"; done
          set +f
        fi
      fi
      ;;
  esac
  if [ "$role" = standin ]; then
    set -- "$@" --label-file "$tmp/labels" -e 'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}'
    if [ "$publish_all" = true ]; then set -- "$@" -P; fi
    while IFS='|' read -r cport hip hport; do
      [ -n "$cport" ] || continue
      case $hip in
        '') spec="$hport:$cport" ;;
        *:*) spec="[$hip]:$hport:$cport" ;;
        *) spec="$hip:$hport:$cport" ;;
      esac
      set -- "$@" -p "$spec"
    done <"$tmp/ports"
    image_entrypoint=$(dk image inspect -f "${lb}json .Config.Entrypoint}}" "$image" 2>>"$log")
    if [ "$entrypoint" != "$image_entrypoint" ]; then
      # Only the first word fits --entrypoint; the rest goes before the command, as the engine would run it.
      set -- "$@" --entrypoint "$(head -n 1 "$tmp/entrypoint")" "$image"
      tail -n +2 "$tmp/entrypoint" >"$tmp/cmd.full"
      cat "$tmp/cmd" >>"$tmp/cmd.full"
    else
      set -- "$@" "$image"
      cp "$tmp/cmd" "$tmp/cmd.full"
    fi
    while IFS= read -r a; do set -- "$@" "$a"; done <"$tmp/cmd.full"
  else
    set -- "$@" --entrypoint registry "$image"
    while IFS= read -r a; do set -- "$@" "$a"; done <"$tmp/gc-args"
  fi
  note "+ docker $*"
  helper_created=1
  write_state
  dk "$@" >>"$log" 2>&1 || return 1
  if [ -n "$first_network" ]; then
    tail -n +2 "$tmp/networks" | while IFS=' ' read -r net aliases; do
      [ -n "$net" ] || continue
      set -- network connect
      if [ "$role" = standin ] && ! is_default_network "$net"; then
        set -f
        for a in $container $aliases; do set -- "$@" --alias "$a"; done
        set +f
      fi
      note "+ docker $* $net $helper"
      dk "$@" "$net" "$helper" >>"$log" 2>&1 || exit 1
    done || return 1
  fi
  return 0
}

# Never `rm -v`: the helper shares the registry's volumes.
remove_helper() {
  note "+ docker rm -f $helper"
  dk rm -f "$helper" >>"$log" 2>&1
  helper_created=0
  write_state
}

stop_original() {
  restore_action=start
  write_state
  note "+ docker stop $container"
  dk stop "$container" >>"$log" 2>&1 || die 5 stop-failed "could not stop $container (docker stop failed; see $log)"
}

# Offline: the registry is down while a one-off container runs garbage-collect on its storage.
gc_oneoff() {
  create_helper oneoff || die 5 helper-failed "could not create the garbage-collect container from $image (see $log)"
  note "+ docker start -a $helper"
  mark_gc_start
  run_logged dk start -a "$helper"
}

# Read-only: a stand-in serves pulls (pushes get 405) while garbage-collect runs in it. 0 = GC ran (status in
# gc_rc), 1 = the stand-in could not start.
gc_readonly() {
  if ! create_helper standin; then
    standin_problem='docker create failed'
    return 1
  fi
  stop_original
  note "+ docker start $helper"
  if ! dk start "$helper" >"$tmp/standin.out" 2>&1; then
    cat "$tmp/standin.out" >>"$log"
    standin_problem=$(grep -v '^$' "$tmp/standin.out" | tr '\n' ' ' | cut -c 1-300)
    standin_problem=${standin_problem% }
    return 1
  fi
  cat "$tmp/standin.out" >>"$log"
  # A registry that cannot read its configuration exits at once.
  sleep 1
  if [ "$(running_state "$helper")" != true ]; then
    dk logs --tail 5 "$helper" >>"$log" 2>&1
    standin_problem="it exited: $(tail -n 1 "$log" | cut -c 1-300)"
    return 1
  fi
  say "standin=$helper"
  mode_used="readonly"
  say "mode_used=$mode_used"
  gc_exec "$helper"
  gc_rc=$?
  return 0
}

gc_output() {
  if [ "$gc_end" -ge "$gc_line" ]; then sed -n "$gc_line,${gc_end}p" "$log"; fi
}

report_gc() {
  gc_end=$(wc -l <"$log")
  gc_end=$((gc_end + 0))
  gc_output | tail -n "$tail_lines" | cut -c 1-400 >"$tmp/tail"
  gc_summary=$(gc_output | grep -E '^[0-9]+ blobs marked, [0-9]+ blobs and [0-9]+ manifests eligible for deletion' | tail -n 1)
  if [ "$gc_rc" != 0 ] && gc_output | grep -Eq 'Path not found: /docker/registry/v2/(repositories|blobs)$'; then
    say "warning=garbage-collect found no repositories under the storage root in $config: nothing to collect (if the registry does hold images, the configuration path is wrong)"
    gc_rc=0
    gc_summary='0 blobs marked, 0 blobs and 0 manifests eligible for deletion'
  fi
  say "gc_exit=$gc_rc"
  if [ -n "$gc_summary" ]; then say "summary=$gc_summary"; fi
  while IFS= read -r l; do
    printf 'registry-janitor: tail=%s\n' "$l"
  done <"$tmp/tail"
  if [ "$gc_rc" != 0 ]; then
    last=$(grep -v '^$' "$tmp/tail" | tail -n 1 | cut -c 1-300)
    die 5 gc-failed "garbage-collect failed (exit $gc_rc, mode $mode_used): $last; the full output is in $log"
  fi
}

mark_gc_start() {
  note "--- garbage-collect output ---"
  gc_line=$(wc -l <"$log")
  gc_line=$((gc_line + 1))
}

# Each input is checked again here, whoever sent it: the SSM document's allowedPattern and the TypeScript option
# checks come first, but this script is the last thing between a value and a root shell.
bad_parameter() {
  die 2 bad-parameter "$1"
}

check_parameters() {
  if [ -z "${SSM_containerName+set}" ] || [ -z "${SSM_mode+set}" ]; then
    bad_parameter "no parameters arrived (SSM_containerName, SSM_mode unset): SSM Agent 3.3.2746.0 or later sets them from the document's parameters; update the agent on this host"
  fi
  case $container in
    '' | [!A-Za-z0-9]* | *[!A-Za-z0-9_.-]*) bad_parameter "containerName '$container' is not a container name (letters, digits, _ . -, starting with a letter or digit)" ;;
  esac
  if [ "${#container}" -gt 200 ]; then bad_parameter "containerName is longer than 200 characters"; fi
  case $mode in
    readonly | offline | online) ;;
    *) bad_parameter "mode '$mode' is not one of readonly, offline, online" ;;
  esac
  case $dry_run in
    true) dry_run=1 ;;
    false | '') dry_run=0 ;;
    *) bad_parameter "dryRun '$dry_run' is not true or false" ;;
  esac
  case $delete_untagged in
    true) delete_untagged=1 ;;
    false | '') delete_untagged=0 ;;
    *) bad_parameter "deleteUntagged '$delete_untagged' is not true or false" ;;
  esac
  for p in "$config" "$storage" "$log_dir" "$lock_file"; do
    case $p in
      '' | /*) ;;
      *) bad_parameter "'$p' is not an absolute path" ;;
    esac
  done
  case $lock_wait in
    '' | *[!0-9]*) bad_parameter "lockWaitSeconds '$lock_wait' is not a whole number of seconds" ;;
  esac
}

# --- main ---

check_parameters
command -v docker >/dev/null 2>&1 || die 2 docker-missing "the docker CLI is not on PATH ($PATH); run this on the registry host, where docker is installed"
command -v flock >/dev/null 2>&1 || die 2 flock-missing "flock is not installed; install util-linux (it provides the lock that keeps two runs apart)"
mkdir -p "$log_dir" 2>/dev/null || die 2 log-dir "cannot create the log directory $log_dir; set logDir to a writable directory"
log="$log_dir/gc-$container-$(date -u +%Y%m%dT%H%M%SZ)-$$.log"
if ! : >"$log" 2>/dev/null; then
  log=''
  die 2 log-dir "cannot write a log file in $log_dir; set logDir to a writable directory"
fi
say "log=$log"
say "container=$container"
say "mode=$mode"
say "dry_run=$dry_run"
say "delete_untagged=$delete_untagged"
# Keep the newest 30 logs of this container.
# shellcheck disable=SC2010 # the names are ours, and -t orders them by age
ls -1t "$log_dir" 2>/dev/null | grep "^gc-$container-[0-9TZ]*-[0-9]*\.log\$" | tail -n +31 | while IFS= read -r old; do
  rm -f "$log_dir/$old"
done

mkdir -p "$(dirname "$lock_file")" 2>/dev/null
if ! (: >>"$lock_file") 2>/dev/null; then
  die 2 lock-file "cannot open the lock file $lock_file; set lockPath to a writable path"
fi
exec 9>>"$lock_file"
if ! flock -w "$lock_wait" 9; then
  die 3 lock-busy "another garbage-collect run holds $lock_file on this host; wait for it to finish (its log is in $log_dir)"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/registry-janitor-gc.XXXXXX") || die 1 tmp "mktemp failed"
write_state
start_guardian

# A run killed before it could clean up leaves its helper container; its guardian normally handles that.
if dk inspect --type container "$helper" >/dev/null 2>&1; then
  remove_helper
  say "warning=removed $helper, left behind by an interrupted run"
  if [ "$(running_state "$container")" = false ]; then
    restore_action=start
    restore || exit 6
    say "warning=started $container again: an interrupted run had left it stopped"
  fi
fi

# One inspect for all the script needs, split into files by the marker lines.
# shellcheck disable=SC2016 # a Go template, not shell
inspect_template=''"$lb"'.State.Running}}|'"$lb"'.State.Status}}|'"$lb"'.Image}}|'"$lb"'.HostConfig.NetworkMode}}|'"$lb"'.HostConfig.PublishAllPorts}}|'"$lb"'.Config.User}}|'"$lb"'json .Config.Entrypoint}}
@@rj:cmd@@
'"$lb"'range .Config.Cmd}}'"$lb"'println .}}'"$lb"'end}}@@rj:entrypoint@@
'"$lb"'range .Config.Entrypoint}}'"$lb"'println .}}'"$lb"'end}}@@rj:env.all@@
'"$lb"'range .Config.Env}}'"$lb"'println .}}'"$lb"'end}}@@rj:labels.all@@
'"$lb"'range $k, $v := .Config.Labels}}'"$lb"'$k}}='"$lb"'$v}}'"$lb"'println}}'"$lb"'end}}@@rj:ports@@
'"$lb"'range $p, $b := .HostConfig.PortBindings}}'"$lb"'range $b}}'"$lb"'$p}}|'"$lb"'.HostIp}}|'"$lb"'.HostPort}}'"$lb"'println}}'"$lb"'end}}'"$lb"'end}}@@rj:networks@@
'"$lb"'range $n, $e := .NetworkSettings.Networks}}'"$lb"'$n}}'"$lb"'range $e.Aliases}} '"$lb"'.}}'"$lb"'end}}'"$lb"'println}}'"$lb"'end}}@@rj:end@@'
if ! dk inspect --type container -f "$inspect_template" "$container" >"$tmp/inspect" 2>"$tmp/inspect.err"; then
  inspect_err=$(head -n 3 "$tmp/inspect.err")
  case $inspect_err in
    *'No such'* | *'no such'* | *'not found'*)
      die 4 container-missing "there is no container named $container on this host (docker ps -a); set the container name" ;;
    *) die 4 engine-error "docker inspect $container failed: $inspect_err" ;;
  esac
fi
awk -v d="$tmp" '
  NR == 1 { print > (d "/facts"); next }
  /^@@rj:[a-z.]+@@$/ { f = d "/" substr($0, 6, length($0) - 7); printf "" > f; next }
  { print > f }
' "$tmp/inspect"
IFS='|' read -r is_running state image network_mode publish_all user entrypoint <"$tmp/facts"
if [ "$is_running" != true ]; then
  die 4 container-not-running "container $container is not running (state: $state); start it (docker start $container) and run again"
fi
grep -v '^REGISTRY_STORAGE_MAINTENANCE_READONLY=' "$tmp/env.all" >"$tmp/env"
grep -v '^com\.docker\.compose\.' "$tmp/labels.all" >"$tmp/labels"

version_out=$(dk exec "$container" registry --version 2>&1 | head -n 1)
version=${version_out##* }
version=${version#v}
major=${version%%.*}
case $major in
  '' | *[!0-9]*)
    version=unknown
    major=0
    ;;
esac
say "version=$version"

if [ -z "$config" ]; then
  cmd_last=$(tail -n 1 "$tmp/cmd")
  case $cmd_last in
    /*.yml | /*.yaml) config=$cmd_last ;;
    *) if [ "$major" -ge 3 ]; then config=/etc/distribution/config.yml; else config=/etc/docker/registry/config.yml; fi ;;
  esac
fi
say "config=$config"
if ! config_check=$(dk exec "$container" ls "$config" 2>&1); then
  case $config_check in
    *"$config"*'No such file'* | *"$config"*'no such file'*)
      die 2 config-missing "the registry configuration $config does not exist in container $container; set the config path (registry:3 images use /etc/distribution/config.yml)" ;;
  esac
fi

if [ "$delete_untagged" = 1 ]; then
  if [ "$version" = unknown ]; then
    die 2 refused "refusing --delete-untagged: it is only safe on distribution v3 or newer, and the version in $container could not be read (registry --version said: $version_out)"
  fi
  if [ "$major" -lt 3 ]; then
    die 2 refused "refusing --delete-untagged on distribution $version: before v3 it deletes the platform images of multi-arch tags (distribution#3178) and aborts on repositories without tags; upgrade to registry:3, or run without deleteUntagged"
  fi
fi
gc_args >"$tmp/gc-args"

say "bytes_before=$(storage_bytes "$container")"

if [ "$dry_run" = 1 ]; then
  # Nothing is deleted, so the registry keeps running and needs no restart.
  mode_used=online
  say "mode_used=$mode_used"
  gc_exec "$container"
  gc_rc=$?
  report_gc
  say "bytes_after=$(storage_bytes "$container")"
  exit 0
fi

[ -n "$image" ] || die 1 engine-error "docker inspect $container did not give its image (see $log)"

case $mode in
  readonly)
    if ! gc_readonly; then
      say "warning=the read-only stand-in could not start ($standin_problem); fell back to offline mode: the registry is down until garbage-collect ends"
      remove_helper
      [ "$restore_action" = start ] || stop_original
      mode_used=offline
      say "mode_used=$mode_used"
      gc_oneoff
      gc_rc=$?
    fi
    ;;
  offline)
    mode_used=offline
    say "mode_used=$mode_used"
    stop_original
    gc_oneoff
    gc_rc=$?
    ;;
  online)
    mode_used=online
    say "mode_used=$mode_used"
    restore_action=restart
    write_state
    gc_exec "$container"
    gc_rc=$?
    ;;
esac
report_gc
restore || exit 6
say "bytes_after=$(storage_bytes "$container")"
exit 0
