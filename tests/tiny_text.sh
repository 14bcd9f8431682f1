#!/bin/sh
# The tiny training text of the command-line tests: 300 lines, 31 distinct
# characters, enough for a model with --ctx 16 (15 validation lines).
# tiny_text.sh LINES MOD: LINES lines whose numbers repeat with period MOD
# (a text a --quick teacher can learn something from).
lines=${1:-300}
i=0
while [ $i -lt "$lines" ]; do
  if [ -n "${2:-}" ]; then
    echo "and the lord said unto moses, behold the light of day $((i % $2)) upon the earth."
  else
    echo "and the lord said unto moses, behold the light of day $i."
  fi
  i=$((i + 1))
done
