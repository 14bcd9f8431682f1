# Sourced by the tests that compare the folders of kapprox reproduce table2:
# runfiles DIR: DIR's run files that are results (not timings), one line
# each: result.txt without its wall time, a checksum of the others
# (curve.txt, map.txt, a checkpoint under way).
# strip CSV: table2.csv without its timing columns (wall time, tokens/s).
runfiles() {
  (cd "$1" && for f in $(find runs -type f | LC_ALL=C sort); do
    case "$f" in
      */result.txt) echo "$f $(awk '{ $7 = ""; print }' "$f")" ;; # field 7: wall time
      */convert.txt | */.lock) ;;                                   # wall time; a claim
      *) echo "$f $(cksum <"$f")" ;;
    esac
  done)
}
strip() { awk -F, -v OFS=, '{ NF -= 4; print }' "$1"; } # tokens/s and wall time columns
