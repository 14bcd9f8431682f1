/* Runs led by rank 0 (dec_led.h): the leader's messages and the
 * followers' loop. */
#include "experiments/model/dec_led.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_dp.h"
#include "core/kx_error.h"

/* One message from the leader: a job, or the end.  The option strings of
 * a training run travel in fixed fields; a path too long for them is
 * refused on rank 0 before anything is sent. */
enum { JOB_TRAIN = 1, JOB_END = 2, JOB_TRANSFER = 3, JOB_STRINGS = 7, JOB_STRING_CAP = 4096 };
typedef struct {
  int32_t kind, status;
  /* JOB_TRAIN */
  kx_dec_train_opts o;                        /* its pointers are rank 0's: rebuilt from the fields below */
  int32_t given[JOB_STRINGS];                 /* 1: the string was not NULL */
  char str[JOB_STRINGS][JOB_STRING_CAP];
  uint64_t vocab_n;                           /* o.vocab's code points, sent after this message */
  int32_t vocab_given, vocab_ids;
  /* JOB_TRANSFER: then the teacher's parameters, the student's and the
   * n_train tokens of the training stream follow */
  kx_transfer_opts t;                         /* t.dump is NULL (refused under mpirun) */
  kx_dec_config teacher, student;
  uint64_t n_train;
} led_job;

static int leading;

/* The option strings of o, in the order of led_job.str. */
static void job_strings(kx_dec_train_opts *o, const char **s[JOB_STRINGS]) {
  s[0] = &o->dijiang_form, s[1] = &o->text, s[2] = &o->out, s[3] = &o->log, s[4] = &o->resume;
  s[5] = &o->init_from, s[6] = &o->dump_grads;
}

int kx_dec_lead_train(const kx_dec_train_opts *o) {
  if (!leading) return 0;
  led_job *j = kx_calloc(1, sizeof *j);
  if (!j) return KX_ENOMEM;
  j->kind = JOB_TRAIN;
  j->o = *o;
  const char **s[JOB_STRINGS];
  job_strings(&j->o, s);
  int rc = 0;
  for (int i = 0; i < JOB_STRINGS && !rc; i++) {
    if (!(j->given[i] = *s[i] != NULL)) continue;
    if (strlen(*s[i]) >= JOB_STRING_CAP)
      rc = kx_fail(KX_EINVAL, "the path '%.80s...' is longer than %d bytes, the most a data-parallel run passes on",
                   *s[i], JOB_STRING_CAP - 1);
    else
      snprintf(j->str[i], JOB_STRING_CAP, "%s", *s[i]);
  }
  if (o->vocab) j->vocab_given = 1, j->vocab_n = o->vocab->V, j->vocab_ids = o->vocab->ids;
  if (!rc) rc = kx_dp_bcast_idle(j, sizeof *j);
  if (!rc && o->vocab) rc = kx_dp_bcast(o->vocab->vocab, o->vocab->V * sizeof(uint32_t));
  free(j);
  return rc;
}

int kx_dec_lead_transfer(const kx_decoder *teacher, const kx_decoder *student, const kx_dec_data *data,
                         const kx_transfer_opts *o) {
  if (!leading) return 0;
  led_job *j = kx_calloc(1, sizeof *j);
  if (!j) return KX_ENOMEM;
  j->kind = JOB_TRANSFER;
  j->t = *o;
  j->teacher = teacher->cfg, j->student = student->cfg;
  j->n_train = data->n_train;
  int rc = kx_dp_bcast_idle(j, sizeof *j);
  free(j);
  /* fixed sizes from here: the followers know them from the message */
  if (!rc) rc = kx_dp_bcast(teacher->params, teacher->tab.total * sizeof(float));
  if (!rc) rc = kx_dp_bcast(student->params, student->tab.total * sizeof(float));
  if (!rc) rc = kx_dp_bcast(data->train, data->n_train * sizeof(int));
  return rc;
}

/* A follower's attention transfer: the models and the stream from rank 0,
 * then the transfer with it.  Out of memory is the end of every rank: the
 * leader is already sending. */
static void serve_transfer(led_job *j) {
  kx_decoder t, s;
  memset(&t, 0, sizeof t), memset(&s, 0, sizeof s);
  kx_dec_data data;
  memset(&data, 0, sizeof data);
  j->teacher.attn_kind[sizeof j->teacher.attn_kind - 1] = '\0';
  j->student.attn_kind[sizeof j->student.attn_kind - 1] = '\0';
  if (kx_dec_create(&t, &j->teacher) || kx_dec_create(&s, &j->student)) kx_dp_abort(kx_error_message());
  data.n_train = j->n_train;
  data.train = kx_malloc((j->n_train ? j->n_train : 1) * sizeof(int));
  if (!data.train) kx_dp_abort("out of memory");
  kx_dp_bcast(t.params, t.tab.total * sizeof(float));
  kx_dp_bcast(s.params, s.tab.total * sizeof(float));
  kx_dp_bcast(data.train, j->n_train * sizeof(int));
  j->t.dump = NULL;
  kx_dec_transfer(&t, &s, &data, &j->t, NULL, NULL);
  kx_error_clear();
  free(data.train);
  kx_dec_free(&t);
  kx_dec_free(&s);
}

static void serve_train(led_job *j) {
  const char **s[JOB_STRINGS];
  job_strings(&j->o, s);
  for (int i = 0; i < JOB_STRINGS; i++) *s[i] = j->given[i] ? j->str[i] : NULL;
  kx_dec_vocab vocab = {0};
  j->o.vocab = NULL;
  if (j->vocab_given) {
    vocab.V = j->vocab_n, vocab.ids = j->vocab_ids;
    vocab.vocab = kx_malloc((vocab.V ? vocab.V : 1) * sizeof(uint32_t));
    if (!vocab.vocab) kx_dp_abort("out of memory");
    kx_dp_bcast(vocab.vocab, vocab.V * sizeof(uint32_t));
    j->o.vocab = &vocab;
  }
  kx_dec_train(&j->o, NULL, NULL);
  kx_error_clear();
  kx_dec_vocab_free(&vocab);
}

/* A follower's side of kx_dec_train_led: returns rank 0's value.  A job
 * that fails fails on every rank alike (kx_dp_agree): the leader reports
 * it and decides what comes next. */
static int serve(void) {
  led_job *j = kx_calloc(1, sizeof *j);
  if (!j) kx_dp_abort("out of memory"); /* never a leader waiting for a follower that gave up */
  int status = 0;
  for (;;) {
    if (kx_dp_bcast_idle(j, sizeof *j)) break; /* cannot fail: a fixed size */
    if (j->kind == JOB_TRAIN) {
      serve_train(j);
    } else if (j->kind == JOB_TRANSFER) {
      serve_transfer(j);
    } else {
      status = j->status;
      break;
    }
  }
  free(j);
  return status;
}

int kx_dec_train_led(int (*lead)(void *arg), void *arg) {
  if (kx_dp_size() == 1) return lead(arg);
  if (kx_dp_rank() != 0) return serve();
  leading = 1;
  int status = lead(arg);
  leading = 0;
  static led_job end; /* static: the end is sent even without memory */
  end.kind = JOB_END, end.status = status;
  kx_dp_bcast_idle(&end, sizeof end);
  return status;
}
