/* rnngraph_run.h: calling a model's kernels without TVM's runtime.
 *
 * Included once by each model's generated .c file (every function here is static, so
 * two models link side by side). The model's .c file describes its kernels' arguments
 * (rg_arg tables: kind, dtype, shape with T and B left open) and holds its weights;
 * rg_call checks the caller's arrays, lays out the work buffers in one workspace,
 * fills the initial values, and calls the kernel (with or without sequence lengths).
 */
#ifndef RNNGRAPH_RUN_H
#define RNNGRAPH_RUN_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnngraph_abi.h"

#define RG_ALIGN 64   /* bytes every array's data must be aligned to */
#define RG_MAX_DIMS 8
#define RG_T (-1)     /* a dimension that is the number of steps */
#define RG_B (-2)     /* a dimension that is the batch */

enum { RG_INPUT, RG_LENS, RG_STATIC, RG_INIT, RG_WORK, RG_RESULT };

typedef struct {
  const char *name; /* the caller's name for it (for messages) */
  int8_t kind;
  uint8_t code, bits;
  int8_t ndim;
  int64_t dims[RG_MAX_DIMS];
  /* RG_INPUT, RG_RESULT: index of the caller's pointer; RG_INIT: that of the caller's
   * initial value, or -1 (none can be given); RG_STATIC: index of the value */
  int32_t slot;
  /* RG_INIT without the caller's value: index of the fixed value of one batch row,
   * -1 zeros, -2 the caller must give it */
  int32_t fixed;
} rg_arg;

typedef int32_t (*rg_kernel)(void *self, const TVMFFIAny *args, int32_t num_args,
                             TVMFFIAny *result);

typedef struct {
  const char *name;
  rg_kernel entry[2];        /* every row runs all steps; with sequence lengths */
  const rg_arg *args[2];
  int32_t nargs[2];
  const void *const *values; /* weights and fixed initial rows */
} rg_model;

/* The message of the last failure, shared by every model linked in (weak: one copy). */
__attribute__((weak)) char rnngraph_error[512];

__attribute__((weak)) void TVMFFIErrorSetRaisedFromCStrParts(const char *kind,
                                                            const char **parts, int32_t n) {
  size_t used = (size_t)snprintf(rnngraph_error, sizeof rnngraph_error, "%s: ", kind);
  for (int32_t i = 0; i < n && used < sizeof rnngraph_error; ++i) {
    used += (size_t)snprintf(rnngraph_error + used, sizeof rnngraph_error - used, "%s",
                             parts[i]);
  }
}

static int rg_fail(const rg_model *m, const char *fmt, ...) {
  int used = snprintf(rnngraph_error, sizeof rnngraph_error, "%s: ", m->name);
  va_list ap;
  va_start(ap, fmt);
  if (used > 0 && (size_t)used < sizeof rnngraph_error) {
    vsnprintf(rnngraph_error + used, sizeof rnngraph_error - (size_t)used, fmt, ap);
  }
  va_end(ap);
  return -1;
}

static int64_t rg_dim(int64_t d, int64_t T, int64_t B) {
  return d == RG_T ? T : d == RG_B ? B : d;
}

static size_t rg_bytes(const rg_arg *a, int64_t T, int64_t B) {
  size_t n = (size_t)(a->bits / 8);
  for (int i = 0; i < a->ndim; ++i) n *= (size_t)rg_dim(a->dims[i], T, B);
  return n;
}

static size_t rg_rounded(size_t n) { return (n + RG_ALIGN - 1) / RG_ALIGN * RG_ALIGN; }

/* Bytes of workspace a call with T steps and B rows needs (either entry). */
static size_t rg_workspace(const rg_model *m, int64_t T, int64_t B) {
  size_t most = 0;
  for (int e = 0; e < 2; ++e) {
    size_t total = 0;
    for (int32_t i = 0; i < m->nargs[e]; ++i) {
      const rg_arg *a = &m->args[e][i];
      if (a->kind == RG_INIT || a->kind == RG_WORK) total += rg_rounded(rg_bytes(a, T, B));
    }
    if (total > most) most = total;
  }
  /* room to align the workspace's start, and for an aligned copy of the lengths */
  return most + RG_ALIGN + rg_rounded((size_t)B * sizeof(int64_t));
}

/* An initial value's buffer: every plane before the batch axis (a tap's steps back)
 * holds the caller's (B, row) value, the fixed row repeated over the batch, or zeros. */
static int rg_fill(const rg_model *m, const rg_arg *a, void *dst, int64_t T, int64_t B,
                   void *const *ptrs) {
  size_t elem = (size_t)(a->bits / 8), row = elem, planes = 1;
  int at = 0;
  while (at < a->ndim && a->dims[at] != RG_B) planes *= (size_t)a->dims[at++];
  for (int i = at + 1; i < a->ndim; ++i) row *= (size_t)rg_dim(a->dims[i], T, B);
  const void *given = a->slot >= 0 ? ptrs[a->slot] : NULL;
  if (given == NULL && a->fixed == -2) {
    return rg_fail(m, "'%s' takes its initial value from the caller: set it", a->name);
  }
  char *out = (char *)dst;
  for (size_t p = 0; p < planes; ++p) {
    if (given != NULL) {
      memcpy(out, given, row * (size_t)B);
      out += row * (size_t)B;
    } else if (a->fixed >= 0) {
      for (int64_t b = 0; b < B; ++b, out += row) memcpy(out, m->values[a->fixed], row);
    } else {
      memset(out, 0, row * (size_t)B);
      out += row * (size_t)B;
    }
  }
  return 0;
}

static int rg_aligned(const void *p) { return ((uintptr_t)p % RG_ALIGN) == 0; }

#ifdef RNNGRAPH_THREADS
/* Kernels split over the cores (compiled with parallel=...) launch a group of tasks once
 * per call, every task running the whole kernel and taking its share of each parallel
 * loop, a barrier between phases: TVM's thread pool, here one POSIX thread per task for
 * the call, and a spinning barrier (a step has a few of them: sleeping would cost more).
 * The kernels reach both through two function pointers they define. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define RG_MAX_TASKS 64

typedef struct {
  void *sync_handle;
  int32_t num_task;
} rg_group;
typedef int (*rg_task_fn)(int task_id, rg_group *group, void *cdata);

typedef struct {
  atomic_int arrived;
  atomic_int round;
} rg_sync;

typedef struct {
  rg_task_fn fn;
  rg_group *group;
  void *cdata;
  atomic_int *gate; /* 0: wait, 1: run, -1: give up (not every task could start) */
  int id, status;
} rg_task;

extern __attribute__((weak)) int (*__TVMBackendParallelLaunch)(rg_task_fn, void *, int);
extern __attribute__((weak)) int (*__TVMBackendParallelBarrier)(int, rg_group *);

__attribute__((weak)) int rnngraph_threads; /* tasks per launch; 0: one per online CPU */

static int rg_barrier(int task_id, rg_group *group) {
  (void)task_id;
  rg_sync *sync = (rg_sync *)group->sync_handle;
  int round = atomic_load(&sync->round);
  if (atomic_fetch_add(&sync->arrived, 1) == group->num_task - 1) {
    atomic_store(&sync->arrived, 0);
    atomic_fetch_add(&sync->round, 1);
  } else {
    while (atomic_load(&sync->round) == round) {
    }
  }
  return 0;
}

static void *rg_run_task(void *arg) {
  rg_task *t = (rg_task *)arg;
  int gate;
  while ((gate = atomic_load(t->gate)) == 0) {
  }
  if (gate > 0) t->status = t->fn(t->id, t->group, t->cdata);
  return NULL;
}

static int rg_launch(rg_task_fn fn, void *cdata, int num_task) {
  int n = num_task > 0 ? num_task : rnngraph_threads;
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n <= 0) n = 1;
  if (n > RG_MAX_TASKS) n = RG_MAX_TASKS;
  rg_sync sync;
  atomic_init(&sync.arrived, 0);
  atomic_init(&sync.round, 0);
  atomic_int gate;
  atomic_init(&gate, 0);
  rg_group group = {&sync, n};
  rg_task tasks[RG_MAX_TASKS];
  pthread_t threads[RG_MAX_TASKS];
  for (int i = 0; i < n; ++i) tasks[i] = (rg_task){fn, &group, cdata, &gate, i, 0};
  int started = 1;
  while (started < n &&
         pthread_create(&threads[started], NULL, rg_run_task, &tasks[started]) == 0) {
    ++started;
  }
  atomic_store(&gate, started == n ? 1 : -1); /* (a barrier needs every task running) */
  if (started == n) rg_run_task(&tasks[0]);
  int status = started == n ? tasks[0].status : -1;
  for (int i = 1; i < started; ++i) {
    pthread_join(threads[i], NULL);
    if (tasks[i].status != 0) status = tasks[i].status;
  }
  if (started < n) snprintf(rnngraph_error, sizeof rnngraph_error, "could not start %d threads", n);
  return status;
}

static void rg_use_threads(void) {
  if (&__TVMBackendParallelLaunch != NULL) __TVMBackendParallelLaunch = rg_launch;
  if (&__TVMBackendParallelBarrier != NULL) __TVMBackendParallelBarrier = rg_barrier;
}
#else
static void rg_use_threads(void) {}
#endif

/* Run the model: ptrs holds the caller's arrays by slot, lens is NULL or (B,) lengths.
 * t, shapes, any: room for the larger entry's arguments. */
static int rg_call(const rg_model *m, int64_t T, int64_t B, void *const *ptrs,
                   const int64_t *lens, void *workspace, DLTensor *t,
                   int64_t (*shapes)[RG_MAX_DIMS], TVMFFIAny *any) {
  if (T < 0 || B < 0) return rg_fail(m, "T and B must be >= 0, got T=%lld B=%lld",
                                     (long long)T, (long long)B);
  if (lens != NULL) {
    for (int64_t b = 0; b < B; ++b) {
      if (lens[b] < 0 || lens[b] > T) {
        return rg_fail(m, "sequence_lens[%lld] = %lld is not in [0, %lld]", (long long)b,
                       (long long)lens[b], (long long)T);
      }
    }
  }
  void *owned = NULL;
  (void)owned;
  if (workspace == NULL) {
#ifdef RNNGRAPH_NO_MALLOC
    return rg_fail(m, "no workspace given (%s_workspace_bytes says how much)", m->name);
#else
    owned = workspace = malloc(rg_workspace(m, T, B));
    if (owned == NULL) return rg_fail(m, "out of memory for the workspace");
#endif
  }
  char *free_at = (char *)rg_rounded((uintptr_t)workspace);
  const int e = lens != NULL;
  int status = 0;
  for (int32_t i = 0; i < m->nargs[e] && status == 0; ++i) {
    const rg_arg *a = &m->args[e][i];
    void *data = NULL;
    switch (a->kind) {
      case RG_INPUT:
      case RG_RESULT:
        data = ptrs[a->slot];
        if (data == NULL && rg_bytes(a, T, B) != 0) {
          status = rg_fail(m, "'%s' is NULL", a->name);
        } else if (!rg_aligned(data)) {
          status = rg_fail(m, "'%s' is not aligned to %d bytes", a->name, RG_ALIGN);
        }
        break;
      case RG_LENS: /* (copied: any alignment will do) */
        data = free_at;
        free_at += rg_rounded((size_t)B * sizeof(int64_t));
        memcpy(data, lens, (size_t)B * sizeof(int64_t));
        break;
      case RG_STATIC:
        data = (void *)m->values[a->slot];
        break;
      default: /* RG_INIT, RG_WORK: in the workspace */
        data = free_at;
        free_at += rg_rounded(rg_bytes(a, T, B));
        if (a->kind == RG_INIT) status = rg_fill(m, a, data, T, B, ptrs);
    }
    for (int d = 0; d < a->ndim; ++d) shapes[i][d] = rg_dim(a->dims[d], T, B);
    t[i].data = data;
    t[i].device.device_type = 1;
    t[i].device.device_id = 0;
    t[i].ndim = a->ndim;
    t[i].dtype.code = a->code;
    t[i].dtype.bits = a->bits;
    t[i].dtype.lanes = 1;
    t[i].shape = shapes[i];
    t[i].strides = NULL;
    t[i].byte_offset = 0;
    any[i].type_index = RNNGRAPH_DLTENSOR_PTR;
    any[i].zero_padding = 0;
    any[i].v_ptr = &t[i];
  }
  if (status == 0) {
    rg_use_threads();
    TVMFFIAny result;
    memset(&result, 0, sizeof result);
    if (m->entry[e](NULL, any, m->nargs[e], &result) != 0) status = -1;
  }
#ifndef RNNGRAPH_NO_MALLOC
  free(owned);
#endif
  return status;
}

#endif /* RNNGRAPH_RUN_H */
