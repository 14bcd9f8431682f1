#!/bin/sh
# Data-parallel training over MPI: one short training run on 1, 2 and 4
# processes (mpirun --oversubscribe, one thread each) writes bit-identical
# checkpoints (parameters and AdamW moments: tests/ckpt_same.c), and so does
# a run stopped on 2 processes and resumed on 4; a world size that does not
# divide the batch, ranks started with different options and a command
# other than train, finetune or reproduce stop every rank with one message and a
# non-zero exit, never a hang.
# usage: mpi_train.sh /path/to/kapprox /path/to/ckpt_same yes|no (built with MPI)
. "$(dirname "$0")/cli_test.sh"
. "$here/mpi_test.sh"

sh "$here/tiny_text.sh" >t.txt
# batch 8: 8 leaves of one sequence, shared by 1, 2, 4 (or 8) processes
T="train --text $dir/t.txt --layers 2 --heads 2 --width 16 --ctx 16 --batch 8 --steps 12 --eval-every 4 --quiet"
for n in 1 2 4; do
  mpi $n "$kx" $T --out a$n.h5 --log a$n.csv >out$n.txt 2>err$n.txt || { note "mpirun -np $n failed"; cat err$n.txt; }
  grep -q "^data parallel: $n process" out$n.txt || note "-np $n: no data-parallel summary: $(cat out$n.txt)"
done
for n in 2 4; do
  "$same" a1.h5 a$n.h5 || note "the checkpoint of $n processes differs from 1 process's"
  # the evaluations are shared by the ranks (8 batches every 4 steps, the
  # whole validation text at the end) and added in one order: the logged
  # losses (6 decimals; a missing or doubled batch moves them by far more)
  # and the final validation loss are the same for every N
  [ "$(cut -d, -f1-5 a1.csv)" = "$(cut -d, -f1-5 a$n.csv)" ] ||
    note "-np $n logs other losses than 1 process: $(cut -d, -f1-5 a$n.csv)"
  [ "$(grep 'whole validation text' out1.txt)" = "$(grep 'whole validation text' out$n.txt)" ] ||
    note "-np $n: another final validation loss: $(grep 'whole validation text' out$n.txt)"
done
# the test can fail: a checkpoint trained one step less differs
mpi 2 "$kx" $T --stop-after 11 --out short.h5 >/dev/null 2>&1
"$same" a1.h5 short.h5 >/dev/null && note "ckpt_same finds a checkpoint of 11 steps equal to one of 12"
# stopped on 2 processes, resumed on 4
mpi 2 "$kx" $T --stop-after 6 --out r.h5 >/dev/null 2>err.txt || { note "the run to resume failed"; cat err.txt; }
mpi 4 "$kx" train --resume r.h5 --text "$dir/t.txt" --quiet --out r.h5 >/dev/null 2>err.txt ||
  { note "resuming on 4 processes failed"; cat err.txt; }
"$same" a1.h5 r.h5 || note "stopped on 2 processes and resumed on 4 differs from 1 process"
# 3 processes cannot share 8 leaves: one message, every rank stopped
mpi 3 "$kx" $T --out bad.h5 >out.txt 2>err.txt
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || note "-np 3 with batch 8: exit $rc (want a failure, not 0 or a timeout)"
[ "$(grep -c '3 processes cannot share the batch of 8 sequences' err.txt)" -eq 1 ] ||
  note "-np 3: want the message once: $(cat err.txt)"
[ -e bad.h5 ] && note "-np 3 wrote a checkpoint"
# ranks started with different options
timeout 300 "$mpirun" --oversubscribe -np 1 "$kx" $T --seed 1 --out d.h5 : -np 1 "$kx" $T --seed 2 --out d.h5 \
  >out.txt 2>err.txt
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || note "ranks with different seeds: exit $rc (want a failure, not 0 or a timeout)"
[ "$(grep -c 'started with different options' err.txt)" -eq 1 ] ||
  note "ranks with different seeds: want the message once: $(cat err.txt)"
# a command that does not split its work is refused on several processes, not run twice
mpi 2 "$kx" eval --help >out.txt 2>err.txt
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || note "eval on 2 processes: exit $rc (want a refusal)"
[ "$(grep -c "'eval' does not run on several processes" err.txt)" -eq 1 ] ||
  note "eval on 2 processes: want the message once: $(cat err.txt)"
exit $fail
