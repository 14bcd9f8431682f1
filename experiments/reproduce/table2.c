#include "experiments/reproduce/table2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_eval.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_transfer.h"
#include "experiments/plot/gnuplot.h"
#include "experiments/reproduce/repro_runs.h"
#include "experiments/reproduce/repro_table.h"

#define MAX_VARIANTS 64
#define PATH_CAP KX_REPRO_PATH_CAP
/* Batches of kapprox train's validation estimate, as on the fine-tuning
 * curves (repro_runs.c): the teacher's line in Figure 2. */
#define CURVE_BATCHES 4
/* The --quick teacher. */

typedef struct {
  /* options */
  const char *outdir;
  int quick, figures, scratch_rows;
  double budget;
  size_t seeds, scratch_seeds;
  char *const *kinds, *const *maps;
  size_t n_kinds, n_maps;
  /* derived */
  kx_repro_variant v[MAX_VARIANTS];
  size_t nv;
  kx_repro rp; /* the teacher and its runs */
  kx_repro_progress pg;
} table2;

/* ---------- variants ---------- */

static int listed(char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

static int add_variant(table2 *tb, const kx_attn_kind *k, int scratch, int transfer) {
  if (tb->nv == MAX_VARIANTS) return kx_fail(KX_EINVAL, "more than %d variants", MAX_VARIANTS);
  kx_repro_variant_set(&tb->v[tb->nv++], k, scratch, transfer);
  return 0;
}

static size_t seeds_of(const table2 *tb, const kx_repro_variant *v) {
  return v->scratch ? tb->scratch_seeds : tb->seeds;
}

/* The list comes from the attention table: every kind (or --kinds), each
 * converted; with a feature map also converted + attention transfer; then
 * every kind (softmax too) from scratch. */
static int make_variants(table2 *tb) {
  char **all = NULL;
  size_t n = 0;
  int rc = kx_split_list(kx_dec_attn_names(), "attention kinds", &all, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    char *name = all[i] + strspn(all[i], " ");
    const kx_attn_kind *k = kx_dec_attn_find(name);
    if (!k || !strcmp(name, "softmax") || (tb->n_kinds && !listed(tb->kinds, tb->n_kinds, name))) continue;
    rc = add_variant(tb, k, 0, 0);
    if (!rc && kx_dec_transfer_supported(k)) rc = add_variant(tb, k, 0, 1);
  }
  size_t converted = tb->nv;
  if (tb->scratch_rows) {
    if (!rc) rc = add_variant(tb, kx_dec_attn_find("softmax"), 1, 0);
    for (size_t i = 0; !rc && i < converted; i++)
      if (!tb->v[i].transfer) rc = add_variant(tb, tb->v[i].kind, 1, 0);
  }
  kx_free_strings(all, n);
  for (size_t i = 0; !rc && i < tb->n_kinds; i++)
    if (!kx_dec_attn_find(tb->kinds[i]) || !strcmp(tb->kinds[i], "softmax"))
      rc = kx_fail(KX_EINVAL, "--kinds: '%s' is not a kind to convert to (known: %s; softmax is the teacher)",
                   tb->kinds[i], kx_dec_attn_names());
  if (!rc && converted == 0) rc = kx_fail(KX_EINVAL, "no attention kind to convert to");
  return rc;
}

/* The variant labelled `label`, NULL if the run has none. */
static const kx_repro_variant *variant_of(const table2 *tb, const char *label) {
  for (size_t i = 0; i < tb->nv; i++)
    if (!strcmp(tb->v[i].label, label)) return &tb->v[i];
  return NULL;
}

/* --maps as given: every label a variant of this run whose kind has
 * attention weights to draw (the default list keeps those that are). */
static int check_maps(const table2 *tb) {
  for (size_t j = 0; j < tb->n_maps; j++) {
    const kx_repro_variant *v = variant_of(tb, tb->maps[j]);
    if (!v)
      return kx_fail(KX_EINVAL, "--maps: '%s' is not a variant of this run (a kind of --kinds, with +AT or -scratch "
                     "where the table has that row)", tb->maps[j]);
    if (!v->kind->attn_weights)
      return kx_fail(KX_EINVAL, "--maps: '%s' has no attention weights to draw", tb->maps[j]);
  }
  return 0;
}

/* ---------- throughput ---------- */

/* Training tokens per second of `kind` at context T with the teacher's
 * sizes: forward, backward and AdamW on about as many tokens per step as
 * pre-training (batch x context), the median of 5 steps (--quick: 3). */
static int throughput(table2 *tb, const kx_attn_kind *kind, size_t T, double *tok_s) {
  kx_dec_config cfg = tb->rp.teacher.cfg;
  cfg.ctx = T;
  snprintf(cfg.attn_kind, sizeof cfg.attn_kind, "%s", kind->name);
  size_t B = tb->rp.batch * tb->rp.teacher.cfg.ctx / T;
  if (B == 0) B = 1;
  double s = 0;
  int rc = kx_repro_step_seconds(&cfg, &tb->rp.data, B, tb->quick ? 3 : 5, &s);
  if (!rc) *tok_s = (double)(B * T) / s;
  return rc;
}

/* Tokens/s of a kind at contexts 128 and 1024, measured once per output
 * directory (throughput/<kind>.txt). */
static int kind_throughput(table2 *tb, const kx_attn_kind *kind, double tok[2]) {
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s/throughput", tb->outdir);
  int rc = kx_mkdir_p(path);
  if (rc) return rc;
  snprintf(path, sizeof path, "%s/throughput/%s.txt", tb->outdir, kind->name);
  FILE *fp = fopen(path, "r");
  int have = fp && fscanf(fp, "%lf %lf", &tok[0], &tok[1]) == 2;
  if (fp) fclose(fp);
  if (have) return 0;
  static const size_t ctx[2] = {128, 1024};
  for (int i = 0; !rc && i < 2; i++) {
    kx_repro_say(&tb->pg, "%s: training throughput at context %zu", kind->name, ctx[i]);
    rc = throughput(tb, kind, ctx[i], &tok[i]);
  }
  return rc ? rc : kx_repro_write_text(path, "%.6g %.6g\n", tok[0], tok[1]);
}

/* ---------- the table ---------- */

/* A row's source: the seeds' results and the kind's tokens/s. */
typedef struct {
  char label[64], init[32];
  size_t n, diverged; /* seeds in the means; seeds whose run diverged (results, not averaged) */
  double mean[KX_R_FIELDS], se[KX_R_FIELDS];
  double tok[2];
} row;

/* Means and standard errors over the seeds whose run did not diverge
 * (kx_repro_summarise); NaN if every one did. */
static void summarise(const kx_repro_result *res, size_t n, row *out) {
  size_t n_ok = 0;
  for (int f = 0; f < KX_R_FIELDS; f++) n_ok = kx_repro_summarise(res, n, f, &out->mean[f], &out->se[f]);
  out->n = n_ok;
  out->diverged = n - n_ok;
}

/* Column sources beyond a result field. */
enum { C_GAP = -1, C_BITS = -2, C_TOK128 = -3, C_TOK1024 = -4 };

static const struct {
  kx_table_column c;
  int field; /* KX_R_* or C_* */
} columns[] = {
    {{"val. loss (nats)", "loss (nats)", "val_loss", 4, 0}, KX_R_LOSS},
    {{"bits/char", "bits/char", "val_bits", 4, 0}, C_BITS}, /* "bits/token" on token data */
    {{"accuracy", "accuracy", "accuracy", 4, 0}, KX_R_ACC},
    {{"gap to teacher", "gap", "gap", 4, 0}, C_GAP},
    {{"loss after conversion", "loss conv.", "conv_loss", 4, 0}, KX_R_CONV},
    {{"attn. KL after conversion", "KL conv.", "kl_conv", 3, 0}, KX_R_KLC},
    {{"attn. KL after fine-tuning", "KL ft.", "kl_ft", 3, 0}, KX_R_KLF},
    {{"wall time (s)", "time (s)", "wall_s", 1, 0}, KX_R_WALL},
    {{"tokens/s ctx 128", "tok/s 128", "tok_s_128", 0, 1}, C_TOK128},
    {{"tokens/s ctx 1024", "tok/s 1024", "tok_s_1024", 0, 1}, C_TOK1024},
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

static void cell_value(const row *r, int field, double teacher_loss, double *mean, double *se) {
  switch (field) {
    case C_GAP: *mean = r->mean[KX_R_LOSS] - teacher_loss, *se = r->se[KX_R_LOSS]; break;
    case C_BITS: *mean = r->mean[KX_R_LOSS] / log(2.0), *se = r->se[KX_R_LOSS] / log(2.0); break;
    case C_TOK128: *mean = r->tok[0], *se = NAN; break;
    case C_TOK1024: *mean = r->tok[1], *se = NAN; break;
    default: *mean = r->mean[field], *se = r->se[field];
  }
}

/* The teacher in the table's setup line: its sizes, and its pre-training
 * when the checkpoint records it; a weights-only teacher (an imported
 * model) by its file and architecture. */
static void teacher_text(const table2 *tb, char *out, size_t cap) {
  const kx_dec_config *c = &tb->rp.teacher.cfg;
  int n = snprintf(out, cap, "teacher: %zu layers, %zu heads", c->layers, c->heads);
  if (kx_dec_kv_heads(c) != c->heads) n += snprintf(out + n, cap - (size_t)n, " (%zu key/value)", c->kv_heads);
  n += snprintf(out + n, cap - (size_t)n, ", width %zu, context %zu", c->width, c->ctx);
  if (isnan(tb->rp.teacher_elapsed))
    snprintf(out + n, cap - (size_t)n, ", %s block, vocabulary %zu%s, weights only (%s, pre-training not recorded)",
             kx_dec_llama(c) ? "Llama" : "Pythia-like", c->vocab, tb->rp.vocab.ids ? " token ids" : "", tb->rp.teacher_in);
  else
    snprintf(out + n, cap - (size_t)n, ", %llu pre-training steps", (unsigned long long)tb->rp.pretrain_steps);
}

static int write_tables(table2 *tb, const row *rows, size_t nr) {
  const char *unit = kx_dec_unit(&tb->rp.vocab);
  char setup[1024], teacher[512], stem[PATH_CAP], caption[160];
  teacher_text(tb, teacher, sizeof teacher);
  snprintf(setup, sizeof setup,
           "%s; budget %llu steps of batch %llu (%.4g of %llu%s); %zu seed%s (scratch rows: %zu); losses in nats per "
           "%s; validation: %zu windows, attention KL: %zu windows",
           teacher, (unsigned long long)tb->rp.budget_steps, (unsigned long long)tb->rp.batch, tb->budget,
           (unsigned long long)tb->rp.pretrain_steps,
           isnan(tb->rp.teacher_elapsed) ? " steps, kapprox train's default, taken for a weights-only teacher"
                                         : " pre-training steps",
           tb->seeds, tb->seeds > 1 ? "s" : "", tb->scratch_seeds, unit, tb->rp.eval_windows, tb->rp.kl_windows);
  snprintf(stem, sizeof stem, "%s/table2", tb->outdir);
  snprintf(caption, sizeof caption,
           "Conversion of a softmax decoder to linear attention: mean $\\pm$ standard error over %zu seed(s), rows "
           "from scratch %zu.",
           tb->seeds, tb->scratch_seeds);
  kx_table_column cols[N_COLUMNS];
  char bits[32];
  snprintf(bits, sizeof bits, "bits/%s", unit);
  for (size_t j = 0; j < N_COLUMNS; j++) {
    cols[j] = columns[j].c;
    if (columns[j].field == C_BITS) cols[j].head_md = cols[j].head_tex = bits;
  }
  char note[2048];
  int k = snprintf(note, sizeof note, "teacher: its own pre-training time and throughput; +AT: a quarter of the "
                                      "budget is attention transfer; scratch: random initialisation, the same budget; "
                                      "n/a: not defined for the row or the kind exposes no attention weights.");
  for (size_t i = 0, any = 0; i < nr && k > 0 && (size_t)k < sizeof note; i++)
    if (rows[i].diverged)
      k += snprintf(note + k, sizeof note - (size_t)k, "%s%s (%s): %zu of %zu seeds",
                    any++ ? "; " : " Diverged runs (results, left out of the means; runs/*/diverged.txt says where): ",
                    rows[i].label, rows[i].init, rows[i].diverged, rows[i].diverged + rows[i].n);
  kx_table t = {.stem = stem, .n_keys = 2, .key_md = {"model", "init"}, .key_csv = {"model", "init"},
                .cols = cols, .n_cols = N_COLUMNS, .title = "Table 2", .command = "kapprox reproduce table2",
                .setup = setup, .tex_caption = caption, .md_footnote = note};
  kx_table_row *tr = kx_calloc(nr, sizeof *tr);
  if (!tr) return KX_ENOMEM;
  for (size_t i = 0; i < nr; i++) {
    tr[i].key[0] = rows[i].label, tr[i].key[1] = rows[i].init;
    tr[i].n = rows[i].n;
    tr[i].rule_after = i == 0;
    for (size_t j = 0; j < N_COLUMNS; j++)
      cell_value(&rows[i], columns[j].field, rows[0].mean[KX_R_LOSS], &tr[i].mean[j], &tr[i].se[j]);
  }
  int rc = kx_table_write(&t, tr, nr);
  free(tr);
  return rc;
}

/* ---------- figures ---------- */

/* Mean curve over seeds of variant v into `fp` ("step loss" lines). */
static int mean_curve(table2 *tb, const kx_repro_variant *v, FILE *fp) {
  unsigned long long steps[512];
  double sum[512];
  size_t n = 0, seeds = 0;
  for (uint64_t s = 0; s < tb->seeds; s++) {
    char path[PATH_CAP];
    kx_repro_run_dir(&tb->rp, v, s, path, sizeof path - 16);
    const size_t end = strlen(path);
    strcat(path, "/diverged.txt");
    if (kx_path_exists(path)) continue; /* its curve stops where it diverged: not in the mean */
    strcpy(path + end, "/curve.txt");
    FILE *in = fopen(path, "r");
    if (!in) continue;
    unsigned long long st;
    double l;
    size_t k = 0;
    while (k < 512 && fscanf(in, "%llu %lf", &st, &l) == 2) {
      if (seeds == 0) steps[n++] = st, sum[k] = 0.0;
      if (k < n && steps[k] == st) sum[k] += l;
      k++;
    }
    fclose(in);
    seeds++;
  }
  for (size_t k = 0; k < n && seeds; k++) fprintf(fp, "%llu %.9g\n", steps[k], sum[k] / (double)seeds);
  return (int)n;
}

static int figures(table2 *tb, double teacher_curve_loss) {
  char datadir[PATH_CAP], path[PATH_CAP + 64], scripts[PATH_CAP];
  snprintf(datadir, sizeof datadir, "%s/figdata", tb->outdir);
  int rc = kx_mkdir_p(datadir);
  if (rc) return rc;
  /* Figure 2: converted variants' mean curves, the teacher as a line */
  kx_atomic_file f;
  snprintf(path, sizeof path, "%s/fig2.vars", datadir);
  if ((rc = kx_atomic_open(&f, path))) return rc;
  size_t nc = 0;
  for (size_t i = 0; i < tb->nv; i++) nc += !tb->v[i].scratch;
  fprintf(f.fp, "# written by kapprox reproduce table2; read by table2_curves.gp\nn = %zu\nteacher = %.9g\n"
                "budget = %llu\nunit = \"%s\"\narray label[%zu]\n",
          nc, teacher_curve_loss, (unsigned long long)tb->rp.budget_steps, kx_dec_unit(&tb->rp.vocab), nc ? nc : 1);
  size_t k = 0;
  for (size_t i = 0; i < tb->nv && !rc; i++) {
    if (tb->v[i].scratch) continue;
    k++;
    fprintf(f.fp, "label[%zu] = \"%s\"\n", k, tb->v[i].label);
    kx_atomic_file c;
    snprintf(path, sizeof path, "%s/curve-%zu.txt", datadir, k);
    if ((rc = kx_atomic_open(&c, path))) break;
    mean_curve(tb, &tb->v[i], c.fp);
    rc = kx_atomic_commit(&c);
  }
  if (rc) {
    kx_atomic_abort(&f);
    return rc;
  }
  if ((rc = kx_atomic_commit(&f))) return rc;
  /* Figure 3: teacher and the chosen variants' seed-0 maps */
  snprintf(path, sizeof path, "%s/map-0.txt", datadir);
  if ((rc = kx_repro_write_map(&tb->rp, &tb->rp.teacher, path))) return rc;
  snprintf(path, sizeof path, "%s/fig3.vars", datadir);
  if ((rc = kx_atomic_open(&f, path))) return rc;
  size_t nm = 0;
  char labels[16][64];
  for (size_t j = 0; j < tb->n_maps && nm < 16; j++) {
    char src[PATH_CAP], dst[PATH_CAP + 64];
    const kx_repro_variant *v = variant_of(tb, tb->maps[j]);
    if (!v) continue; /* a default map the run does not have */
    kx_repro_run_dir(&tb->rp, v, 0, src, sizeof src - 16);
    strcat(src, "/map.txt");
    FILE *in = fopen(src, "r");
    if (!in) continue;
    snprintf(dst, sizeof dst, "%s/map-%zu.txt", datadir, nm + 1);
    kx_atomic_file o;
    if ((rc = kx_atomic_open(&o, dst))) {
      fclose(in);
      break;
    }
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, o.fp);
    fclose(in);
    if ((rc = kx_atomic_commit(&o))) break;
    snprintf(labels[nm++], sizeof labels[0], "%s", tb->maps[j]);
  }
  fprintf(f.fp, "# written by kapprox reproduce table2; read by table2_maps.gp\nn = %zu\nntok = %zu\nlayer = %zu\n"
                "array label[%zu]\n",
          nm, tb->rp.teacher.cfg.ctx, tb->rp.teacher.cfg.layers - 1, nm ? nm : 1);
  for (size_t j = 0; j < nm; j++) fprintf(f.fp, "label[%zu] = \"%s\"\n", j + 1, labels[j]);
  if (rc) {
    kx_atomic_abort(&f);
    return rc;
  }
  if ((rc = kx_atomic_commit(&f)) || !tb->figures) return rc;
  if ((rc = kx_plot_scripts(NULL, "table2_curves.gp", scripts, sizeof scripts))) return rc;
  snprintf(path, sizeof path, "%s/fig2_curves", tb->outdir);
  if ((rc = kx_plot_run(scripts, "table2_curves.gp", datadir, path))) return rc;
  snprintf(path, sizeof path, "%s/fig3_attention_maps", tb->outdir);
  return kx_plot_run(scripts, "table2_maps.gp", datadir, path);
}

/* ---------- driver ---------- */

/* The teacher's row: scored like the runs; its attention KL against
 * itself is 0 by definition (computing it gave round-off: -0.000). */
static int teacher_row(table2 *tb, row *r, double *curve_loss) {
  kx_repro *rp = &tb->rp;
  double tl, ta;
  int rc = kx_repro_score(rp, &rp->teacher, &tl, &ta, NULL);
  if (rc) return rc;
  kx_dec_eval_result e; /* kapprox train's validation estimate: the curves' reference */
  rc = kx_dec_evaluate(&rp->teacher, rp->data.val, rp->data.n_val, CURVE_BATCHES * rp->batch, rp->batch, &e);
  if (rc) return rc;
  *curve_loss = e.loss;
  kx_repro_result t = {{tl, ta, NAN, NAN, 0.0, rp->teacher_elapsed}};
  summarise(&t, 1, r);
  snprintf(r->label, sizeof r->label, "teacher (softmax)");
  snprintf(r->init, sizeof r->init, "pre-trained");
  return kind_throughput(tb, kx_dec_attn_find("softmax"), r->tok);
}

/* Every seed of variant i, then its row. */
static int variant_row(table2 *tb, size_t i, kx_repro_result *res, row *r) {
  const kx_repro_variant *v = &tb->v[i];
  int rc = 0;
  for (uint64_t s = 0; !rc && s < seeds_of(tb, v); s++) {
    int fresh;
    kx_repro_job_begin(&tb->pg, 1.0);
    rc = kx_repro_run(&tb->rp, v, s, &res[s], &fresh);
    if (rc) return kx_fail_context(rc, "%s, seed %llu: ", v->label, (unsigned long long)s);
    kx_repro_job_end(&tb->pg, fresh);
  }
  summarise(res, seeds_of(tb, v), r);
  snprintf(r->label, sizeof r->label, "%s", v->kind->name);
  snprintf(r->init, sizeof r->init, "%s", v->scratch ? "scratch" : v->transfer ? "converted + AT" : "converted");
  return kx_repro_final(&tb->rp) ? kind_throughput(tb, v->kind, r->tok) : 0;
}

static int run_all(table2 *tb) {
  int rc = 0;
  kx_repro_shard *sh = tb->rp.shard;
  for (size_t i = 0; i < tb->nv; i++) tb->pg.jobs += seeds_of(tb, &tb->v[i]);
  tb->pg.units_total = (double)tb->pg.jobs;
  kx_repro_shape shape;
  kx_repro_table2_setup(&tb->rp, tb->quick, &shape);
  row *rows = kx_calloc(tb->nv + 1, sizeof *rows);
  kx_repro_result *res = kx_calloc(tb->seeds > tb->scratch_seeds ? tb->seeds : tb->scratch_seeds, sizeof *res);
  if (!rows || !res) rc = KX_ENOMEM;
  if (!rc && sh) { /* the plan pass: every run of every shard, in this order */
    rc = kx_repro_teacher_plan(&tb->rp, &shape);
    kx_repro_set_budget(&tb->rp, tb->budget);
    for (size_t i = 0; !rc && i < tb->nv; i++) rc = variant_row(tb, i, res, &rows[i + 1]);
    if (!rc) rc = kx_repro_shard_checked(sh);
    kx_repro_progress_restart(&tb->pg);
    if (rc || sh->dry) goto out;
  }
  if (!rc) rc = kx_repro_teacher(&tb->rp, &shape);
  if (rc) goto out;
  kx_repro_set_budget(&tb->rp, tb->budget);
  double tcurve = 0;
  if (sh) rc = kx_repro_shard_publish(sh);
  else rc = teacher_row(tb, &rows[0], &tcurve);
  for (size_t i = 0; !rc && i < tb->nv; i++) rc = variant_row(tb, i, res, &rows[i + 1]);
  if (sh) {
    if (!rc) kx_repro_shard_report(sh, tb->pg.quiet);
    goto out;
  }
  if (!rc) rc = write_tables(tb, rows, tb->nv + 1);
  if (!rc) {
    kx_repro_say(&tb->pg, "figures");
    rc = figures(tb, tcurve);
  }
  if (!rc) kx_repro_say(&tb->pg, "done: %s/table2.md, .csv, .tex; figures fig2_curves, fig3_attention_maps", tb->outdir);
out:
  kx_repro_say_done(&tb->pg);
  free(rows);
  free(res);
  return rc;
}

static int run_claimed(void *tb) { return run_all(tb); }

int kx_table2_run(const kx_table2_opts *o, int *usage_error) {
  *usage_error = 0;
  table2 *tb = kx_calloc(1, sizeof *tb);
  if (!tb) return KX_ENOMEM;
  tb->quick = o->quick, tb->figures = o->figures, tb->budget = o->budget;
  tb->scratch_seeds = o->scratch_seeds;
  tb->scratch_rows = o->scratch_seeds > 0;
  tb->kinds = o->kinds, tb->n_kinds = o->n_kinds, tb->maps = o->maps, tb->n_maps = o->n_maps;
  tb->rp.teacher_in = o->teacher, tb->rp.text = o->text;
  tb->seeds = o->seeds ? o->seeds : tb->quick ? 1 : 3;
  tb->outdir = o->outdir ? o->outdir : tb->quick ? "table2-quick" : "table2";
  tb->rp.dir = tb->outdir;
  tb->rp.table = "Table 2";
  tb->rp.keep_diverged = 1; /* one run that diverges is a result, not the end of the table */
  tb->rp.pg = &tb->pg;
  int rc = make_variants(tb);
  if (!rc && o->maps_given) rc = check_maps(tb);
  if (rc) {
    *usage_error = 1;
    free(tb);
    return rc;
  }
  kx_repro_shard sh = {.table = "table2", .root = tb->outdir, .i = o->shard_i, .n = o->shard_n, .dry = o->dry_run};
  if (sh.n || sh.dry) tb->rp.shard = &sh;
  kx_repro_progress_init(&tb->pg, "table2", o->quiet || sh.dry);
  kx_dec_threads_init();
  rc = kx_repro_claimed(tb->outdir, tb->rp.shard, run_claimed, tb);
  kx_repro_shard_free(&sh);
  if (rc) kx_repro_say_done(&tb->pg);
  kx_repro_free(&tb->rp);
  free(tb);
  return rc;
}
