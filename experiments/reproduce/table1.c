#include "experiments/reproduce/table1.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/bench/bench_inference.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_layers.h"
#include "experiments/plot/gnuplot.h"
#include "experiments/reproduce/repro_runs.h"
#include "experiments/reproduce/repro_table.h"

#define MAX_KINDS KX_TABLE1_MAX_KINDS
#define MAX_SEEDS KX_TABLE1_MAX_SEEDS
#define N_SIZES 3
#define PATH_CAP KX_REPRO_PATH_CAP

/* The teachers: 4 layers, width doubling, heads = width / 64, so the head
 * dimension is Pythia's 64 at every size and the parameters grow about 4x
 * a size (0.8M, 3.2M = kapprox train's default, 12.7M).  Every size is
 * pre-trained with train's defaults (context 128, batch 16, 2500 steps,
 * lr 2e-3): the same tokens for every size, as Pythia trains every size
 * on the same data in the same order.  Pythia also lowers the learning
 * rate as the model grows; here train's 2e-3 (with warm-up and clipping)
 * is kept, so that the sizes differ in nothing but the width (the 12.7M
 * teacher's loss falls steadily through its peak-rate steps).  --quick: toy models (head dimension 16, context 32, batch 8,
 * 128 steps). */
typedef struct {
  size_t layers, heads, width, ctx; /* ctx, batch, steps 0: train's default */
  uint64_t batch, steps;
} size_spec;

static const size_spec full_sizes[N_SIZES] = {{4, 2, 128, 0, 0, 0}, {4, 4, 256, 0, 0, 0}, {4, 8, 512, 0, 0, 0}};
static const size_spec quick_sizes[N_SIZES] = {
    {2, 1, 16, 32, 8, 128}, {2, 2, 32, 32, 8, 128}, {2, 4, 64, 32, 8, 128}};
enum { DEFAULT_STEPS = 2500, DEFAULT_LENGTH = 2048, QUICK_LENGTH = 256, GEN_REPEATS = 3 };

/* One size's results, kept for the table and figures. */
typedef struct {
  char name[32], size[32], shape[48];
  size_t params[1 + MAX_KINDS];
  double tok_s[1 + MAX_KINDS]; /* generation tokens/s: teacher, then each kind */
  double teacher_loss, teacher_acc, teacher_s;
  double mean[MAX_KINDS][3], se[MAX_KINDS][3]; /* loss, accuracy, wall time */
  size_t n[MAX_KINDS], diverged[MAX_KINDS];    /* seeds in the means; seeds whose run diverged */
} size_result;

typedef struct {
  /* options */
  const char *outdir, *text, *teacher_in;
  int quick, figures;
  double budget;
  size_t seeds, length;
  kx_repro_shard *shard; /* NULL: every run, then the tables */
  const kx_attn_kind *kinds[MAX_KINDS];
  size_t n_kinds;
  size_t teacher_size; /* the size --teacher has */
  /* state */
  size_spec sizes[N_SIZES];
  size_t n_sizes;
  size_result res[N_SIZES];
  kx_repro_progress pg;
} table1;

static void size_name(const size_spec *s, char *out, size_t cap) {
  snprintf(out, cap, "l%zuw%zuh%zu", s->layers, s->width, s->heads);
}

/* About the cost of a step (parameters x tokens) of a size: 12 L C^2. */
static double step_units(const size_spec *s) {
  return 12.0 * (double)s->layers * (double)s->width * (double)s->width;
}

static uint64_t pretrain_steps_of(const size_spec *s) { return s->steps ? s->steps : DEFAULT_STEPS; }

/* ---------- inference throughput ---------- */

/* Generation tokens/s of a freshly initialised model of the teacher's
 * sizes and `kind` (the weights do not change the cost): one token of
 * prompt, then length - 1 tokens fed one at a time through the decoding
 * state, all timed; the fastest of GEN_REPEATS generations (another
 * process slowing one down only makes it slower), on one OpenMP thread (on
 * a shared machine more threads wait for each other at every step).  NaN
 * if the kind cannot decode that far (cosformer, linformer beyond their
 * context). */
static int generation_speed(kx_repro *rp, const char *kind, size_t length, double *tok_s, size_t *params) {
  kx_dec_config cfg = rp->teacher.cfg;
  snprintf(cfg.attn_kind, sizeof cfg.attn_kind, "%s", kind);
  kx_decoder m;
  int rc = kx_dec_create(&m, &cfg);
  if (rc) return rc;
  *params = m.tab.total;
  *tok_s = NAN;
  if ((rc = kx_dec_init_params(&m, 1)) || kx_dec_infer_check(&m, length)) {
    kx_dec_free(&m);
    if (!rc) kx_error_clear();
    return rc;
  }
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  rc = kx_bench_generation(&m, length, rp->data.val, rp->data.n_val, GEN_REPEATS, tok_s);
  omp_set_num_threads(threads);
  kx_dec_free(&m);
  return rc;
}

/* Cached in <size>/inference/<length>/<kind>.txt as "tokens/s params". */
static int cached_speed(table1 *tb, kx_repro *rp, const char *kind, double *tok_s, size_t *params) {
  char path[PATH_CAP + 64];
  snprintf(path, sizeof path, "%s/inference/%zu", rp->dir, tb->length);
  int rc = kx_mkdir_p(path);
  if (rc) return rc;
  snprintf(path, sizeof path, "%s/inference/%zu/%s.txt", rp->dir, tb->length, kind);
  FILE *fp = fopen(path, "r");
  int have = fp && fscanf(fp, "%lf %zu", tok_s, params) == 2;
  if (fp) fclose(fp);
  if (have) return 0;
  kx_repro_say(&tb->pg, "%s: %s generating %zu tokens", rp->dir, kind, tb->length);
  if ((rc = generation_speed(rp, kind, tb->length, tok_s, params))) return rc;
  return kx_repro_write_text(path, "%.9g %zu\n", *tok_s, *params);
}

/* ---------- one size ---------- */

static int size_teacher(table1 *tb, size_t i, kx_repro *rp) {
  const size_spec *s = &tb->sizes[i];
  size_result *out = &tb->res[i];
  kx_repro_shape shape = {s->layers, s->heads, s->width, s->ctx, s->batch, s->steps, tb->quick ? 40 : 250,
                          out->name, tb->quick ? "--quick" : "full"};
  kx_repro_job_begin(&tb->pg, step_units(s) * (double)pretrain_steps_of(s));
  int rc = kx_repro_teacher(rp, &shape);
  if (rc) return kx_fail_context(rc, "teacher %s: ", out->name);
  kx_repro_job_end(&tb->pg, rp->teacher_trained);
  kx_repro_set_budget(rp, tb->budget);
  if (!kx_repro_final(rp)) return 0;
  kx_repro_say(&tb->pg, "teacher %s: scoring", out->name);
  if ((rc = kx_repro_score(rp, &rp->teacher, &out->teacher_loss, &out->teacher_acc, NULL))) return rc;
  out->teacher_s = rp->teacher_elapsed;
  double p = (double)rp->teacher_params;
  snprintf(out->size, sizeof out->size, p >= 1e6 ? "%.1fM" : "%.1fk", p >= 1e6 ? p / 1e6 : p / 1e3);
  snprintf(out->shape, sizeof out->shape, "%zu×%zu (%zu head%s)", rp->teacher.cfg.layers, rp->teacher.cfg.width,
           rp->teacher.cfg.heads, rp->teacher.cfg.heads > 1 ? "s" : "");
  return cached_speed(tb, rp, "softmax", &out->tok_s[0], &out->params[0]);
}

static int size_runs(table1 *tb, size_t i, kx_repro *rp) {
  size_result *out = &tb->res[i];
  kx_repro_result res[MAX_SEEDS];
  int rc = 0;
  for (size_t k = 0; !rc && k < tb->n_kinds; k++) {
    kx_repro_variant v;
    kx_repro_variant_set(&v, tb->kinds[k], 0, 0);
    for (uint64_t s = 0; !rc && s < tb->seeds; s++) {
      int fresh;
      kx_repro_job_begin(&tb->pg, step_units(&tb->sizes[i]) * (double)rp->budget_steps);
      if ((rc = kx_repro_run(rp, &v, s, &res[s], &fresh)))
        return kx_fail_context(rc, "%s, %s, seed %llu: ", out->name, v.label, (unsigned long long)s);
      kx_repro_job_end(&tb->pg, fresh);
    }
    static const int fields[3] = {KX_R_LOSS, KX_R_ACC, KX_R_WALL};
    for (int f = 0; f < 3; f++)
      out->n[k] = kx_repro_summarise(res, tb->seeds, fields[f], &out->mean[k][f], &out->se[k][f]);
    out->diverged[k] = tb->seeds - out->n[k];
    if (kx_repro_final(rp)) rc = cached_speed(tb, rp, tb->kinds[k]->name, &out->tok_s[k + 1], &out->params[k + 1]);
  }
  return rc;
}

/* What one_size does: the plan pass of a shard or dry run, a shard's
 * first look at the teachers (train the size's teacher unless another
 * process is training it), or the size's teacher and runs. */
enum { SIZE_PLAN, SIZE_TEACHER_TRY, SIZE_ALL };

static int one_size(table1 *tb, size_t i, int what) {
  kx_repro rp = {0};
  char dir[PATH_CAP];
  size_name(&tb->sizes[i], tb->res[i].name, sizeof tb->res[i].name);
  snprintf(dir, sizeof dir, "%s/%s", tb->outdir, tb->res[i].name);
  int rc = what == SIZE_PLAN ? 0 : kx_mkdir_p(dir);
  rp.dir = dir;
  rp.text = tb->text;
  rp.table = "Table 1";
  rp.eval_windows = tb->quick ? 32 : 256;
  rp.kl_windows = tb->quick ? 4 : 16;
  rp.pg = &tb->pg;
  rp.keep_diverged = 1; /* one run that diverges is a result, not the end of the table */
  if (tb->teacher_in && i == tb->teacher_size) rp.teacher_in = tb->teacher_in;
  rp.shard = tb->shard;
  if (what == SIZE_PLAN) {
    const size_spec *s = &tb->sizes[i];
    kx_repro_shape shape = {s->layers, s->heads, s->width, s->ctx, s->batch, s->steps, 0, tb->res[i].name, ""};
    rc = kx_repro_teacher_plan(&rp, &shape);
    kx_repro_set_budget(&rp, tb->budget);
    if (!rc) rc = size_runs(tb, i, &rp);
  } else if (what == SIZE_TEACHER_TRY) {
    rp.teacher_nowait = 1;
    if (!rc && !rp.teacher_in && (rc = size_teacher(tb, i, &rp)) == KX_EBUSY) rc = 0, kx_error_clear();
  } else if (!rc) {
    rc = size_teacher(tb, i, &rp);
    if (!rc) rc = size_runs(tb, i, &rp);
  }
  kx_repro_free(&rp);
  return rc;
}

/* ---------- the table ---------- */

enum { C_PARAMS, C_PRETRAIN, C_FINETUNE, C_LOSS, C_BITS, C_ACC, C_GAP, C_TOKS, C_SPEEDUP, N_COLS };

/* The row of the teacher (k = 0) or of kind k - 1 of size i. */
static void fill_row(const table1 *tb, size_t i, size_t k, kx_table_row *r) {
  const size_result *s = &tb->res[i];
  for (int j = 0; j < N_COLS; j++) r->mean[j] = r->se[j] = NAN;
  r->key[0] = s->size;
  r->key[1] = s->shape;
  r->mean[C_PARAMS] = (double)s->params[k];
  r->mean[C_TOKS] = s->tok_s[k];
  r->mean[C_SPEEDUP] = s->tok_s[k] / s->tok_s[0];
  if (k == 0) {
    r->key[2] = "teacher (softmax)";
    r->n = 1;
    r->mean[C_PRETRAIN] = s->teacher_s;
    r->mean[C_LOSS] = s->teacher_loss, r->mean[C_ACC] = s->teacher_acc;
  } else {
    r->key[2] = tb->kinds[k - 1]->name;
    r->n = s->n[k - 1];
    r->mean[C_FINETUNE] = s->mean[k - 1][2], r->se[C_FINETUNE] = s->se[k - 1][2];
    r->mean[C_LOSS] = s->mean[k - 1][0], r->se[C_LOSS] = s->se[k - 1][0];
    r->mean[C_ACC] = s->mean[k - 1][1], r->se[C_ACC] = s->se[k - 1][1];
  }
  r->mean[C_BITS] = r->mean[C_LOSS] / log(2.0), r->se[C_BITS] = r->se[C_LOSS] / log(2.0);
  r->mean[C_GAP] = r->mean[C_LOSS] - s->teacher_loss, r->se[C_GAP] = r->se[C_LOSS];
  r->rule_after = k == tb->n_kinds && i + 1 < tb->n_sizes;
}

static int write_tables(const table1 *tb) {
  char toks_md[64], toks_tex[64], stem[PATH_CAP], setup[512], caption[256];
  snprintf(toks_md, sizeof toks_md, "tokens/s generating %zu", tb->length);
  snprintf(toks_tex, sizeof toks_tex, "tok/s (%zu)", tb->length);
  const kx_table_column cols[N_COLS] = {
      {"parameters", "params", "params", 0, 1},
      {"pre-training (s)", "pre-train (s)", "pretrain_s", 1, 0},
      {"fine-tuning (s)", "fine-tune (s)", "finetune_s", 1, 0},
      {"val. loss (nats)", "loss (nats)", "val_loss", 4, 0},
      {"bits/char", "bits/char", "val_bits", 4, 0},
      {"accuracy", "accuracy", "accuracy", 4, 0},
      {"gap to teacher", "gap", "gap", 4, 0},
      {toks_md, toks_tex, "gen_tok_s", 0, 1},
      {"speed-up", "speed-up", "speedup", 2, 1},
  };
  snprintf(setup, sizeof setup,
           "teachers pre-trained %llu steps (batch %llu, context %zu); budget %.4g of the pre-training steps; "
           "%zu seed%s; validation: %d windows; generation: %zu tokens, one thread",
           (unsigned long long)pretrain_steps_of(&tb->sizes[0]),
           (unsigned long long)(tb->sizes[0].batch ? tb->sizes[0].batch : 16), tb->sizes[0].ctx ? tb->sizes[0].ctx : 128,
           tb->budget, tb->seeds, tb->seeds > 1 ? "s" : "", tb->quick ? 32 : 256, tb->length);
  snprintf(stem, sizeof stem, "%s/table1", tb->outdir);
  snprintf(caption, sizeof caption,
           "Softmax teachers of three sizes converted to DiJiang and fine-tuned with %.4g of their pre-training "
           "steps: mean $\\pm$ standard error over %zu seed(s).",
           tb->budget, tb->seeds);
  char note[2048];
  int w = snprintf(note, sizeof note,
                   "pre-training: the teacher's own training time; fine-tuning: conversion + fine-tuning wall time; "
                   "speed-up: tokens/s over the same size's softmax teacher (KV cache); n/a: not defined for the "
                   "row.");
  for (size_t i = 0, any = 0; i < tb->n_sizes; i++)
    for (size_t k = 0; k < tb->n_kinds && w > 0 && (size_t)w < sizeof note; k++)
      if (tb->res[i].diverged[k])
        w += snprintf(note + w, sizeof note - (size_t)w, "%s%s %s: %zu of %zu seeds",
                      any++ ? "; " : " Diverged runs (results, left out of the means; runs/*/diverged.txt says where): ",
                      tb->res[i].size, tb->kinds[k]->name, tb->res[i].diverged[k], tb->seeds);
  kx_table t = {.stem = stem, .n_keys = 3, .key_md = {"size", "layers×width", "model"},
                .key_csv = {"size", "shape", "model"}, .cols = cols, .n_cols = N_COLS, .title = "Table 1",
                .command = "kapprox reproduce table1", .setup = setup, .tex_caption = caption,
                .md_footnote = note};
  kx_table_row rows[N_SIZES * (1 + MAX_KINDS)];
  size_t n = 0;
  for (size_t i = 0; i < tb->n_sizes; i++)
    for (size_t k = 0; k <= tb->n_kinds; k++) fill_row(tb, i, k, &rows[n++]);
  return kx_table_write(&t, rows, n);
}

/* ---------- figures ---------- */

/* figdata/table1.txt: a line per size, "params" then per kind "gap se
 * speed-up" (se 0 when undefined, so gnuplot keeps the point);
 * figdata/table1.vars: n and label[]. */
static int figure_data(const table1 *tb, const char *datadir) {
  char path[PATH_CAP + 64];
  kx_atomic_file f;
  snprintf(path, sizeof path, "%s/table1.txt", datadir);
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  for (size_t i = 0; i < tb->n_sizes; i++) {
    const size_result *s = &tb->res[i];
    fprintf(f.fp, "%zu", s->params[0]);
    for (size_t k = 0; k < tb->n_kinds; k++)
      fprintf(f.fp, " %.9g %.9g %.9g", s->mean[k][0] - s->teacher_loss, isnan(s->se[k][0]) ? 0.0 : s->se[k][0],
              s->tok_s[k + 1] / s->tok_s[0]);
    fprintf(f.fp, "\n");
  }
  if ((rc = kx_atomic_commit(&f))) return rc;
  snprintf(path, sizeof path, "%s/table1.vars", datadir);
  if ((rc = kx_atomic_open(&f, path))) return rc;
  fprintf(f.fp, "# written by kapprox reproduce table1; read by table1_gap.gp and table1_speedup.gp\nn = %zu\n"
                "budget = %.6g\nlength = %zu\narray label[%zu]\n",
          tb->n_kinds, tb->budget, tb->length, tb->n_kinds);
  for (size_t k = 0; k < tb->n_kinds; k++) fprintf(f.fp, "label[%zu] = \"%s\"\n", k + 1, tb->kinds[k]->name);
  return kx_atomic_commit(&f);
}

static int figures(const table1 *tb) {
  char datadir[PATH_CAP], path[PATH_CAP + 64], scripts[PATH_CAP];
  snprintf(datadir, sizeof datadir, "%s/figdata", tb->outdir);
  int rc = kx_mkdir_p(datadir);
  if (rc || (rc = figure_data(tb, datadir)) || !tb->figures) return rc;
  if ((rc = kx_plot_scripts(NULL, "table1_gap.gp", scripts, sizeof scripts))) return rc;
  snprintf(path, sizeof path, "%s/table1_gap", tb->outdir);
  if ((rc = kx_plot_run(scripts, "table1_gap.gp", datadir, path))) return rc;
  snprintf(path, sizeof path, "%s/table1_speedup", tb->outdir);
  return kx_plot_run(scripts, "table1_speedup.gp", datadir, path);
}

/* ---------- driver ---------- */

static int run_all(table1 *tb) {
  int rc = 0;
  for (size_t i = 0; i < tb->n_sizes; i++) {
    double u = step_units(&tb->sizes[i]), steps = (double)pretrain_steps_of(&tb->sizes[i]);
    tb->pg.jobs += 1 + tb->n_kinds * tb->seeds;
    tb->pg.units_total += u * steps * (1.0 + tb->budget * (double)(tb->n_kinds * tb->seeds));
  }
  kx_repro_shard *sh = tb->shard;
  if (sh) { /* the plan pass; then a shard trains the teachers nobody else is training */
    for (size_t i = 0; !rc && i < tb->n_sizes; i++) rc = one_size(tb, i, SIZE_PLAN);
    if (!rc) rc = kx_repro_shard_checked(sh);
    kx_repro_progress_restart(&tb->pg);
    if (rc || sh->dry) goto out;
    for (size_t i = 0; !rc && i < tb->n_sizes; i++) rc = one_size(tb, i, SIZE_TEACHER_TRY);
    kx_repro_progress_restart(&tb->pg);
    if (!rc) rc = kx_repro_shard_publish(sh);
  }
  for (size_t i = 0; !rc && i < tb->n_sizes; i++) rc = one_size(tb, i, SIZE_ALL);
  if (sh) {
    if (!rc) kx_repro_shard_report(sh, tb->pg.quiet);
    goto out;
  }
  if (!rc) rc = write_tables(tb);
  if (!rc) {
    kx_repro_say(&tb->pg, "figures");
    rc = figures(tb);
  }
  if (!rc) kx_repro_say(&tb->pg, "done: %s/table1.md, .csv, .tex; figures table1_gap, table1_speedup", tb->outdir);
out:
  kx_repro_say_done(&tb->pg);
  return rc;
}

static int run_claimed(void *tb) { return run_all(tb); }

/* --kinds: attention kinds other than softmax. */
static int parse_kinds(table1 *tb, const char *list) {
  char **names = NULL;
  size_t n = 0;
  int rc = kx_split_list(list, "--kinds", &names, &n);
  if (!rc && n > MAX_KINDS) rc = kx_fail(KX_EINVAL, "--kinds: at most %d kinds", MAX_KINDS);
  for (size_t i = 0; !rc && i < n; i++) {
    const kx_attn_kind *k = kx_dec_attn_find(names[i]);
    if (!k || !strcmp(names[i], "softmax"))
      rc = kx_fail(KX_EINVAL, "--kinds: '%s' is not a kind to convert to (known: %s; softmax is the teacher)",
                   names[i], kx_dec_attn_names());
    else tb->kinds[tb->n_kinds++] = k;
  }
  kx_free_strings(names, n);
  return rc;
}

/* --teacher: which size it is (its layers, heads and width). */
static int match_teacher(table1 *tb) {
  kx_decoder m;
  kx_dec_vocab v;
  int rc = kx_dec_ckpt_load(tb->teacher_in, &m, &v, NULL, NULL);
  if (rc) return kx_fail_context(rc, "--teacher: ");
  size_t i = 0;
  while (i < tb->n_sizes && !(m.cfg.layers == tb->sizes[i].layers && m.cfg.heads == tb->sizes[i].heads &&
                          m.cfg.width == tb->sizes[i].width))
    i++;
  if (i == tb->n_sizes)
    rc = kx_fail(KX_EINVAL,
                 "--teacher: '%s' has %zu layers, %zu heads, width %zu, not the shape of one of the%s sizes",
                 tb->teacher_in, m.cfg.layers, m.cfg.heads, m.cfg.width, tb->quick ? " --quick" : "");
  tb->teacher_size = i;
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return rc;
}

/* --sizes: widths among the sizes' (all of them by default), in the table's order. */
static int select_sizes(table1 *tb, const char *list) {
  const size_spec *all = tb->quick ? quick_sizes : full_sizes;
  size_t widths[N_SIZES], n = 0;
  int rc = list ? kx_parse_size_list(list, "--sizes", 1, 1 << 16, widths, N_SIZES, &n) : 0;
  for (size_t j = 0; !rc && j < n; j++) {
    size_t i = 0;
    while (i < N_SIZES && all[i].width != widths[j]) i++;
    if (i == N_SIZES)
      rc = kx_fail(KX_EINVAL, "--sizes: no%s size has width %zu (widths: %zu, %zu, %zu)", tb->quick ? " --quick" : "",
                   widths[j], all[0].width, all[1].width, all[2].width);
  }
  for (size_t i = 0; !rc && i < N_SIZES; i++) {
    int take = !list;
    for (size_t j = 0; j < n; j++) take |= widths[j] == all[i].width;
    if (take) tb->sizes[tb->n_sizes++] = all[i];
  }
  return rc;
}

int kx_table1_run(const kx_table1_opts *o, int *usage_error) {
  *usage_error = 0;
  table1 *tb = kx_calloc(1, sizeof *tb);
  if (!tb) return KX_ENOMEM;
  tb->quick = o->quick, tb->figures = o->figures, tb->budget = o->budget;
  tb->teacher_in = o->teacher, tb->text = o->text;
  tb->seeds = o->seeds ? o->seeds : tb->quick ? 1 : 3;
  tb->length = o->length ? o->length : tb->quick ? QUICK_LENGTH : DEFAULT_LENGTH;
  tb->outdir = o->outdir ? o->outdir : tb->quick ? "table1-quick" : "table1";
  int rc = parse_kinds(tb, o->kinds ? o->kinds : "dijiang,dijiang-code");
  if (!rc) rc = select_sizes(tb, o->sizes);
  if (!rc && tb->teacher_in) rc = match_teacher(tb);
  if (rc) {
    *usage_error = 1;
    free(tb);
    return rc;
  }
  kx_repro_shard sh = {.table = "table1", .root = tb->outdir, .i = o->shard_i, .n = o->shard_n, .dry = o->dry_run};
  if (sh.n || sh.dry) tb->shard = &sh;
  kx_repro_progress_init(&tb->pg, "table1", o->quiet || sh.dry);
  kx_dec_threads_init();
  rc = kx_repro_claimed(tb->outdir, tb->shard, run_claimed, tb);
  kx_repro_shard_free(&sh);
  free(tb);
  return rc;
}
