/* The DiJiang factor study of kapprox reproduce (factors.h). */
#include "experiments/reproduce/factors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_dijiang_form.h"
#include "experiments/reproduce/repro_table.h"

#define PATH_CAP KX_REPRO_PATH_CAP
/* The end points: the paper's form and the released code's, whole. */
static const char *const end_kind[2] = {"dijiang", "dijiang-released"};
static const char *const end_name[2] = {"paper", "released"};

/* ---------- the factors ---------- */

int kx_factors_parse(const char *list, uint32_t *mask) {
  if (!strcmp(list, "all")) {
    *mask = KX_DJ_ALL;
    return 0;
  }
  char **items = NULL, known[256] = "";
  size_t n = 0;
  uint32_t m = 0;
  for (int f = 0; f < KX_DJ_FACTORS; f++)
    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", f ? ", " : "", kx_dijiang_factors[f].name);
  int rc = kx_split_list(list, "--factors", &items, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    int f = 0;
    while (f < KX_DJ_FACTORS && strcmp(items[i], kx_dijiang_factors[f].name)) f++;
    if (f == KX_DJ_FACTORS)
      rc = kx_fail(KX_EINVAL, "--factors: '%s' is not a factor (known: %s; or all)", items[i], known);
    else if (m >> f & 1)
      rc = kx_fail(KX_EINVAL, "--factors: '%s' is listed twice", items[i]);
    else
      m |= 1u << f;
  }
  kx_free_strings(items, n);
  if (!rc) *mask = m;
  return rc;
}

static size_t n_factors(uint32_t mask) {
  size_t n = 0;
  for (int f = 0; f < KX_DJ_FACTORS; f++) n += mask >> f & 1;
  return n;
}

void kx_factors_count(const kx_factors_study *s, uint64_t pretrain_steps, size_t *runs, uint64_t *steps) {
  kx_repro r = {.pretrain_steps = pretrain_steps};
  kx_repro_set_budget(&r, s->budget);
  *runs = 2 * (1 + n_factors(s->factors)) * s->seeds;
  *steps = (uint64_t)*runs * r.budget_steps;
}

/* ---------- the rows ---------- */

typedef struct {
  int end;    /* 0 paper, 1 released */
  int factor; /* -1: the end point itself */
  kx_repro_variant v;
  kx_repro_result *res; /* one per seed */
  char diverged[512];   /* the first diverged seed's diverged.txt, "" if none */
  size_t n_diverged;
} row_t;

/* Per end: the end point, then its flips in factor order (the table's
 * order; run_rows runs both end points first). */
static int make_rows(const kx_factors_study *s, row_t *rows, size_t *n) {
  size_t k = 0;
  for (int end = 0; end < 2; end++)
    for (int f = -1; f < KX_DJ_FACTORS; f++) {
      if (f >= 0 && !(s->factors >> f & 1)) continue;
      row_t *r = &rows[k++];
      r->end = end, r->factor = f;
      kx_repro_variant_set(&r->v, kx_dec_attn_find(end_kind[end]), 0, 0);
      if (f >= 0) {
        int rc = kx_repro_variant_form(&r->v, 1u << f);
        if (rc) return rc;
      }
    }
  *n = k;
  return 0;
}

/* ---------- statistics ---------- */

typedef struct {
  double mean, se;
  size_t n;
} stat_t;

/* Over the seeds where x is finite. */
static stat_t summarise(const double *x, size_t n) {
  stat_t s = {NAN, NAN, 0};
  double sum = 0, ss = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i])) sum += x[i], s.n++;
  if (!s.n) return s;
  s.mean = sum / (double)s.n;
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i])) ss += (x[i] - s.mean) * (x[i] - s.mean);
  s.se = s.n > 1 ? sqrt(ss / (double)(s.n - 1) / (double)s.n) : NAN;
  return s;
}

/* Field f of the row, and its difference to the end point seed by seed. */
static void row_stats(const row_t *r, const row_t *end, size_t seeds, int f, double offset, stat_t *value,
                      stat_t *effect) {
  double x[KX_FACTORS_MAX_SEEDS] = {0}, d[KX_FACTORS_MAX_SEEDS] = {0};
  for (size_t k = 0; k < seeds; k++) {
    x[k] = r->res[k].f[f] - offset;
    d[k] = r->res[k].f[f] - end->res[k].f[f];
  }
  *value = summarise(x, seeds);
  *effect = r == end ? (stat_t){NAN, NAN, 0} : summarise(d, seeds);
}

/* ---------- output ---------- */

enum { C_GAP, C_DGAP, C_RCL, C_DRCL, C_RACC, C_DRACC, C_DIV, N_COLS };

typedef struct {
  kx_factors_study *s;
  kx_repro rp;
  double teacher_loss, teacher_recall[3];
  row_t *rows;
  size_t n_rows;
} study;

static const row_t *end_row(const study *st, int end) {
  for (size_t i = 0; i < st->n_rows; i++)
    if (st->rows[i].end == end && st->rows[i].factor < 0) return &st->rows[i];
  return NULL;
}

static void setup_text(const study *st, char *out, size_t cap) {
  const kx_dec_config *c = &st->rp.teacher.cfg;
  snprintf(out, cap,
           "teacher: %zu layers, %zu heads, width %zu (head dim %zu), context %zu, %llu pre-training steps of batch "
           "%llu, validation loss %.4f nats/%s on %zu windows, recall probe (second copy) loss %.3f, accuracy "
           "%.3f (first copy %.3f); each form converted and fine-tuned for %llu steps (%g of the pre-training, "
           "Table 2's schedule), %zu seed%s",
           c->layers, c->heads, c->width, c->width / c->heads, c->ctx, (unsigned long long)st->rp.pretrain_steps,
           (unsigned long long)st->rp.batch, st->teacher_loss, kx_dec_unit(&st->rp.vocab), st->rp.eval_windows, st->teacher_recall[0],
           st->teacher_recall[1], st->teacher_recall[2], (unsigned long long)st->rp.budget_steps, st->s->budget,
           st->s->seeds, st->s->seeds == 1 ? "" : "s");
}

static void footnote(const study *st, kx_strbuf *fn) {
  size_t seeds = st->s->seeds;
  const row_t *paper = end_row(st, 0), *rel = end_row(st, 1);
  kx_sb_add(fn,
         "gap: validation loss after fine-tuning minus the teacher's (nats/%s). recall: the probe of kapprox eval "
         "(random strings of the vocabulary shown twice; loss and accuracy on the second copy), after fine-tuning. "
         "Δ: the row minus its end point (the form it flips one factor of), seed by seed (the same seed gives both "
         "runs the same batches), mean ± standard error of those differences; positive Δgap: the flip makes the gap "
         "larger. diverged: seeds whose loss or gradient became non-finite (left out of the means). "
         "Factors (docs/dijiang-factors.md), the paper's value → the released code's:",
         kx_dec_unit(&st->rp.vocab));
  for (int f = 0; f < KX_DJ_FACTORS; f++)
    kx_sb_add(fn, "%s %s: %s (%s) → %s (%s)", f ? ";" : "", kx_dijiang_factors[f].name, kx_dijiang_factors[f].value[0],
           kx_dijiang_factors[f].meaning[0], kx_dijiang_factors[f].value[1], kx_dijiang_factors[f].meaning[1]);
  kx_sb_add(fn, ".\n");
  if (st->s->factors >> KX_DJ_SQUARE & 1)
    kx_sb_add(fn, "\nThe square factor does nothing under softmax features (a constant per row cancels in the softmax): "
               "the released form's sq row measures how far float rounding alone moves a run, the noise floor "
               "of a paired Δ.\n");
  stat_t gp, ge, gr, gre;
  row_stats(paper, paper, seeds, KX_R_LOSS, 0, &gp, &ge);
  row_stats(rel, rel, seeds, KX_R_LOSS, 0, &gr, &gre);
  double dd[KX_FACTORS_MAX_SEEDS];
  for (size_t k = 0; k < seeds; k++) dd[k] = rel->res[k].f[KX_R_LOSS] - paper->res[k].f[KX_R_LOSS];
  stat_t whole = summarise(dd, seeds);
  kx_sb_add(fn, "\nReleased form minus paper form: Δgap %+.4f", whole.mean);
  if (isfinite(whole.se)) kx_sb_add(fn, " ± %.4f", whole.se);
  kx_sb_add(fn, " nats. Flips whose Δgap is more than twice its standard error:");
  int any = 0;
  for (size_t i = 0; i < st->n_rows; i++) {
    const row_t *r = &st->rows[i];
    if (r->factor < 0) continue;
    stat_t v, e;
    row_stats(r, end_row(st, r->end), seeds, KX_R_LOSS, 0, &v, &e);
    if (!(isfinite(e.se) && fabs(e.mean) > 2 * e.se)) continue;
    kx_sb_add(fn, "%s %s (%+.4f)", any ? "," : "", r->v.label, e.mean);
    any = 1;
  }
  kx_sb_add(fn, "%s.\n", any ? "" : " none");
  any = 0;
  for (size_t i = 0; i < st->n_rows; i++) {
    const row_t *r = &st->rows[i];
    if (!r->n_diverged) continue;
    kx_sb_add(fn, "%s %s: %zu of %zu seeds (%s)", any ? ";" : "\nDiverged:", r->v.label, r->n_diverged, seeds,
           r->diverged);
    any = 1;
  }
  if (any) kx_sb_add(fn, ".\n");
}

static int write_tables(study *st) {
  kx_factors_study *s = st->s;
  static const kx_table_column cols[N_COLS] = {
      {"gap", "gap", "gap", 4, 0},
      {"Δgap", "$\\Delta$gap", "d_gap", 4, 0},
      {"recall loss", "recall loss", "recall_loss", 3, 0},
      {"Δrecall loss", "$\\Delta$recall loss", "d_recall_loss", 3, 0},
      {"recall acc.", "recall acc.", "recall_acc", 3, 0},
      {"Δrecall acc.", "$\\Delta$recall acc.", "d_recall_acc", 3, 0},
      {"diverged", "diverged", "diverged", 0, 1},
  };
  kx_table_row *rows = kx_calloc(st->n_rows, sizeof *rows);
  char (*text)[N_COLS][64] = kx_calloc(st->n_rows, sizeof *text);
  const char *(*cells)[KX_TABLE_MAX_COLS] = kx_calloc(st->n_rows, sizeof *cells);
  kx_strbuf fn = {malloc(4096), 0, 4096};
  int rc = rows && text && cells && fn.p ? 0 : KX_ENOMEM;
  static const int fields[3] = {KX_R_LOSS, KX_R_RCL, KX_R_RACC};
  for (size_t i = 0; !rc && i < st->n_rows; i++) {
    const row_t *r = &st->rows[i], *end = end_row(st, r->end);
    kx_table_row *t = &rows[i];
    t->key[0] = end_name[r->end];
    t->key[1] = r->factor < 0 ? "—" : kx_dijiang_factors[r->factor].name;
    t->key[2] = r->v.label;
    t->rule_after = i + 1 < st->n_rows && (st->rows[i + 1].factor < 0 || st->rows[i + 1].end != r->end);
    for (int j = 0; j < 3; j++) {
      stat_t v, e;
      row_stats(r, end, s->seeds, fields[j], j ? 0 : st->teacher_loss, &v, &e);
      t->mean[2 * j] = v.mean, t->se[2 * j] = v.se;
      t->mean[2 * j + 1] = e.mean, t->se[2 * j + 1] = e.se;
      t->n = v.n > t->n ? v.n : t->n;
      if (r->factor < 0) cells[i][2 * j + 1] = "—";
      if (!v.n) cells[i][2 * j] = "diverged";
    }
    t->mean[C_DIV] = (double)r->n_diverged;
    snprintf(text[i][C_DIV], sizeof text[i][C_DIV], "%zu/%zu", r->n_diverged, s->seeds);
    cells[i][C_DIV] = text[i][C_DIV];
  }
  char setup[2048], stem[PATH_CAP];
  if (!rc) {
    setup_text(st, setup, sizeof setup);
    footnote(st, &fn);
    if (!fn.p) rc = KX_ENOMEM;
  }
  if (!rc) {
    snprintf(stem, sizeof stem, "%s/factors", s->outdir);
    char caption[512];
    snprintf(caption, sizeof caption,
             "The paper's DiJiang and the released code's form, each with one factor flipped: gap to the softmax "
             "teacher (validation loss, nats/%s) and recall probe after the same fine-tuning, mean $\\pm$ standard "
             "error over seeds; $\\Delta$: the difference to the end point, paired by seed.",
             kx_dec_unit(&st->rp.vocab));
    kx_table t = {.stem = stem, .n_keys = 3, .key_md = {"from", "factor", "form"},
                  .key_csv = {"from", "factor", "form"}, .cols = cols, .n_cols = N_COLS,
                  .title = "DiJiang factor study", .command = "kapprox reproduce factors", .setup = setup,
                  .md_footnote = fn.p, .text = cells,
                  .tex_caption = caption};
    rc = kx_table_write(&t, rows, st->n_rows);
  }
  free(fn.p);
  free(rows);
  free(text);
  free(cells);
  return rc;
}

/* ---------- the study ---------- */

/* The end points first (an interrupted study has its references), then
 * the flips. */
static int run_rows(study *st) {
  kx_factors_study *s = st->s;
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < st->n_rows; i++) {
      row_t *r = &st->rows[i];
      if ((r->factor >= 0) != pass) continue;
      for (uint64_t k = 0; k < s->seeds; k++) {
        int fresh, rc;
        kx_repro_job_begin(s->pg, (double)(st->rp.budget_steps + KX_REPRO_RUN_OVERHEAD_STEPS));
        if ((rc = kx_repro_run(&st->rp, &r->v, k, &r->res[k], &fresh)))
          return kx_fail_context(rc, "%s, seed %llu: ", r->v.label, (unsigned long long)k);
        kx_repro_job_end(s->pg, fresh);
        char why[480];
        kx_repro_diverged(&st->rp, &r->v, k, why, sizeof why);
        if (!why[0] && isfinite(r->res[k].f[KX_R_LOSS])) continue;
        if (!r->n_diverged++)
          snprintf(r->diverged, sizeof r->diverged, "seed %llu %s", (unsigned long long)k, why[0] ? why : "has no result");
      }
    }
  return 0;
}

static int run_study(study *st) {
  kx_factors_study *s = st->s;
  kx_repro *rp = &st->rp;
  kx_repro_shard *sh = rp->shard;
  kx_repro_shape shape;
  kx_repro_table2_setup(rp, s->quick, &shape);
  int rc = 0;
  if (sh) { /* the plan pass: every run of every shard */
    rc = kx_repro_teacher_plan(rp, &shape);
    kx_repro_set_budget(rp, s->budget);
    if (!rc) rc = run_rows(st);
    if (!rc) rc = kx_repro_shard_checked(sh);
    kx_repro_progress_restart(s->pg);
    if (rc || sh->dry) return rc;
  }
  rc = kx_repro_teacher(rp, &shape);
  for (size_t i = 0; !rc && i < st->n_rows; i++) rc = kx_repro_variant_check(rp, &st->rows[i].v);
  if (!rc && sh) rc = kx_repro_shard_publish(sh);
  if (!rc && !sh) rc = kx_repro_score(rp, &rp->teacher, &st->teacher_loss, NULL, NULL);
  if (!rc && !sh) rc = kx_repro_recall(rp, &rp->teacher, st->teacher_recall);
  if (rc) return rc;
  kx_repro_set_budget(rp, s->budget);
  s->pg->jobs = st->n_rows * s->seeds;
  s->pg->units_total = (double)s->pg->jobs * (double)(rp->budget_steps + KX_REPRO_RUN_OVERHEAD_STEPS);
  kx_repro_say(s->pg, "%zu forms, %zu seed%s: %zu runs of %llu fine-tuning steps", st->n_rows, s->seeds,
               s->seeds == 1 ? "" : "s", s->pg->jobs, (unsigned long long)rp->budget_steps);
  if ((rc = run_rows(st))) return rc;
  if (sh) {
    kx_repro_shard_report(sh, s->pg->quiet);
    return 0;
  }
  rc = write_tables(st);
  if (!rc) kx_repro_say(s->pg, "done: %s/factors.md, .csv, .tex", s->outdir);
  return rc;
}

static int run_claimed(void *st) { return run_study(st); }

int kx_factors_study_run(kx_factors_study *s) {
  if (s->seeds == 0 || s->seeds > KX_FACTORS_MAX_SEEDS)
    return kx_fail(KX_EINVAL, "seeds must be in [1, %d]", KX_FACTORS_MAX_SEEDS);
  study st = {.s = s};
  kx_repro *rp = &st.rp;
  rp->dir = s->outdir;
  rp->text = s->text;
  rp->teacher_in = s->teacher_in;
  rp->table = "the factor study";
  rp->keep_diverged = 1;
  rp->pg = s->pg;
  size_t cap = 2 * (1 + KX_DJ_FACTORS);
  st.rows = kx_calloc(cap, sizeof *st.rows);
  kx_repro_result *res = kx_calloc(cap * s->seeds, sizeof *res);
  int rc = st.rows && res ? make_rows(s, st.rows, &st.n_rows) : KX_ENOMEM;
  for (size_t i = 0; !rc && i < st.n_rows; i++) st.rows[i].res = res + i * s->seeds;
  /* the output folder is this run's while it writes into it (made if
   * missing, and taken away again if a refused study left it empty) */
  kx_repro_shard sh = {.table = "factors", .root = s->outdir, .i = s->shard_i, .n = s->shard_n, .dry = s->dry_run};
  if (sh.n || sh.dry) rp->shard = &sh;
  if (!rc) rc = kx_repro_claimed(s->outdir, rp->shard, run_claimed, &st);
  kx_repro_shard_free(&sh);
  kx_repro_free(rp);
  free(res);
  free(st.rows);
  return rc;
}

/* ---------- the time it takes ---------- */

int kx_factors_estimate_time(const kx_factors_study *s, kx_factors_estimate *e) {
  memset(e, 0, sizeof *e);
  kx_repro r = {.teacher_in = s->teacher_in, .dir = s->outdir};
  kx_repro_shape shape;
  kx_repro_table2_setup(&r, s->quick, &shape);
  kx_dec_config cfg;
  kx_dec_config_default(&cfg);
  uint64_t pretrain = kx_repro_table2_pretrain_steps(s->quick), batch = shape.batch ? shape.batch : 16;
  if (shape.layers) cfg.layers = shape.layers, cfg.heads = shape.heads, cfg.width = shape.width, cfg.ctx = shape.ctx;
  cfg.rotary_dims = (cfg.width / cfg.heads / 4) & ~(size_t)1;
  /* a teacher already there gives its shape, and whether it is finished */
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s/teacher.h5", s->outdir);
  const char *teacher = s->teacher_in ? s->teacher_in : kx_path_exists(path) ? path : NULL;
  e->teacher_steps = pretrain;
  if (teacher) {
    kx_decoder m;
    kx_dec_vocab v;
    kx_adamw opt = {0};
    kx_dec_train_state st = {0};
    int rc = kx_dec_ckpt_load(teacher, &m, &v, &opt, &st);
    if (rc && s->teacher_in) { /* weights only: taken as finished, as the study takes it */
      kx_error_clear();
      rc = kx_dec_ckpt_load(teacher, &m, &v, NULL, NULL);
      st.steps = st.step = pretrain;
    }
    if (rc) return rc;
    cfg = m.cfg;
    pretrain = st.steps, batch = st.batch ? st.batch : batch;
    e->teacher_steps = st.steps - st.step;
    kx_dec_free(&m);
    kx_dec_vocab_free(&v);
    kx_adamw_free(&opt);
  }
  char *text = NULL;
  int generated = 0, rc = s->text ? ((text = strdup(s->text)) ? 0 : KX_ENOMEM) : kx_dec_default_corpus(&text, &generated);
  kx_dec_data data = {0};
  if (!rc) rc = kx_dec_data_load(text, NULL, &data);
  free(text);
  cfg.vocab = data.vocab.V;
  for (int i = 0; !rc && i < 3; i++) {
    kx_dec_config c = cfg;
    snprintf(c.attn_kind, sizeof c.attn_kind, "%s", i < 2 ? end_kind[i] : "softmax");
    c.dijiang_flips = 0;
    c.softmax_layers = 0;
    rc = kx_repro_step_seconds(&c, &data, batch, 5, &e->step_s[i]);
  }
  kx_dec_data_free(&data);
  if (rc) return rc;
  kx_factors_count(s, pretrain, &e->runs, &e->steps);
  /* each end's flips cost about what the end costs */
  double per_run = (double)e->steps / (double)e->runs + KX_REPRO_RUN_OVERHEAD_STEPS;
  e->seconds = (double)e->runs / 2.0 * per_run * (e->step_s[0] + e->step_s[1]) +
               (double)e->teacher_steps * e->step_s[2];
  return 0;
}
