/* kapprox: one program, many subcommands.  Each subcommand lives in the
 * folder of its concept; this file only dispatches. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_dp.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"

typedef struct {
  const char *name;
  kx_command_fn run;
  const char *summary;
} command;

/* filled from reproduce's table of targets when the list is printed */
static char reproduce_summary[192];

static const command commands[] = {
    /* one line per subcommand, grouped by concept */
    {"compare", cmd_compare, "every scheme's kernel error and attention fidelity (main job)"},
    {"kernel-error", cmd_kernel_error, "kernel error of feature maps against exp(q.k)"},
    {"attn-fidelity", cmd_attn_fidelity, "attention-map fidelity against exact softmax"},
    {"sweep", cmd_sweep, "resumable, shardable ablation grid with summary and convergence slopes"},
    {"merge", cmd_merge, "combine the shards of a sweep into one result"},
    {"reproduce", cmd_reproduce, reproduce_summary},
    {"plot", cmd_plot, "figures (gnuplot, PNG and SVG) of sweeps, attention maps and samplers"},
    {"attn-maps", cmd_attn_maps, "dump exact and approximate attention maps of one head"},
    {"points", cmd_points, "write the points of a sampler (CSV or HDF5)"},
    {"features", cmd_features, "write one head's features under a feature map (HDF5)"},
    {"synth-qk", cmd_synth_qk, "write synthetic Q/K/V with controlled norms as a Q/K file"},
    {"bench-features", cmd_bench_features, "feature-map throughput: FFTW DCT maps vs dense BLAS"},
    {"bench-attention", cmd_bench_attention, "time exact vs linear attention as the context grows"},
    {"train", cmd_train, "pre-train the small decoder on a text (KJV by default)"},
    {"sample", cmd_sample, "continue a prompt with a trained decoder"},
    {"bench-inference", cmd_bench_inference, "per-token decoding cost against context length (Figure 4)"},
    {"dump-qk", cmd_dump_qk, "write a trained decoder's Q/K/V on validation text as a Q/K file"},
    {"convert", cmd_convert, "turn a softmax decoder into another attention kind (+ attention transfer)"},
    {"import", cmd_import, "read a llama2.c checkpoint (legacy or float32 export) into a kapprox checkpoint"},
    {"finetune", cmd_finetune, "fine-tune a converted decoder (train's options, exact resume)"},
    {"eval", cmd_eval, "validation loss, accuracy and attention KL of a decoder checkpoint"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox <command> [options]   (kapprox <command> --help for details)\n\n"
          "Kernel approximation of attention: samplers, feature maps (PRF, ORF, PFF,\n"
          "WPFF, WDCF) and their error against exact softmax attention.\n\ncommands:\n");
  snprintf(reproduce_summary, sizeof reproduce_summary, "%s", cmd_reproduce_summary());
  for (const command *c = commands; c->name; c++) fprintf(out, "  %-16s %s\n", c->name, c->summary);
}

/* The command's exit status; main leaves the MPI world after it, on every path. */
static int run_command(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("kapprox 0.1.0\n");
    return 0;
  }
  for (const command *c = commands; c->name; c++)
    if (!strcmp(argv[1], c->name)) {
      if (kx_dp_size() > 1 && strcmp(c->name, "train") && strcmp(c->name, "finetune") && strcmp(c->name, "reproduce")) {
        /* every rank would do the whole command into the same files */
        fprintf(stderr, "kapprox: error: '%s' does not run on several processes; start it without mpirun (train, "
                        "finetune and reproduce do: docs/decoder.md#data-parallel-training-over-mpi)\n", c->name);
        return 2;
      }
      return c->run(argc - 1, argv + 1);
    }
  fprintf(stderr, "kapprox: error: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}

int main(int argc, char **argv) {
  kx_init_library();
  kx_dp_init(&argc, &argv);
  /* Past a file size limit (ulimit -f) a write fails with EFBIG, reported
   * and cleaned up like a full disk, instead of SIGXFSZ ending the process
   * with a temporary file left behind. */
  signal(SIGXFSZ, SIG_IGN);
  int rc = run_command(argc, argv);
  kx_dp_finalize();
  return rc;
}
