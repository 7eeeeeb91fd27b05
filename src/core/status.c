/*
 * status.c - names and sentences of status codes, generated from the single
 * PM_STATUS_MAP list in parmap.h (libuv's UV_ERRNO_MAP idea), the version, and
 * cancellation tokens (an atomic flag: requesting it is async-signal-safe).
 */
#include "internal.h"

#include <stdlib.h>

const char *pm_version(void)
{
    return PM_VERSION_STRING;
}

const char *pm_strerror(int status)
{
    switch (status) {
#define PM_STATUS_TEXT(name, value, text) case value: return text;
        PM_STATUS_MAP(PM_STATUS_TEXT)
#undef PM_STATUS_TEXT
    }
    return "unknown status";
}

const char *pm_err_name(int status)
{
    switch (status) {
#define PM_STATUS_NAME(name, value, text) case value: return #name;
        PM_STATUS_MAP(PM_STATUS_NAME)
#undef PM_STATUS_NAME
    }
    return "UNKNOWN";
}

int pm_cpu_count(void)
{
    return pm__cpu_count();
}

pm_cancel *pm_cancel_new(void)
{
    pm_cancel *c = malloc(sizeof *c);
    if (c)
        atomic_init(&c->requested, 0);
    return c;
}

void pm_cancel_request(pm_cancel *c)
{
    /* A lock-free atomic store: the only thing a signal handler may do here. */
    if (c)
        atomic_store(&c->requested, 1);
}

int pm_cancel_requested(const pm_cancel *c)
{
    return c ? atomic_load(&((pm_cancel *)c)->requested) : 0;
}

void pm_cancel_reset(pm_cancel *c)
{
    if (c)
        atomic_store(&c->requested, 0);
}

void pm_cancel_free(pm_cancel *c)
{
    free(c);
}
