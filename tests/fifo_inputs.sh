#!/bin/sh
# A named pipe given where a command reads a file (checkpoint, Q/K file,
# text, results, journal, teacher) never blocks it: every such command ends
# with exit 1 or 2 and a message within seconds, and leaves no process
# behind in its process group (the sandboxed HDF5 reader included).
# Nobody ever writes into the pipe: opening it for reading would wait
# forever.
# usage: fifo_inputs.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

sh "$here/tiny_text.sh" >t.txt
tiny="--text t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval"
"$kx" train $tiny --steps 2 --out good.h5 >/dev/null 2>&1 || note "setup: train failed"
"$kx" synth-qk --out qk.h5 --layers 1 --heads 1 --tokens 8 --dim 4 >/dev/null 2>&1 || note "setup: synth-qk failed"
mkfifo p.h5 p.txt p.csv shard.csv.journal

# fed: runs kapprox ARGS as the leader of a new session and process group;
# it must end within 30 s with exit 1 or 2 and a message naming the pipe,
# and nothing of its group may outlive it
fed() {
  setsid "$kx" "$@" >out.txt 2>err.txt </dev/null &
  pid=$!
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    note "kapprox $* still runs after 30 s"
    kill -9 -- "-$pid" 2>/dev/null
  fi
  wait "$pid"
  code=$?
  case $code in
    1 | 2) grep -q "named pipe" err.txt || note "kapprox $*: exit $code without naming the pipe: $(cat err.txt)" ;;
    *) note "kapprox $*: exit $code (want 1 or 2): $(cat err.txt)" ;;
  esac
  sleep 0.2
  left=$(pgrep -g "$pid")
  if [ -n "$left" ]; then
    note "kapprox $*: processes left in its group: $(ps -o pid=,args= -p "$(echo $left | tr ' ' ',')")"
    kill -9 -- "-$pid" 2>/dev/null
  fi
}

E="--m 8 --seeds 0 --schemes prf --quiet"
fed kernel-error --input p.h5 $E
fed attn-fidelity --input p.h5 $E
fed compare --input p.h5 $E
fed sweep --input p.h5 $E --out s.csv
fed merge m.csv shard.csv.journal
fed reproduce kernel --input p.h5 --schemes prf --seeds 0 --quiet
fed plot --results p.csv --outdir figs --no-render
fed plot --figures attn-maps --map-input p.h5 --outdir figs --no-render
fed attn-maps --input p.h5 --out maps.h5
fed train $tiny --steps 2 --text p.txt --out a.h5
fed train --resume p.h5 --text t.txt --out a.h5
fed train $tiny --steps 2 --init-from p.h5 --out a.h5
fed sample --checkpoint p.h5
fed bench-inference --checkpoint p.h5 --no-figure --out b.csv
fed dump-qk --checkpoint p.h5 --text t.txt --out d.h5
fed dump-qk --checkpoint good.h5 --text p.txt --out d.h5
fed convert --from p.h5 --attention hedgehog --out c.h5
fed convert --from good.h5 --attention hedgehog --text p.txt --transfer-steps 2 --out c.h5
fed finetune --from p.h5 --text t.txt --out f.h5
fed finetune --resume p.h5 --text t.txt --out f.h5
fed finetune --from good.h5 --text p.txt --out f.h5
fed eval --checkpoint p.h5 --text t.txt
fed eval --checkpoint good.h5 --text p.txt
fed eval --checkpoint good.h5 --teacher p.h5 --text t.txt
fed reproduce table2 --quick --quiet --teacher p.h5 --text t.txt --outdir r2
fed reproduce table2 --quick --quiet --text p.txt --outdir r2
fed reproduce table1 --quick --quiet --teacher p.h5 --text t.txt --outdir r1
fed reproduce table1 --quick --quiet --text p.txt --outdir r1
fed reproduce all --quick --quiet --text p.txt --outdir ra
fed reproduce budget --quick --quiet --teacher p.h5 --text t.txt --outdir rb
fed reproduce budget --quick --quiet --text p.txt --outdir rb
for f in s.csv m.csv maps.h5 a.h5 b.csv d.h5 c.h5 f.h5 r1 r2 rb; do
  [ ! -e "$f" ] || note "a refused command left $f"
done
exit $fail
