/*
 * affine.c - the affine kernel: y = by * x + plus, Float64Array to
 * Float64Array. The README's "your own kernels" example, compiled in: one
 * output element of the input's own type per item, so it may run in place
 * (mapKernel('affine', xs, { out: xs }) with a heap array), which the
 * zero-copy tests and the copy-versus-heap benchmark use.
 */
#include "parmap_kernel.h"

static int affine(void *params, const void *in, void *out)
{
    const double *p = params; /* p[0] = by, p[1] = plus */
    *(double *)out = p[0] * *(const double *)in + p[1];
    return 0;
}

PM_KERNEL(affine, PM_K_F64, PM_K_F64, "by,plus", affine, .defaults = {2, 0},
          .doc = "y = by * x + plus (Float64Array -> Float64Array)")
