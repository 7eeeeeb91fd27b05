/*
 * kernel_registry.c - the list of C kernels compiled into the module. Each
 * kernel file registers itself from a constructor (PM_KERNEL), which runs
 * once at start-up on the main thread, before any worker exists; after that
 * the list is only read, so it needs no lock.
 */
#include "parmap_kernel.h"

#include <string.h>

static pm_kernel *kernels;

void pm_kernel_register(pm_kernel *k)
{
    k->next = kernels;
    kernels = k;
}

const pm_kernel *pm_kernel_find(const char *name)
{
    for (const pm_kernel *k = kernels; k; k = k->next)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const pm_kernel *pm_kernel_first(void)
{
    return kernels;
}

/* Index of parameter `name` in the comma-separated list, or -1. */
static int param_index(const char *list, const char *name)
{
    size_t len = strlen(name);
    int i = 0;
    for (const char *p = list; p && *p; i++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return i;
        p = end ? end + 1 : NULL;
    }
    return -1;
}

int pm_kernel_out_len(const pm_kernel *k, const double *params)
{
    if (k->out_len_param) {
        int i = param_index(k->params, k->out_len_param);
        double v = i >= 0 ? params[i] : 0;
        int mul = k->out_len_mul ? k->out_len_mul : 1;
        return v >= 1 && v * mul < 1e9 ? (int)v * mul : 0;
    }
    return k->out_len ? k->out_len : 1;
}
