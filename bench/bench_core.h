/*
 * bench_core.h - what the files of the bench_core program share:
 * bench_core.c (options, output, main), bench_core_array.c (the pm_map
 * cases), bench_core_stream.c (the pm_imap and pool cases) and
 * bench_core_omp.c (the OpenMP reference loops).
 * The OpenMP file is the only one that needs the compiler's OpenMP support;
 * built without it, its functions exist but bco_omp_available() returns 0 and
 * the cases report "omp":"unavailable" instead of running them.
 * Include after defining _POSIX_C_SOURCE 200809L (bench_util.h needs it).
 */
#ifndef PM_BENCH_CORE_H
#define PM_BENCH_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "bench_util.h"
#include "parmap.h"

#ifndef BCO_BUILD_TYPE
#define BCO_BUILD_TYPE "unknown" /* CMake passes CMAKE_BUILD_TYPE */
#endif

/* A run() result meaning "parmap said PM_OK but its report does not add up";
 * outside the PM_E* range. */
#define BCO_EBADREPORT (-1000)

#define BCO_MAX_CASES 16

/* The command line, resolved (sizes already chosen for --quick). */
typedef struct bco_config {
    int threads, reps, quick, settle_ms;
    const char *cases[BCO_MAX_CASES];
    int ncases;
    size_t trivial_n, chunk1_n, spin_n, imap_n, pool_maps, pool_items;
    double spin_us;
} bco_config;

extern bco_config bco_cfg;
extern int bco_all_ok;   /* cleared by any failed check or parmap error */

/* A goal "ratio <= x" is also reported as met "within 2%" when ratio <= x *
 * BCO_TOLERANCE: two implementations that tie are measured 1-3% apart either
 * way on a noisy VM, and a strict verdict alone would be a coin toss. */
#define BCO_TOLERANCE 1.02
#define BCO_NO_TOLERANCE (-2)

/* Time every implementation (bu_run with the configured reps and settle
 * time) and record how busy other processes kept the machine meanwhile. */
void bco_run(bu_impl *im, int count);

/* Output helpers (bench_core.c). */
void bco_emit_begin(bu_json *j, const char *bench, const bu_impl *im, size_t n);
void bco_emit_ratio(bu_json *j, const char *key, const bu_impl *a, const bu_impl *b);
/* goal_met (1, 0, or -1: unknown, printed null) and goal_met_within_2pct
 * (same values, or BCO_NO_TOLERANCE to leave it out). */
void bco_emit_goal(bu_json *j, int met, int met_within_tolerance);
void bco_fail_alloc(const char *bench);

/* Cases 1-3 (bench_core_array.c): chunksize 0 or 1; skewed 0 or 1. */
/* The timed work (bench_work.c). out = 2 * in on doubles: */
int bco_twice(void *user, const void *in, void *out);
/* ~`iters` steps of busy, non-vectorisable arithmetic; deterministic. */
typedef struct bco_spin_item {
    uint64_t seed, iters;
} bco_spin_item;
uint64_t bco_spin(uint64_t seed, uint64_t iters);
int bco_spin_fn(void *user, const void *in, void *out);   /* in: bco_spin_item */
double bco_calibrate_spin(void);                           /* bco_spin iterations per us */

void bco_case_trivial(const char *bench, long chunksize, size_t n);
void bco_case_spin(const char *bench, int skewed, size_t n);

/* Cases 4 and 5 (bench_core_stream.c). */
void bco_case_imap(const char *bench, size_t n);
void bco_case_pool(const char *bench, size_t maps, size_t items);

/* The OpenMP version macro (_OPENMP, e.g. 201511) of the comparison code, or 0
 * when it was built without OpenMP. */
long bco_omp_version(void);
int bco_omp_available(void);

/* y[i] = 2 * x[i], written out as a plain loop (the compiler may vectorise):
 * what an OpenMP user would write. */
void bco_twice_static(const double *x, double *y, size_t n, int threads);
void bco_twice_dynamic1(const double *x, double *y, size_t n, int threads);

/* out[i] = fn(user, in[i]) through the function pointer, one call per item:
 * exactly the work parmap does per item, minus parmap's scheduling. */
void bco_call_static(pm_fn fn, void *user, const void *in, size_t in_stride,
                     void *out, size_t out_stride, size_t n, int threads);
void bco_call_dynamic1(pm_fn fn, void *user, const void *in, size_t in_stride,
                       void *out, size_t out_stride, size_t n, int threads);

#endif
