/* Fuzz target for SASL message parsing (node/sasl.h). Input: one byte of
 * flags, then up to four messages separated by 0xFF (never valid in the
 * UTF-8 that SASL carries). Each message is base64-encoded here (or passed
 * raw when a flag says so, to reach the base64 decoder) and driven through
 * roost_sasl_start / set_cred / step against a fixed credential for the
 * password "pencil". Checks: every result is one of the four, failures
 * name a condition, challenges and successes carry valid base64, nothing
 * succeeds twice, and an exchange that ended stays ended. */
#include <string.h>

#include <openssl/evp.h>

#include "node/sasl.h"
#include "tests/fuzz/fuzz.h"

#define MAX_MSGS 4
#define MAX_MSG 4096

static roost_scram_cred_t cred_sha1, cred_sha256;

static void init_creds(void)
{
    static int done;

    if (done)
        return;
    FUZZ_CHECK(roost_cred_new(ROOST_HASH_SHA1, "pencil", 6, ROOST_CRED_ITER_MIN, &cred_sha1) == 0);
    FUZZ_CHECK(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, ROOST_CRED_ITER_MIN,
                              &cred_sha256) == 0);
    done = 1;
}

/* Raw bytes to NUL-terminated base64 in out (room for 4 * ceil(n/3) + 1). */
static void b64(const uint8_t *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static int valid_b64(const char *s)
{
    size_t n = strlen(s);

    if (n % 4 != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '+' || c == '/' || (c == '=' && i + 2 >= n)))
            return 0;
    }
    return 1;
}

static void check_result(roost_sasl_t *s, roost_sasl_result_t r)
{
    const char *out, *cond;

    FUZZ_CHECK(r == ROOST_SASL_NEED_CRED || r == ROOST_SASL_CHALLENGE
               || r == ROOST_SASL_SUCCESS || r == ROOST_SASL_FAILURE);
    if (r == ROOST_SASL_FAILURE) {
        cond = roost_sasl_condition(s);
        FUZZ_CHECK(cond != NULL && cond[0] != '\0');
    } else if (r == ROOST_SASL_CHALLENGE || r == ROOST_SASL_SUCCESS) {
        out = roost_sasl_out(s);
        FUZZ_CHECK(out != NULL && valid_b64(out));
    } else {
        FUZZ_CHECK(roost_sasl_username(s) != NULL && roost_sasl_username(s)[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const roost_sasl_mech_t mechs[] = {
        ROOST_SASL_PLAIN, ROOST_SASL_SCRAM_SHA1, ROOST_SASL_SCRAM_SHA256,
    };
    static char enc[MAX_MSGS][4 * (MAX_MSG / 3 + 1) + 1];
    static char raw[MAX_MSGS][MAX_MSG + 1];
    const char *msgs[MAX_MSGS];
    size_t n_msgs = 0, i, start;
    uint8_t flags;
    roost_sasl_mech_t mech;
    roost_sasl_t *s;
    roost_sasl_result_t r;
    const roost_scram_cred_t *cred;
    int successes = 0;

    if (size == 0)
        return 0;
    init_creds();
    flags = data[0];
    mech = mechs[(flags & 3) % 3];
    data++;
    size--;

    for (start = 0, i = 0; i <= size && n_msgs < MAX_MSGS; i++) {
        if (i < size && data[i] != 0xFF)
            continue;
        size_t n = i - start;
        if (n > MAX_MSG)
            return 0;
        if (flags & (0x10 << n_msgs)) {
            /* Raw text as if it were base64 (NULs end it, like XML text). */
            memcpy(raw[n_msgs], data + start, n);
            raw[n_msgs][n] = '\0';
            msgs[n_msgs] = raw[n_msgs];
        } else {
            b64(data + start, n, enc[n_msgs]);
            msgs[n_msgs] = n ? enc[n_msgs] : ((flags & 8) ? "=" : "");
        }
        n_msgs++;
        start = i + 1;
    }

    s = roost_sasl_new(mech, "example.com");
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(roost_sasl_mech_by_name(roost_sasl_mech_name(mech)) == mech);
    r = roost_sasl_start(s, n_msgs ? msgs[0] : NULL);
    check_result(s, r);
    i = 1;
    for (;;) {
        if (r == ROOST_SASL_NEED_CRED) {
            FUZZ_CHECK(roost_sasl_cred_hash(s) == ROOST_HASH_SHA1
                       || roost_sasl_cred_hash(s) == ROOST_HASH_SHA256);
            cred = roost_sasl_cred_hash(s) == ROOST_HASH_SHA1 ? &cred_sha1 : &cred_sha256;
            r = roost_sasl_set_cred(s, (flags & 4) ? NULL : cred);
            FUZZ_CHECK(r != ROOST_SASL_NEED_CRED);
            /* A user that does not exist never logs in. */
            if (flags & 4)
                FUZZ_CHECK(r != ROOST_SASL_SUCCESS);
        } else if (r == ROOST_SASL_CHALLENGE && i < n_msgs) {
            r = roost_sasl_step(s, msgs[i++]);
        } else {
            break;
        }
        check_result(s, r);
        if (r == ROOST_SASL_SUCCESS)
            successes++;
    }
    FUZZ_CHECK(successes <= 1);
    /* Once ended, more input does not restart or succeed. */
    if (r == ROOST_SASL_SUCCESS || r == ROOST_SASL_FAILURE) {
        r = roost_sasl_step(s, i < n_msgs ? msgs[i] : "");
        FUZZ_CHECK(r == ROOST_SASL_FAILURE);
        check_result(s, r);
    }
    roost_sasl_free(s);
    return 0;
}
