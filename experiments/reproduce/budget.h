/* kapprox reproduce budget: how the gap between a converted model and its
 * softmax teacher closes as the fine-tuning budget grows.
 *
 * Table 2 fine-tunes every kind for one budget (1/16 of the pre-training
 * steps), where every curve is still falling, so it measures how fast a
 * kind starts to adapt.  The budget study fine-tunes each chosen variant
 * at several budgets, each a run with its own schedule (kx_repro_run, the
 * runs/b<steps>/<label>-s<seed>/ layout: a run of Table 2 with the same
 * teacher, budget, variant and seed is the same run and is reused), plus
 * rows trained from scratch with the same budgets, and reports per variant
 * the gap to the teacher at every budget, the tokens needed to come within
 * 0.1 and 0.25 nats of it, a fitted curve gap ~ c + a tokens^-alpha, and
 * the rank order of the variants at each budget.
 *
 * Pieces usable on their own: the budget list, variant labels, the fit and
 * the threshold interpolation. */
#ifndef KX_BUDGET_H
#define KX_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/reproduce/repro_runs.h"

#define KX_BUDGET_MAX 16
#define KX_BUDGET_MAX_VARIANTS 64
#define KX_BUDGET_MAX_SEEDS 32

/* ---------- budgets ---------- */

/* A fine-tuning budget: a fraction of the teacher's pre-training steps. */
typedef struct {
  double value;
  char text[32]; /* as given: "1/64", "0.25", "2" */
} kx_budget;

/* "1/64,1/16,1/4,1": decimals or a/b, each > 0 and at most 100, none
 * repeated (0.25 and 1/4 are the same budget); sorted ascending. */
int kx_budget_parse_list(const char *s, const char *what, kx_budget *out, size_t cap, size_t *n);
/* Fine-tuning steps of each budget with `pretrain_steps` steps of
 * pre-training (kx_repro_set_budget's rounding); refuses two budgets that
 * give the same number of steps. */
int kx_budget_steps(const kx_budget *b, size_t n, uint64_t pretrain_steps, uint64_t *steps);

/* ---------- variants ---------- */

/* A variant from its label: an attention kind's name followed by options,
 * "hedgehog+AT" (attention transfer for the first quarter of the budget);
 * a DiJiang kind's form switches come first ("dijiang+softmax+noden+AT",
 * dec_dijiang_form.h).
 * scratch = 1: the kind trained from scratch (no options).  Softmax
 * converted (no options) is the control: the teacher copied and fine-tuned
 * like every variant, unranked, and the table's "beyond the continued
 * teacher" columns give every row's loss minus its own, seed by seed. */
int kx_budget_variant_parse(const char *label, int scratch, kx_repro_variant *v);
/* The variants of a study: `kinds` converted ("all": every kind but
 * softmax, and +AT for the kinds with a feature map to transfer), then
 * `scratch_kinds` from scratch (NULL: none).  A label listed twice is
 * refused. */
int kx_budget_variants(const char *kinds, const char *scratch_kinds, kx_repro_variant *v, size_t cap, size_t *n);

/* ---------- the fit ---------- */

/* gap ~ c + a tokens^-alpha by least squares over n points (every seed's
 * point at every budget). */
typedef struct {
  int ok;           /* 0: n/a (see why) */
  const char *why;  /* when !ok: "fewer than 3 budgets", ... */
  double c, a, alpha;
  /* Half-widths of the 95 % intervals of c and alpha from the fit's
   * covariance (residual variance, Student t with n - 3 degrees of
   * freedom); NaN when there is no degree of freedom left. */
  double c_hw, alpha_hw;
  /* alpha's interval excludes 0: the gap is seen to level off.  Else c is
   * an extrapolation the points do not support (a gap falling along a
   * straight line in log tokens fits c -> -inf, alpha -> 0). */
  int levels_off;
  double rss;
  size_t n, distinct, dof;
} kx_budget_fit;

/* Needs at least 3 distinct token counts (3 parameters); otherwise, or
 * when no decreasing power law fits (alpha <= 0, no convergence, the data
 * do not determine the parameters), f->ok = 0 with f->why.  Returns
 * non-zero only on a failed allocation. */
int kx_budget_fit_power(const double *tokens, const double *gap, size_t n, kx_budget_fit *f);

/* ---------- tokens to a threshold ---------- */

enum {
  KX_WITHIN_INTERPOLATED, /* between two measured budgets */
  KX_WITHIN_SMALLEST,     /* already at the smallest budget: *tokens is an upper bound */
  KX_WITHIN_NOT           /* not within the largest budget: *tokens = inf */
};
/* The tokens at which the gap (one value per budget, tokens ascending)
 * first comes within `threshold` nats: linear in log tokens between the
 * last budget above the threshold and the first at or below it. */
int kx_budget_tokens_within(const double *tokens, const double *gap, size_t n, double threshold, double *at);

/* ---------- the study ---------- */

typedef struct {
  /* set by the caller */
  const char *outdir;
  const char *teacher_in; /* NULL: outdir/teacher.h5, trained if needed */
  const char *text;       /* NULL: the KJV corpus */
  double ft_lr;           /* fine-tuning's peak learning rate; 0: the default */
  int quick, figures;
  kx_budget budgets[KX_BUDGET_MAX];
  size_t n_budgets;
  size_t seeds[KX_BUDGET_MAX]; /* seeds 0..seeds[b]-1 of a converted variant at budget b */
  size_t scratch_seeds;        /* of a variant from scratch, at every budget */
  kx_repro_variant v[KX_BUDGET_MAX_VARIANTS]; /* kx_budget_variants */
  size_t nv;
  kx_repro_progress *pg;
  size_t shard_i, shard_n; /* shard i of N (repro_shard.h); N 0: every run, then the tables */
  int dry_run;             /* list the runs and their state; do nothing */
} kx_budget_study;

/* The teacher's pre-training steps when the study trains it (quick or
 * kapprox train's default), for checking the budgets before any work. */
uint64_t kx_budget_planned_pretrain_steps(int quick);
/* Whether `dir` can be the output folder: an existing writable directory,
 * or a path whose nearest existing ancestor is one. */
int kx_budget_check_outdir(const char *dir);

/* Trains (or reuses) the teacher, runs every variant at every budget (the
 * smallest budget first, so an interrupted study has its cheap runs), and
 * writes outdir/budget.{md,csv,tex}, budget_ranks.{md,csv,tex} and the
 * figure budget_gap.{png,svg} (data in outdir/figdata/).  A rerun keeps
 * every finished run.  The output folder is claimed for the whole study
 * and each run folder while its run computes (kx_repro_claimed,
 * kx_repro_run): a second writer into the same folder, a Table 2 run
 * included, is refused naming the first.  On failure, an output folder it
 * created and left empty is removed. */
int kx_budget_study_run(kx_budget_study *s);

#endif
