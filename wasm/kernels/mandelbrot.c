/*
 * mandelbrot.c - the mandelbrot_row kernel: one image row per item.
 *
 * Input: Int32Array of row numbers (0 <= y < height). Output per row: width
 * RGBA pixels (Uint8ClampedArray, 4 * width bytes), ready for ImageData.
 * Parameters: width, height, maxIter, and the complex-plane rectangle
 * x0,y0 (top left) .. x1,y1 (bottom right). Pixel (x, y) samples the point at
 * the centre of its cell. Points that stay bounded for maxIter iterations are
 * black; the others get a palette colour from their escape count, so the
 * output is exact integers (native and WebAssembly results are compared
 * byte for byte in the benchmark).
 */
#include "parmap_kernel.h"

#include <stdint.h>

enum { P_WIDTH, P_HEIGHT, P_MAXITER, P_X0, P_Y0, P_X1, P_Y1 };

static int mandelbrot_row(void *params, const void *in, void *out)
{
    const double *p = params;
    int width = (int)p[P_WIDTH], height = (int)p[P_HEIGHT], max_iter = (int)p[P_MAXITER];
    int32_t y = *(const int32_t *)in;
    uint8_t *px = out;
    if (y < 0 || y >= height)
        return 1; /* a row outside the image: an item error */
    double ci = p[P_Y0] + (y + 0.5) * (p[P_Y1] - p[P_Y0]) / height;
    double dx = (p[P_X1] - p[P_X0]) / width;
    for (int x = 0; x < width; x++) {
        double cr = p[P_X0] + (x + 0.5) * dx;
        double zr = 0, zi = 0, zr2 = 0, zi2 = 0;
        int n = 0;
        while (n < max_iter && zr2 + zi2 <= 4.0) {
            zi = 2 * zr * zi + ci;
            zr = zr2 - zi2 + cr;
            zr2 = zr * zr;
            zi2 = zi * zi;
            n++;
        }
        uint8_t *c = px + 4 * x;
        if (n >= max_iter) {
            c[0] = c[1] = c[2] = 0;
        } else {
            /* A cheap cyclic palette: blue-ish far away, warm near the set. */
            c[0] = (uint8_t)(n * 9);
            c[1] = (uint8_t)(n * 5 + 40);
            c[2] = (uint8_t)(255 - n * 3);
        }
        c[3] = 255;
    }
    return 0;
}

PM_KERNEL(mandelbrot_row, PM_K_I32, PM_K_U8C, "width,height,maxIter,x0,y0,x1,y1", mandelbrot_row,
          .defaults = {800, 600, 256, -2.5, -1.25, 1.0, 1.25}, .out_len_param = "width",
          .out_len_mul = 4,
          .doc = "row numbers (Int32Array) -> width RGBA pixels per row (Uint8ClampedArray)")
