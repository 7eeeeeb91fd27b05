/*
 * parmap_kernel.h - C kernels for parmap-wasm's mapKernel(): a per-item C
 * function compiled into the WebAssembly module and run by the threads
 * executor over a typed array, with no JavaScript per item.
 *
 * A kernel maps one input element (an int32, a double...) to one output
 * record of out_len elements of out_type (mandelbrot_row: a row index to
 * width RGBA pixels). Its parameters are named doubles filled from the
 * options of mapKernel(name, input, { ...params }), in the order listed in
 * `params`, defaults in `defaults`.
 *
 *     static int twice(void *params, const void *in, void *out) {
 *         const double *p = params;                 // p[0] is "by"
 *         *(double *)out = p[0] * *(const double *)in;
 *         return 0;                                 // nonzero: the item failed
 *     }
 *     PM_KERNEL(scale, PM_K_F64, PM_K_F64, "by", twice, .defaults = { 2 });
 *
 * Put the file in wasm/kernels/ (or list extra folders in
 * PMW_KERNEL_DIRS when configuring) and rebuild: `npm run build` in wasm/.
 * Kernels register themselves at start-up (a constructor), so no central
 * list needs editing. Natively (the benchmark) the same file compiles with
 * gcc and registers the same way.
 *
 * The function runs concurrently on several threads: `params` is read-only.
 * The output record has .out_len elements (0 means 1), or, when
 * .out_len_param names a parameter, params[that] * .out_len_mul (0 means 1)
 * elements (mandelbrot_row: "width" times 4 bytes of RGBA).
 */
#ifndef PARMAP_KERNEL_H
#define PARMAP_KERNEL_H

#include "parmap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types, as in JavaScript's typed arrays. */
typedef enum pm_ktype {
    PM_K_I8 = 1, PM_K_U8, PM_K_U8C, PM_K_I16, PM_K_U16, PM_K_I32, PM_K_U32,
    PM_K_F32, PM_K_F64
} pm_ktype;

#define PM_KERNEL_MAX_PARAMS 16

typedef struct pm_kernel {
    const char *name;
    pm_ktype in_type;         /* one input element per item */
    pm_ktype out_type;        /* out_len elements per item */
    const char *params;       /* "width,height,maxIter" : comma-separated names */
    pm_fn fn;                 /* fn(const double params[], in, out) */
    double defaults[PM_KERNEL_MAX_PARAMS];
    int out_len;              /* fixed output elements per item (0: 1) ... */
    const char *out_len_param;/* ... or, when set, that parameter's value ... */
    int out_len_mul;          /* ... times this (0: 1) */
    const char *doc;          /* one line for listKernels() */
    struct pm_kernel *next;   /* registry (private) */
} pm_kernel;

/* Add a kernel to the registry (what PM_KERNEL does at start-up). */
void pm_kernel_register(pm_kernel *k);
/* The kernel called `name`, or NULL. */
const pm_kernel *pm_kernel_find(const char *name);
/* The first registered kernel (then ->next), for listing. */
const pm_kernel *pm_kernel_first(void);
/* Output elements per item for these parameters. */
int pm_kernel_out_len(const pm_kernel *k, const double *params);

#define PM_KERNEL(NAME, IN, OUT, PARAMS, FN, ...)                                 \
    static pm_kernel pm_kernel_##NAME = {.name = #NAME, .in_type = (IN),             \
                                         .out_type = (OUT), .params = (PARAMS),      \
                                         .fn = (FN), __VA_ARGS__};                   \
    __attribute__((constructor)) static void pm_kernel_reg_##NAME(void)            \
    {                                                                                \
        pm_kernel_register(&pm_kernel_##NAME);                                       \
    }

#ifdef __cplusplus
}
#endif
#endif
