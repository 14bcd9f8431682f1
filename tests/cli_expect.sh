# Sourced by the command-line tests: expect CODE NEEDLE -- ARGS... runs kapprox
# ($kx) and checks its exit code and that stderr names the problem; needs $dir
# (scratch directory) and sets fail=1 on a mismatch.
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
