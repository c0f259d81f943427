/* Shared by the fuzz targets: the libFuzzer entry point and an invariant
 * check that aborts in every build (the plain corpus driver has no NDEBUG
 * guarantees and no sanitizer, so assert() is not enough). */
#ifndef ROOST_FUZZ_H
#define ROOST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                     \
            abort();                                                      \
        }                                                                 \
    } while (0)

#endif
