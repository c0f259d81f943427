/* A plain main() for the fuzz targets without libFuzzer: feeds every file
 * named on the command line (directories: every file in them) to
 * LLVMFuzzerTestOneInput once, so the seed corpora and crash reproducers
 * are replayed by `make test` and `make check`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Corpus files are small; anything bigger is a mistake, not an input. */
#define INPUT_MAX (4u * 1024u * 1024u)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    buf = malloc(INPUT_MAX);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, INPUT_MAX, f);
    fclose(f);
    /* An exact-size copy so ASan sees reads past the input's end. */
    uint8_t *in = malloc(n ? n : 1);
    if (in == NULL) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int run_path(const char *path, unsigned *count)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char sub[4096];
    int rc = 0;

    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    d = opendir(path);
    if (d == NULL) {
        perror(path);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (run_path(sub, count) < 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int rc = 0;

    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &count) < 0)
            rc = 1;
    fprintf(stderr, "%s: %u inputs replayed%s\n", argv[0], count, rc ? " (with errors)" : "");
    return rc;
}
