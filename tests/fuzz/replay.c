/*
 * replay.c - a plain main() that feeds every file of a corpus to a fuzz
 * target's LLVMFuzzerTestOneInput, so that ctest runs the corpus (seeds and
 * past crashers) on every build without libFuzzer (zstd's
 * tests/fuzz/regression_driver.c idea). Linked with one target.
 *
 *   replay_msgpack [dir-or-file ...]     (default: the corpus given at build
 *                                         time as PM_FUZZ_CORPUS)
 *
 * Exits 1 when an argument cannot be read or holds no input at all (a
 * misconfigured test must not pass by running nothing); a failing input
 * aborts inside the target and names itself on stderr first.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *bigger = realloc(buf, cap *= 2);
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    fclose(f);
    if (!buf)
        return -1;
    /* An exact-size copy, so a sanitizer sees any read past the input. */
    unsigned char *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order (runs are reproducible). */
static int run_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names)))
            return -1;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) != 0)
                rc = -1;
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
#ifdef PM_FUZZ_CORPUS
    char *defaults[] = {argv[0], PM_FUZZ_CORPUS};
    if (argc < 2) {
        argc = 2;
        argv = defaults;
    }
#endif
    int count = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int rc = stat(argv[i], &st) != 0 ? -1
               : S_ISDIR(st.st_mode)    ? run_dir(argv[i], &count)
                                        : (count++, run_file(argv[i]));
        if (rc != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            bad = 1;
        }
    }
#if defined(__wasi__) || defined(__EMSCRIPTEN__)
    if (bad && count == 0) {
        fprintf(stderr, "SKIP: the corpus is not reachable from this sandbox\n");
        return 77;
    }
#endif
    printf("replayed %d inputs\n", count);
    return bad || count == 0;
}
