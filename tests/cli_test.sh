# Sourced first by the command-line tests, each run as TEST.sh /path/to/kapprox:
#   . "$(dirname "$0")/cli_test.sh"
# kx    the kapprox binary, absolute: a test may cd into its scratch directory
# here  this folder, absolute (tiny_text.sh, ../plots), for the same reason
# dir   a scratch directory, removed on exit
# fail  0, set to 1 by any failed check; the test ends with `exit $fail`
# note MESSAGE: a failed check.
# one_writer WHAT A B ERR_A ERR_B OUTPUT: of two writers of OUTPUT that
# exited with A and B, exactly one succeeded and the other was refused (exit
# 1 or 2) with a message naming the first (stderr in ERR_A, ERR_B).
# expect CODE NEEDLE -- ARGS...: kapprox ARGS must exit with CODE and name
# the problem on stderr (NEEDLE); ok ARGS...: kapprox ARGS must succeed.
# Both leave the command's output in $dir/out and $dir/err.
kx="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
here="$(cd "$(dirname "$0")" && pwd)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
note() { echo "FAIL: $*"; fail=1; }
expect() {
  code="$1"; needle="$2"; shift 3
  "$kx" "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [ "$got" -ne "$code" ] || ! grep -q -- "$needle" "$dir/err"; then
    echo "FAIL: kapprox $*: exit $got (want $code), stderr:"; cat "$dir/err"
    echo "      (wanted a message containing '$needle')"
    fail=1
  fi
}
one_writer() {
  case "$2,$3" in
    0,1 | 0,2) refused=$5 ;;
    1,0 | 2,0) refused=$4 ;;
    *) note "$1: exit codes $2 and $3 (want one 0, one 1 or 2)"; cat "$4" "$5"; return ;;
  esac
  grep -q "'$6' is being written by kapprox process [0-9]* on host" "$refused" ||
    note "$1: the refusal does not name the writer: $(cat "$refused")"
}
ok() {
  if ! "$kx" "$@" >"$dir/out" 2>"$dir/err"; then
    echo "FAIL: kapprox $* failed:"; cat "$dir/err"; fail=1
  fi
}
# killed_at NEEDLE ARGS...: runs kapprox ARGS with its progress (stderr)
# through a FIFO this shell reads, and SIGKILLs it at the first line that
# contains NEEDLE (so the kill lands at that line, not at a time).
killed_at() {
  needle="$1"; shift
  rm -f "$dir/progress" && mkfifo "$dir/progress"
  "$kx" "$@" 2>"$dir/progress" &
  pid=$!
  while IFS= read -r line; do
    case "$line" in *"$needle"*) kill -9 $pid; break ;; esac
  done <"$dir/progress"
  wait $pid 2>/dev/null
}
# resumed OUT ARGS...: after killed_at, runs kapprox ARGS again (a study
# writing into OUT) and checks that it kept every run that had finished
# (OUT/runs/*/*/result.txt untouched) and said so.
resumed() {
  out="$1"; shift
  before=$(ls "$out"/runs/*/*/result.txt 2>/dev/null | wc -l)
  ls -l --time-style=+%s.%N "$out"/runs/*/*/result.txt >"$dir/before.txt" 2>/dev/null
  "$kx" "$@" 2>"$dir/resume.txt" || { note "kapprox $* (resumed) failed"; cat "$dir/resume.txt"; }
  kept=$(grep -c "finished earlier, kept" "$dir/resume.txt")
  [ "$kept" -ge "$before" ] || note "the resumed run kept $kept finished runs, want $before"
  ls -l --time-style=+%s.%N $(awk '{print $NF}' "$dir/before.txt") | cmp -s - "$dir/before.txt" ||
    note "a finished run was redone"
}
