# Sourced by every rule's shell command (workflow/rules/common.smk's shell prefix).
# logged LOG CMD...: run CMD with stdout and stderr to LOG. If it fails, say so on Snakemake's own
# stderr with the end of the log; a log left empty (a full disk lets the file be created but not
# written) is said to be empty, with the space left, instead of failing silently.
logged() {
  local log=$1 rc=0
  shift
  "$@" > "$log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] && return 0
  echo "ilrepro: '${*:1:4}' failed (exit $rc); its log is $log" >&2
  if [ -s "$log" ]; then
    tail -n 15 "$log" | sed 's/^/  | /' >&2
  else
    local free
    free=$(df -Ph "$(dirname "$log")" 2>/dev/null | awk 'NR == 2 {print $4}')
    echo "  the log is empty: nothing could be written there (is the disk full? ${free:-unknown} free on $(dirname "$log"))" >&2
  fi
  return "$rc"
}
