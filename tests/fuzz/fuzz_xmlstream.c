/* Fuzz target for the XML stream and stanza layer (node/xmlstream.h,
 * node/xml.h). Input: two bytes of options (feed chunk size, limits,
 * pausing), then the stream bytes. Checks the callback contract (at most
 * one error and nothing after it, detached stanzas, a header without
 * children) and, for every stanza, that its serialization parses back
 * into one stanza that serializes to the same bytes, and that a deep copy
 * serializes identically. */
#include <string.h>

#include "node/buf.h"
#include "node/xml.h"
#include "node/xmlstream.h"
#include "store/error.h"
#include "tests/fuzz/fuzz.h"

#define STREAM_OPEN "<stream:stream xmlns='jabber:client' " \
                    "xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>"

typedef struct {
    roost_xmlstream_t *s;
    int opens, stanzas, closes, errors, after_error;
    int pause;              /* pause after every stanza */
    int check_roundtrip;    /* 0 in the inner re-parse */
    roost_buf_t last;       /* inner parse: the serialized stanza */
} rec_t;

static void roundtrip(const roost_xml_t *st, const roost_buf_t *ser);

static void ev_open(void *data, const roost_xml_t *hdr)
{
    rec_t *r = data;

    r->after_error += r->errors;
    r->opens++;
    FUZZ_CHECK(hdr != NULL && hdr->name != NULL && hdr->children == NULL);
}

static void ev_stanza(void *data, roost_xml_t *st)
{
    rec_t *r = data;
    roost_buf_t ser = ROOST_BUF_INIT, copy_ser = ROOST_BUF_INIT;
    roost_xml_t *copy;

    r->after_error += r->errors;
    r->stanzas++;
    FUZZ_CHECK(st != NULL && st->name != NULL && st->parent == NULL && st->next == NULL);
    FUZZ_CHECK(roost_xml_serialize(st, ROOST_NS_CLIENT, &ser) == 0);
    FUZZ_CHECK(ser.len > 0 && ser.data[0] == '<');

    if (r->check_roundtrip) {
        copy = roost_xml_copy(st);
        FUZZ_CHECK(copy != NULL);
        FUZZ_CHECK(roost_xml_serialize(copy, ROOST_NS_CLIENT, &copy_ser) == 0);
        FUZZ_CHECK(copy_ser.len == ser.len && memcmp(copy_ser.data, ser.data, ser.len) == 0);
        roost_xml_free(copy);
        roost_buf_free(&copy_ser);
        roundtrip(st, &ser);
    } else {
        roost_buf_reset(&r->last);
        FUZZ_CHECK(roost_buf_append(&r->last, ser.data, ser.len) == 0);
    }
    roost_buf_free(&ser);
    roost_xml_free(st);
    if (r->pause)
        roost_xmlstream_pause(r->s);
}

static void ev_close(void *data)
{
    rec_t *r = data;

    r->after_error += r->errors;
    r->closes++;
}

static void ev_error(void *data, const char *cond, const char *text)
{
    rec_t *r = data;

    r->after_error += r->errors;
    r->errors++;
    FUZZ_CHECK(cond != NULL && cond[0] != '\0');
}

static const roost_xmlstream_cb_t cbs = { ev_open, ev_stanza, ev_close, ev_error };

/* The serialized stanza, inside a fresh stream with generous limits, must
 * come back as exactly one stanza with the same serialization. */
static void roundtrip(const roost_xml_t *st, const roost_buf_t *ser)
{
    roost_xmlstream_limits_t lim = { 16u * 1024u * 1024u, 4096, 4096, 65536 };
    rec_t in;
    int rc;

    (void)st;
    memset(&in, 0, sizeof(in));
    in.s = roost_xmlstream_new(&lim, &cbs, &in);
    FUZZ_CHECK(in.s != NULL);
    rc = roost_xmlstream_feed(in.s, STREAM_OPEN, strlen(STREAM_OPEN));
    FUZZ_CHECK(rc == 0);
    rc = roost_xmlstream_feed(in.s, ser->data, ser->len);
    if (rc != 0 || in.errors != 0 || in.stanzas != 1 || in.last.len != ser->len
        || memcmp(in.last.data, ser->data, ser->len) != 0) {
        fprintf(stderr, "round trip differs (rc %d, errors %d, stanzas %d):\n  first: %.*s\n  again: %.*s\n",
                rc, in.errors, in.stanzas, (int)ser->len, ser->data,
                (int)in.last.len, in.last.data ? in.last.data : "");
        FUZZ_CHECK(!"serialize -> parse -> serialize is stable");
    }
    FUZZ_CHECK(in.opens == 1);
    roost_buf_free(&in.last);
    roost_xmlstream_free(in.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    roost_xmlstream_limits_t lim;
    rec_t r;
    size_t off = 0, step;
    int rc = 0, resumes = 0;

    if (size < 2)
        return 0;
    memset(&r, 0, sizeof(r));
    r.check_roundtrip = 1;
    r.pause = data[0] & 1;
    /* Small limits half the time so the bounds are reached. */
    if (data[0] & 2) {
        lim.max_stanza = 64 + (data[1] & 0x3f) * 16;
        lim.max_depth = 1 + ((data[1] >> 6) & 3) * 3;
        lim.max_attrs = 1 + ((data[0] >> 2) & 7);
        lim.chunk = 1 + ((data[0] >> 5) & 7) * 8;
    } else {
        lim.max_stanza = 262144;
        lim.max_depth = 32;
        lim.max_attrs = 32;
        lim.chunk = 4096;
    }
    step = (data[0] & 0x80) ? 1u + (size_t)(data[1] & 15) : size;
    data += 2;
    size -= 2;

    r.s = roost_xmlstream_new((data[-2] & 0x40) ? &lim : NULL, &cbs, &r);
    FUZZ_CHECK(r.s != NULL);
    if (data[-2] & 0x40)
        roost_xmlstream_set_limits(r.s, &lim);

    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        rc = roost_xmlstream_feed(r.s, (const char *)data + off, n);
        off += n;
        while (rc == ROOST_EAGAIN) {
            FUZZ_CHECK(roost_xmlstream_paused(r.s));
            /* Feeding a paused stream is refused, not parsed. */
            FUZZ_CHECK(roost_xmlstream_feed(r.s, "<x/>", 4) == ROOST_EINVAL);
            rc = roost_xmlstream_resume(r.s);
            FUZZ_CHECK(++resumes <= 1000000);
        }
        FUZZ_CHECK(!roost_xmlstream_paused(r.s));
        if (rc == ROOST_EPROTO) {
            FUZZ_CHECK(r.errors == 1);
            break;
        }
        FUZZ_CHECK(rc == 0);
    }
    FUZZ_CHECK(r.errors <= 1 && r.after_error == 0);
    FUZZ_CHECK(r.closes <= 1);
    if (r.errors)
        FUZZ_CHECK(roost_xmlstream_feed(r.s, "<a/>", 4) == ROOST_EPROTO);
    /* A restart gives a parser that accepts a fresh stream. */
    FUZZ_CHECK(roost_xmlstream_reset(r.s) == 0);
    r.errors = r.after_error = r.opens = r.stanzas = 0;
    r.pause = 0;
    rc = roost_xmlstream_feed(r.s, STREAM_OPEN "<presence/>", strlen(STREAM_OPEN) + 11);
    if (!(data[-2] & 0x40)) {
        FUZZ_CHECK(rc == 0 && r.errors == 0 && r.opens == 1 && r.stanzas == 1);
    }
    roost_xmlstream_free(r.s);
    return 0;
}
