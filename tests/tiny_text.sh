#!/bin/sh
# The tiny training text of the command-line tests: 300 lines, 31 distinct
# characters, enough for a model with --ctx 16 (15 validation lines).
i=0
while [ $i -lt 300 ]; do
  echo "and the lord said unto moses, behold the light of day $i."
  i=$((i + 1))
done
