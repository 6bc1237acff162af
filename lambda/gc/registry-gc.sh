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
# `gc` (garbage-collect) or `list` (the read-only listing of every revision, uploaded to upload_url).
action=${SSM_action:-gc}
upload_url=${SSM_uploadUrl-}
# The host's own settings: not parameters of the SSM document, so the function cannot choose them.
storage=${SSM_storagePath:-/var/lib/registry}
log_dir=${SSM_logDir:-/var/log/registry-janitor}
lock_file=${SSM_lockPath:-/run/registry-janitor/lock/gc.lock}
lock_wait=${SSM_lockWaitSeconds:-5}
tail_lines=15
# Go template delimiters, spelled so that the two braces never stand together in this text: SSM reads that pair
# in a document as a parameter reference.
lb='{''{'
nl='
'
cr=$(printf '\r')

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

# What the guardian needs to undo a run, as key=value lines it reads as data (it never sources them). Only values of
# this script's own making: the container's name reaches the guardian as its argument, checked like here.
write_state() {
  [ -n "$tmp" ] || return 0
  printf 'helper_created=%s\nrestore_action=%s\n' "$helper_created" "$restore_action" >"$tmp/state.new" &&
    mv "$tmp/state.new" "$tmp/state"
}

running_state() {
  dk inspect --type container -f "$lb.State.Running}}" "$1" 2>/dev/null
}

# A container is the janitor's helper only if create_helper labelled it so: one that merely has the helper's name
# (someone else's, or made in a race with this run) is never removed. One label per line, each as two JSON strings,
# so no label value can pass for another line.
is_ours() {
  # shellcheck disable=SC2016 # a Go template, not shell
  dk inspect --type container -f "$lb"'range $k, $v := .Config.Labels}}'"$lb"'json $k}} '"$lb"'json $v}}'"$lb"'println}}'"$lb"'end}}' "$1" 2>/dev/null |
    grep -Fqx "\"registry-janitor.container\" \"$container\""
}

# Brings the registry back: removes the helper container and starts (or restarts) the original.
restore() {
  if [ -n "$bg_pid" ]; then
    kill "$bg_pid" 2>/dev/null
    bg_pid=''
  fi
  if [ "$helper_created" = 1 ]; then remove_helper; fi
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

# Right after a start or restart the engine can refuse an exec for a moment, so a few tries, a second apart.
storage_bytes() {
  du_try=1
  while :; do
    if du_out=$(dk exec "$1" du -sk "$storage" 2>>"$log"); then
      kib=${du_out%%[!0-9]*}
      case $kib in
        '' | *[!0-9]*) note "du in $1 gave no size: $du_out" ;;
        *)
          echo $((kib * 1024))
          return 0
          ;;
      esac
    fi
    [ "$du_try" -lt 5 ] || break
    du_try=$((du_try + 1))
    sleep 1
  done
  echo unknown
}

# Restores the registry if this script dies without doing so: SSM kills the whole process group with SIGKILL on a
# timeout or cancel, and no trap runs then. Runs in its own session, keeps the lock until it is done.
start_guardian() {
  cat >"$tmp/guardian.sh" <<'GUARDIAN'
main_pid=$1
state=$2
container=$3
case $container in
  '' | [!A-Za-z0-9]* | *[!A-Za-z0-9_.-]*) exit 2 ;;
esac
helper="$container-janitor-gc"
while kill -0 "$main_pid" 2>/dev/null; do sleep 1 9>&-; done
[ -f "$state" ] || exit 0
# Read as data, never sourced: only these two keys, only these values.
helper_created=0
restore_action=none
while IFS= read -r line; do
  case $line in
    helper_created=0 | helper_created=1) helper_created=${line#*=} ;;
    restore_action=none | restore_action=start | restore_action=restart) restore_action=${line#*=} ;;
  esac
done <"$state"
echo "registry-janitor: guardian: the garbage-collect script (pid $main_pid) died without bringing the registry back; doing it now"
if [ "$helper_created" = 1 ]; then
  if docker inspect --type container -f '{''{range $k, $v := .Config.Labels}}{''{json $k}} {''{json $v}}{''{println}}{''{end}}' "$helper" 2>/dev/null 9>&- |
    grep -Fqx "\"registry-janitor.container\" \"$container\""; then
    docker rm -f "$helper" 9>&-
  else
    echo "registry-janitor: guardian: $helper is not labelled registry-janitor.container=$container; left alone"
  fi
fi
case $restore_action in
  start) docker start "$container" 9>&- ;;
  restart) docker restart "$container" 9>&- ;;
esac
echo "registry-janitor: guardian: done ($container running: $(docker inspect --type container -f '{''{.State.Running}}' "$container" 9>&-))"
rm -rf "${state%/*}"
GUARDIAN
  if command -v setsid >/dev/null 2>&1; then
    setsid /bin/sh "$tmp/guardian.sh" "$$" "$tmp/state" "$container" </dev/null >>"$log" 2>&1 &
  else
    say "warning=setsid not found: if this script is killed (SSM timeout), the registry may stay stopped until the next run"
    /bin/sh "$tmp/guardian.sh" "$$" "$tmp/state" "$container" </dev/null >>"$log" 2>&1 &
  fi
  guardian_pid=$!
}

# Turns a value json_lines wrote back into what it was, in u (printf %b reads the \0ddd escapes; the x keeps a
# trailing newline from the command substitution).
unesc() {
  u=$(printf '%bx' "$1")
  u=${u%x}
}

# json_lines DIR TAGS: reads output of a template whose every line is a tag and JSON values (each after one space)
# and writes DIR/TAG for each tag in TAGS, a line per input line: its values joined by |, each with \, | and control
# characters written as \0ddd (see unesc), strings unquoted, null empty. A line of another shape, an unknown tag or a
# missing final `end` line fails (exit 2, the reason on stderr), so nothing is read from output it does not know.
json_lines() {
  RJ_OUT=$1 LC_ALL=C awk -v tags="$2" '
    function fail(why) { printf "line %d: %s\n", NR, why >"/dev/stderr"; failed = 1; exit 2 }
    function oct(n) { return sprintf("\\0%03o", n) }
    function hex4(s,   i, n, d) {
      n = 0
      for (i = 1; i <= 4; i++) {
        d = index("0123456789abcdef", tolower(substr(s, i, 1)))
        if (d == 0) fail("a bad \\u escape")
        n = n * 16 + d - 1
      }
      return n
    }
    function utf8(n) {
      if (n < 128) return (n < 32 || n == 127 || n == 92 || n == 124) ? oct(n) : sprintf("%c", n)
      if (n < 2048) return oct(192 + int(n / 64)) oct(128 + n % 64)
      if (n < 65536) return oct(224 + int(n / 4096)) oct(128 + int(n / 64) % 64) oct(128 + n % 64)
      return oct(240 + int(n / 262144)) oct(128 + int(n / 4096) % 64) oct(128 + int(n / 64) % 64) oct(128 + n % 64)
    }
    # The JSON string rest starts with; rest is left with what follows it.
    function str(   out, c, e, n, lo) {
      out = ""
      rest = substr(rest, 2)
      while (1) {
        if (rest == "") fail("an unterminated string")
        c = substr(rest, 1, 1)
        rest = substr(rest, 2)
        if (c == "\"") return out
        if (c == "\\") {
          e = substr(rest, 1, 1)
          rest = substr(rest, 2)
          if (e == "\"" || e == "/") out = out e
          else if (e == "\\") out = out oct(92)
          else if (e == "b") out = out oct(8)
          else if (e == "f") out = out oct(12)
          else if (e == "n") out = out oct(10)
          else if (e == "r") out = out oct(13)
          else if (e == "t") out = out oct(9)
          else if (e == "u") {
            n = hex4(rest)
            rest = substr(rest, 5)
            if (n == 0) fail("a NUL character")
            if (n >= 55296 && n < 56320 && substr(rest, 1, 2) == "\\u") {
              lo = hex4(substr(rest, 3))
              if (lo >= 56320 && lo < 57344) {
                n = 65536 + (n - 55296) * 1024 + (lo - 56320)
                rest = substr(rest, 7)
              }
            }
            if (n >= 55296 && n < 57344) n = 65533
            out = out utf8(n)
          } else fail("a bad escape")
        } else if (index(ctl, c)) fail("a raw control character")
        else if (c == del) out = out oct(127)
        else if (c == "|") out = out oct(124)
        else out = out c
      }
    }
    BEGIN {
      for (i = 1; i < 32; i++) ctl = ctl sprintf("%c", i)
      del = sprintf("%c", 127)
      n = split(tags, t, " ")
      for (i = 1; i <= n; i++) {
        ok[t[i]] = 1
        printf "" >(ENVIRON["RJ_OUT"] "/" t[i])
      }
    }
    done { fail("output after the end line") }
    {
      sp = index($0, " ")
      tag = sp ? substr($0, 1, sp - 1) : $0
      rest = sp ? substr($0, sp) : ""
      if (tag == "end" && rest == "") {
        done = 1
        next
      }
      if (!(tag in ok)) fail("an unexpected line")
      line = ""
      first = 1
      while (rest != "") {
        if (substr(rest, 1, 1) != " ") fail("values not separated by a space")
        rest = substr(rest, 2)
        if (substr(rest, 1, 1) == "\"") v = str()
        else {
          sp = index(rest, " ")
          v = sp ? substr(rest, 1, sp - 1) : rest
          rest = sp ? substr(rest, sp) : ""
          if (v == "null") v = ""
          else if (v !~ /^(true|false|-?[0-9][0-9.eE+-]*)$/) fail("a value that is not a JSON string, number or boolean")
        }
        line = first ? v : line "|" v
        first = 0
      }
      print line >(ENVIRON["RJ_OUT"] "/" tag)
    }
    END { if (!failed && !done) fail("no end line: the output was cut short") }
  '
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
  # Values from the container's metadata go in as --flag=value, so none can pass for another flag.
  if [ -n "$user" ]; then set -- "$@" "--user=$user"; fi
  first_network=''
  case $network_mode in
    host | none | container:*) set -- "$@" "--network=$network_mode" ;;
    *)
      if IFS='|' read -r first_network aliases <"$tmp/networks" && [ -n "$first_network" ]; then
        set -- "$@" "--network=$first_network"
        if [ "$role" = standin ] && ! is_default_network "$first_network"; then
          set -- "$@" "--network-alias=$container"
          printf '%s\n' "$aliases" | tr '|' '\n' >"$tmp/aliases"
          while IFS= read -r a; do
            [ -n "$a" ] || continue
            unesc "$a"
            set -- "$@" "--network-alias=$u"
          done <"$tmp/aliases"
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
    mkdir -p "$tmp/image"
    # shellcheck disable=SC2016 # a Go template, not shell
    dk image inspect -f "$lb"'range .Config.Entrypoint}}entrypoint '"$lb"'json .}}
'"$lb"'end}}end' "$image" 2>>"$log" | json_lines "$tmp/image" entrypoint 2>>"$log"
    if ! cmp -s "$tmp/entrypoint" "$tmp/image/entrypoint"; then
      # Only the first word fits --entrypoint; the rest goes before the command, as the engine would run it.
      unesc "$(head -n 1 "$tmp/entrypoint")"
      set -- "$@" "--entrypoint=$u" "$image"
      tail -n +2 "$tmp/entrypoint" >"$tmp/cmd.full"
      cat "$tmp/cmd" >>"$tmp/cmd.full"
    else
      set -- "$@" "$image"
      cp "$tmp/cmd" "$tmp/cmd.full"
    fi
    while IFS= read -r a; do
      unesc "$a"
      set -- "$@" "$u"
    done <"$tmp/cmd.full"
  else
    set -- "$@" --entrypoint registry "$image"
    while IFS= read -r a; do set -- "$@" "$a"; done <"$tmp/gc-args"
  fi
  note "+ docker $*"
  helper_created=1
  write_state
  dk "$@" >>"$log" 2>&1 || return 1
  if [ -n "$first_network" ]; then
    tail -n +2 "$tmp/networks" | while IFS='|' read -r net aliases; do
      [ -n "$net" ] || continue
      set -- network connect
      if [ "$role" = standin ] && ! is_default_network "$net"; then
        set -- "$@" "--alias=$container"
        printf '%s\n' "$aliases" | tr '|' '\n' >"$tmp/aliases"
        while IFS= read -r a; do
          [ -n "$a" ] || continue
          unesc "$a"
          set -- "$@" "--alias=$u"
        done <"$tmp/aliases"
      fi
      note "+ docker $* $net $helper"
      dk "$@" "$net" "$helper" >>"$log" 2>&1 || exit 1
    done || return 1
  fi
  return 0
}

# Never `rm -v`: the helper shares the registry's volumes.
remove_helper() {
  if is_ours "$helper"; then
    note "+ docker rm -f $helper"
    dk rm -f "$helper" >>"$log" 2>&1
  elif dk inspect --type container "$helper" >/dev/null 2>&1; then
    say "warning=left $helper alone: it is not labelled registry-janitor.container=$container, so it is not the janitor's"
  fi
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

# The storage root as the registry itself sees it: REGISTRY_STORAGE_* in the container's environment override its
# configuration file (distribution's rule); the file is read as data, by a small YAML reader that knows only block
# mappings. Sets root (default /var/lib/registry) and driver (empty when the file names none it recognises).
storage_root() {
  root=''
  driver=''
  while IFS= read -r e; do
    unesc "$e"
    case $u in
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=*) root=${u#*=} ;;
      REGISTRY_STORAGE=*) driver=${u#*=} ;;
    esac
  done <"$tmp/c/env"
  if ! dk exec "$container" cat "$config" >"$tmp/config.yml" 2>>"$log"; then
    die 5 listing-failed "cannot read the registry configuration $config in $container; nothing was listed"
  fi
  # shellcheck disable=SC2016 # awk, not shell
  LC_ALL=C awk '
    function unquote(v) {
      if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) return substr(v, 2, length(v) - 2)
      return v
    }
    {
      line = $0
      sub(/\r$/, "", line)
      if (line ~ /^[ \t]*(#|$)/ || line ~ /^[ ]*-/) next
      match(line, /^ */)
      ind = RLENGTH
      rest = substr(line, ind + 1)
      if (!match(rest, /^[A-Za-z0-9_.-]+:/)) next
      key = substr(rest, 1, RLENGTH - 1)
      val = substr(rest, RLENGTH + 1)
      sub(/^[ \t]+/, "", val)
      sub(/[ \t]+#.*$/, "", val)
      sub(/[ \t]+$/, "", val)
      while (n > 0 && inds[n] >= ind) n--
      n++
      keys[n] = key
      inds[n] = ind
      if (n == 2 && keys[1] == "storage" && key ~ /^(filesystem|s3|azure|gcs|swift|oss|inmemory)$/) print "driver=" key
      if (n == 3 && keys[1] == "storage" && keys[2] == "filesystem" && key == "rootdirectory") print "root=" unquote(val)
    }
  ' "$tmp/config.yml" >"$tmp/storage" 2>>"$log"
  while IFS= read -r l; do
    case $l in
      driver=*) [ -n "$driver" ] || driver=${l#driver=} ;;
      root=*) [ -n "$root" ] || root=${l#root=} ;;
    esac
  done <"$tmp/storage"
  root=${root:-/var/lib/registry}
}

# The listing: every revision link of every repository with its modification time (when that manifest was last
# pushed into that repository), read inside the running container, gzip'd here and uploaded to the one URL the
# caller presigned. Only a summary goes to stdout: SSM keeps 24,000 characters of it.
list_history() {
  storage_root
  case $driver in
    '' | filesystem) ;;
    *) die 2 listing-refused "the registry in $container keeps its storage in $driver, not on a filesystem: list it from there (storage=s3://bucket/rootdirectory for S3), or set storage to none" ;;
  esac
  case $root in
    /*) ;;
    *) die 2 listing-refused "the storage root '$root' of $container is not an absolute path" ;;
  esac
  case $root in
    *[!A-Za-z0-9._/-]*) die 2 listing-refused "the storage root of $container has characters this script will not pass on (letters, digits, . _ / - only)" ;;
  esac
  repos="${root%/}/docker/registry/v2/repositories"
  say "listing_root=$root"
  if ! dk exec "$container" test -d "$repos" 2>>"$log"; then
    die 5 listing-failed "$repos is not a folder in $container: the storage root ($root) holds no registry yet, or it is not $container's storage"
  fi
  if ! command -v gzip >/dev/null 2>&1 || ! command -v sha256sum >/dev/null 2>&1; then
    die 2 listing-failed "gzip and sha256sum are needed on this host to send the listing back"
  fi
  note "+ docker exec $container find $repos -path '*/_manifests/revisions/sha256/*/link' -type f -exec stat -c '%Y %n' {} +"
  dk exec "$container" find "$repos" -path '*/_manifests/revisions/sha256/*/link' -type f -exec stat -c '%Y %n' '{}' + >"$tmp/listing" 2>"$tmp/listing.err"
  find_rc=$?
  if [ "$find_rc" != 0 ]; then
    cat "$tmp/listing.err" >>"$log"
    die 5 listing-failed "listing the revisions in $container failed (exit $find_rc): $(head -n 2 "$tmp/listing.err" | tr '\n' ' ' | cut -c 1-300)(a revision deleted or pushed during the listing does this; the next run lists again)"
  fi
  count=$(wc -l <"$tmp/listing")
  count=$((count + 0))
  gzip -c -n "$tmp/listing" >"$tmp/listing.gz" || die 5 listing-failed "gzip of the listing failed"
  sha=$(sha256sum "$tmp/listing.gz" | cut -d' ' -f1)
  bytes=$(wc -c <"$tmp/listing.gz")
  bytes=$((bytes + 0))
  # The URL goes to the upload tool in a file of this script's 0700 directory, never on a command line (which every
  # user of the host can read in ps).
  if command -v curl >/dev/null 2>&1; then
    printf 'url = "%s"\n' "$upload_url" >"$tmp/upload.conf"
    note "+ curl -T listing.gz (the presigned URL from a config file)"
    curl -sS -f --retry 2 --max-time 300 -H 'Content-Type: application/gzip' -T "$tmp/listing.gz" --config "$tmp/upload.conf" >>"$log" 2>"$tmp/upload.err"
    up_rc=$?
    tool=curl
  elif command -v wget >/dev/null 2>&1 && wget --help 2>&1 | grep -q -- '--method'; then
    printf '%s\n' "$upload_url" >"$tmp/upload.url"
    note "+ wget --method=PUT (the presigned URL from a file)"
    wget -q -O /dev/null --tries=3 --timeout=300 --method=PUT --body-file="$tmp/listing.gz" --header='Content-Type: application/gzip' -i "$tmp/upload.url" >>"$log" 2>"$tmp/upload.err"
    up_rc=$?
    tool=wget
  else
    die 2 listing-failed "neither curl nor GNU wget is installed on this host: install curl (the listing is uploaded with it)"
  fi
  if [ "$up_rc" != 0 ]; then
    cat "$tmp/upload.err" >>"$log"
    die 5 listing-failed "uploading the listing with $tool failed (exit $up_rc): $(head -n 2 "$tmp/upload.err" | tr '\n' ' ' | cut -c 1-300)"
  fi
  say "listing_count=$count"
  say "listing_bytes=$bytes"
  say "listing_sha256=$sha"
  say "listing_upload=$tool"
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
  case $action in
    gc | list) ;;
    *) bad_parameter "action '$action' is not gc or list" ;;
  esac
  if [ "$action" = list ]; then
    # Only characters that need no quoting anywhere (a presigned S3 URL is percent-encoded); the URL is written
    # into curl's config file between double quotes, so neither a quote nor a backslash may be in it.
    if [ "${#upload_url}" -gt 4096 ] ||
      ! printf '%s\n' "$upload_url" | LC_ALL=C grep -Eqx "https?://[A-Za-z0-9.:-]+/[A-Za-z0-9._~:/?#@!\$&'()*+,;=%-]*"; then
      bad_parameter "uploadUrl is not an http(s) URL of unreserved and percent-encoded characters (at most 4096)"
    fi
  fi
  for p in "$config" "$storage" "$log_dir" "$lock_file"; do
    case $p in
      *[[:cntrl:]]*) bad_parameter "a path holds a control character" ;;
      '' | /*) ;;
      *) bad_parameter "'$p' is not an absolute path" ;;
    esac
  done
  case $lock_wait in
    '' | *[!0-9]*) bad_parameter "lockWaitSeconds '$lock_wait' is not a whole number of seconds" ;;
  esac
}

lock_problem() {
  die 2 lock-file "$1; the lock must be a file in a directory owned by this user (uid $(id -u)) with mode 0700 (the default is /run/registry-janitor/lock/gc.lock), set lockPath to one"
}

# The lock lives in a directory only this user (root, on the host) can enter: a lock file anyone can open is a lock
# anyone can hold, and a directory anyone can write is one where a symlink makes root create a file elsewhere. mkdir
# never follows a symlink, and noclobber creates the file with O_EXCL, which does not either.
open_lock() {
  lock_dir=${lock_file%/*}
  [ -n "$lock_dir" ] || lock_dir=/
  if [ ! -e "$lock_dir" ] && [ ! -L "$lock_dir" ]; then
    mkdir -p -- "${lock_dir%/*}/" 2>/dev/null
    mkdir -m 700 -- "$lock_dir" 2>/dev/null
  fi
  if [ -L "$lock_dir" ]; then lock_problem "the lock directory $lock_dir is a symbolic link"; fi
  if [ ! -d "$lock_dir" ]; then lock_problem "cannot create the lock directory $lock_dir"; fi
  # ls -n: mode, links, numeric owner. A trailing . is an SELinux context; a + (ACL) is refused with the rest.
  set -f
  # shellcheck disable=SC2046 # split into fields on purpose
  set -- $(ls -ldn -- "$lock_dir" 2>/dev/null)
  set +f
  if [ "${3-}" != "$(id -u)" ]; then
    lock_problem "the lock directory $lock_dir belongs to uid ${3-unknown}, not to this user"
  fi
  case ${1-} in
    drwx------ | drwx------.) ;;
    *) lock_problem "the lock directory $lock_dir has mode ${1-unknown}, not drwx------ (0700)" ;;
  esac
  if [ -L "$lock_file" ]; then lock_problem "the lock file $lock_file is a symbolic link"; fi
  if [ ! -e "$lock_file" ]; then (set -C && : >"$lock_file") 2>/dev/null; fi
  if [ -L "$lock_file" ] || [ ! -f "$lock_file" ]; then
    lock_problem "the lock file $lock_file is not a regular file, or cannot be created"
  fi
  exec 9>>"$lock_file"
}

# --- main ---

check_parameters
command -v docker >/dev/null 2>&1 || die 2 docker-missing "the docker CLI is not on PATH ($PATH); run this on the registry host, where docker is installed"
command -v flock >/dev/null 2>&1 || die 2 flock-missing "flock is not installed; install util-linux (it provides the lock that keeps two runs apart)"
mkdir -p "$log_dir" 2>/dev/null || die 2 log-dir "cannot create the log directory $log_dir; set logDir to a writable directory"
log="$log_dir/gc-$container-$(date -u +%Y%m%dT%H%M%SZ)-$$.log"
if ! (set -C && : >"$log") 2>/dev/null; then
  log=''
  die 2 log-dir "cannot write a log file in $log_dir; set logDir to a writable directory"
fi
say "log=$log"
say "container=$container"
say "mode=$mode"
say "dry_run=$dry_run"
say "delete_untagged=$delete_untagged"
say "action=$action"
# Keep the newest 30 logs of this container.
# shellcheck disable=SC2010 # the names are ours, and -t orders them by age
ls -1t "$log_dir" 2>/dev/null | grep "^gc-$container-[0-9TZ]*-[0-9]*\.log\$" | tail -n +31 | while IFS= read -r old; do
  rm -f "$log_dir/$old"
done

open_lock
if ! flock -w "$lock_wait" 9; then
  die 3 lock-busy "another garbage-collect run holds $lock_file on this host; wait for it to finish (its log is in $log_dir)"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/registry-janitor-gc.XXXXXX") || die 1 tmp "mktemp failed"
write_state
start_guardian

# A run killed before it could clean up leaves its helper container; its guardian normally handles that. A listing
# changes nothing, so it leaves that to the next garbage-collect.
if [ "$action" = gc ] && dk inspect --type container "$helper" >/dev/null 2>&1; then
  if ! is_ours "$helper"; then
    die 4 helper-foreign "a container named $helper exists, but it is not labelled registry-janitor.container=$container, so it is not the janitor's and was left alone; rename or remove it (docker rm $helper), then run again"
  fi
  remove_helper
  say "warning=removed $helper, left behind by an interrupted run"
  if [ "$(running_state "$container")" = false ]; then
    restore_action=start
    restore || exit 6
    say "warning=started $container again: an interrupted run had left it stopped"
  fi
fi

# One inspect for all the script needs. Each value is a json of its own, which the engine writes with quotes,
# backslashes and control characters escaped, so no value can end its line or start another: every line is a tag of
# this template's and the values it names, read as such by json_lines. Nothing from here is ever run or sourced.
# shellcheck disable=SC2016 # a Go template, not shell
inspect_template='facts '"$lb"'json .State.Running}} '"$lb"'json .State.Status}} '"$lb"'json .Image}} '"$lb"'json .HostConfig.NetworkMode}} '"$lb"'json .HostConfig.PublishAllPorts}} '"$lb"'json .Config.User}}
'"$lb"'range .Config.Cmd}}cmd '"$lb"'json .}}
'"$lb"'end}}'"$lb"'range .Config.Entrypoint}}entrypoint '"$lb"'json .}}
'"$lb"'end}}'"$lb"'range .Config.Env}}env '"$lb"'json .}}
'"$lb"'end}}'"$lb"'range $k, $v := .Config.Labels}}label '"$lb"'json $k}} '"$lb"'json $v}}
'"$lb"'end}}'"$lb"'range $p, $b := .HostConfig.PortBindings}}'"$lb"'range $b}}port '"$lb"'json $p}} '"$lb"'json .HostIp}} '"$lb"'json .HostPort}}
'"$lb"'end}}'"$lb"'end}}'"$lb"'range $n, $e := .NetworkSettings.Networks}}network '"$lb"'json $n}}'"$lb"'range $e.Aliases}} '"$lb"'json .}}'"$lb"'end}}
'"$lb"'end}}end'
if ! dk inspect --type container -f "$inspect_template" "$container" >"$tmp/inspect" 2>"$tmp/inspect.err"; then
  inspect_err=$(head -n 3 "$tmp/inspect.err")
  case $inspect_err in
    *'No such'* | *'no such'* | *'not found'*)
      die 4 container-missing "there is no container named $container on this host (docker ps -a); set the container name" ;;
    *) die 4 engine-error "docker inspect $container failed: $inspect_err" ;;
  esac
fi
mkdir "$tmp/c"
if ! json_lines "$tmp/c" 'facts cmd entrypoint env label port network' <"$tmp/inspect" 2>"$tmp/inspect.err"; then
  die 4 engine-error "docker inspect $container gave output this script cannot read ($(head -n 1 "$tmp/inspect.err")); nothing was changed"
fi
inspect_refused() {
  die 4 engine-error "docker inspect $container gave $1 that this script will not pass on; nothing was changed"
}

IFS='|' read -r is_running state image network_mode publish_all user <"$tmp/c/facts"
unesc "$state"
case $u in
  '' | *[!a-z]*) state=unknown ;;
  *) state=$u ;;
esac
raw=$image
unesc "$raw"
image=$u
case $image in
  -* | *[!A-Za-z0-9_.:/@-]*) inspect_refused "the image reference $raw" ;;
esac
raw=$network_mode
unesc "$raw"
network_mode=$u
case $network_mode in
  -* | *[!A-Za-z0-9_.:-]*) inspect_refused "the network mode $raw" ;;
esac
unesc "$user"
user=$u
case $is_running/$publish_all in
  true/true | true/false | false/true | false/false) ;;
  *) inspect_refused "a state or port setting that is not true or false ($is_running, $publish_all)" ;;
esac
if [ "$is_running" != true ]; then
  die 4 container-not-running "container $container is not running (state: $state); start it (docker start $container) and run again"
fi
cp "$tmp/c/cmd" "$tmp/cmd"
cp "$tmp/c/entrypoint" "$tmp/entrypoint"

# The helper gets the environment through an env file (in this script's own 0700 directory; on docker's command line
# every user of the host could read it), which carries one NAME=value a line, as docker reads it back.
env_problem=''
: >"$tmp/env"
while IFS= read -r e; do
  unesc "$e"
  case $u in
    REGISTRY_STORAGE_MAINTENANCE_READONLY=*) continue ;;
    # Without "=", docker would fill the value in from this script's own environment.
    *=*) ;;
    *) continue ;;
  esac
  case ${u%%=*} in
    '' | '#'* | *[[:space:]]* | *[[:cntrl:]]*) env_problem=${env_problem:-"the name of environment variable ${e%%=*}"} ;;
  esac
  case ${u#*=} in
    *"$nl"* | *"$cr"*) env_problem=${env_problem:-"the value of environment variable ${e%%=*}, a line break"} ;;
  esac
  printf '%s\n' "$u" >>"$tmp/env"
done <"$tmp/c/env"

# Labels go the same way to the stand-in; one a label file cannot carry is left off (labels route, they do not
# configure the registry).
: >"$tmp/labels"
while IFS='|' read -r k v; do
  unesc "$k"
  lk=$u
  unesc "$v"
  lv=$u
  case $lk in
    com.docker.compose.* | registry-janitor.*) continue ;;
    '' | '#'* | *[[:space:]]* | *[[:cntrl:]]* | *=*) ;;
    *)
      case $lv in
        *"$nl"* | *"$cr"*) ;;
        *)
          printf '%s=%s\n' "$lk" "$lv" >>"$tmp/labels"
          continue
          ;;
      esac
      ;;
  esac
  say "warning=label $k of $container is not given to the stand-in: a label file cannot carry its name or value"
done <"$tmp/c/label"

: >"$tmp/ports"
while IFS='|' read -r cport hip hport; do
  case ${cport%%/*} in
    '' | *[!0-9]*) inspect_refused "the port $cport" ;;
  esac
  case ${cport#*/} in
    tcp | udp | sctp) ;;
    *) inspect_refused "the port $cport" ;;
  esac
  case $hip in
    *[!0-9A-Fa-f.:]*) inspect_refused "the host address $hip of port $cport" ;;
  esac
  case $hport in
    *[!0-9-]*) inspect_refused "the host port $hport of port $cport" ;;
  esac
  printf '%s|%s|%s\n' "$cport" "$hip" "$hport" >>"$tmp/ports"
done <"$tmp/c/port"

: >"$tmp/networks"
while IFS='|' read -r net aliases; do
  unesc "$net"
  case $u in
    '' | [!A-Za-z0-9]* | *[!A-Za-z0-9_.-]*) inspect_refused "the network name $net" ;;
  esac
  printf '%s|%s\n' "$u" "$aliases" >>"$tmp/networks"
done <"$tmp/c/network"

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
  unesc "$(tail -n 1 "$tmp/cmd")"
  case $u in
    /*.yml | /*.yaml)
      case $u in
        *[[:cntrl:]]*) die 2 refused "the command of $container names a configuration file whose path holds a control character; set the config path" ;;
      esac
      config=$u
      ;;
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

if [ "$action" = list ]; then
  list_history
  exit 0
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
if [ "$mode" != online ] && [ -n "$env_problem" ]; then
  die 2 refused "$env_problem cannot be given to the garbage-collect container: an env file has no room for it, and docker's command line would show it to every user of this host; use mode online, or give the registry that setting another way (a file)"
fi

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
