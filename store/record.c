/* Session record codec: "<avail>,<priority>,<epoch>,<conn_id>,<node_id>\n"
 * followed by a packed roost.SessionRecord. The header is what Lua scripts
 * compare; it must agree with the protobuf behind it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/error.h"
#include "store/record.h"
#include "store/unknown.h"

#define HDR_MAX 128   /* longest possible header is ~120 bytes */
#define SM_ID_MAX 256

int roost_session_node_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > ROOST_NODE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f || c == ',')
            return 0;
    }
    return 1;
}

static int fields_valid(const roost_session_t *s)
{
    if (!roost_session_node_id_valid(s->node_id))
        return 0;
    if (s->n_directed > ROOST_SESS_DIRECTED_MAX || (s->n_directed && !s->directed))
        return 0;
    for (size_t i = 0; i < s->n_directed; i++)
        if (!s->directed[i] || strlen(s->directed[i]) > ROOST_SESS_JID_MAX)
            return 0;
    if (s->sm_id && strlen(s->sm_id) > SM_ID_MAX)
        return 0;
    if (s->presence_len && !s->presence)
        return 0;
    return 1;
}

int roost_session_encode(const roost_session_t *s, uint8_t **out, size_t *out_len)
{
    Roost__SessionRecord m = ROOST__SESSION_RECORD__INIT;
    const roost_unknown_t *u = s->unknown;
    char hdr[HDR_MAX];
    int hl;

    *out = NULL;
    *out_len = 0;
    if (!fields_valid(s))
        return ROOST_EINVAL;
    m.version = 1;
    m.node_id = (char *)s->node_id;
    m.node_epoch = s->node_epoch;
    m.conn_id = s->conn_id;
    m.priority = s->priority;
    m.presence.data = s->presence;
    m.presence.len = s->presence_len;
    m.flags = s->flags;
    m.directed = s->directed;
    m.n_directed = s->n_directed;
    m.sm_id = s->sm_id ? s->sm_id : (char *)"";
    m.bind_time = s->bind_time;
    if (u) {
        m.base.n_unknown_fields = (unsigned)u->n;
        m.base.unknown_fields = u->f;
    }
    hl = snprintf(hdr, sizeof(hdr), "%u,%" PRId32 ",%" PRIu64 ",%" PRIu64 ",%s\n",
                  (s->flags & ROOST_SESS_F_AVAILABLE) ? 1u : 0u, s->priority,
                  s->node_epoch, s->conn_id, s->node_id);
    if (hl < 0 || (size_t)hl >= sizeof(hdr))
        return ROOST_EINVAL;
    size_t pl = roost__session_record__get_packed_size(&m);
    if (pl + (size_t)hl > ROOST_SESS_VALUE_MAX)
        return ROOST_EINVAL;
    uint8_t *buf = malloc((size_t)hl + pl);
    if (!buf)
        return ROOST_ENOMEM;
    memcpy(buf, hdr, (size_t)hl);
    roost__session_record__pack(&m, buf + hl);
    *out = buf;
    *out_len = (size_t)hl + pl;
    return 0;
}

/* Strict unsigned decimal: no sign, no leading zero (except "0"), fits. */
static int parse_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_i32(const char *p, size_t n, int32_t *out)
{
    int neg = n > 0 && p[0] == '-';
    uint64_t v;
    if (parse_u64(p + neg, n - (size_t)neg, &v) < 0)
        return -1;
    if (neg && v == 0)
        return -1;   /* "-0" is not canonical */
    if (v > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX))
        return -1;
    *out = neg ? (int32_t)(-(int64_t)v) : (int32_t)v;
    return 0;
}

typedef struct {
    int avail;
    int32_t priority;
    uint64_t epoch;
    uint64_t conn_id;
    char node_id[ROOST_NODE_ID_MAX + 1];
    size_t len;      /* header bytes including '\n' */
} header_t;

static int parse_header(const uint8_t *val, size_t len, header_t *h)
{
    const char *p = (const char *)val;
    const char *end = memchr(p, '\n', len < HDR_MAX ? len : HDR_MAX);
    const char *f[5];
    size_t fl[5];
    int nf = 0;

    if (!end)
        return -1;
    const char *q = p;
    while (nf < 5) {
        const char *c = nf < 4 ? memchr(q, ',', (size_t)(end - q)) : end;
        if (!c)
            return -1;
        f[nf] = q;
        fl[nf] = (size_t)(c - q);
        nf++;
        q = c + 1;
    }
    if (fl[0] != 1 || (f[0][0] != '0' && f[0][0] != '1'))
        return -1;
    h->avail = f[0][0] == '1';
    if (parse_i32(f[1], fl[1], &h->priority) < 0 || parse_u64(f[2], fl[2], &h->epoch) < 0
        || parse_u64(f[3], fl[3], &h->conn_id) < 0)
        return -1;
    if (fl[4] == 0 || fl[4] > ROOST_NODE_ID_MAX)
        return -1;
    memcpy(h->node_id, f[4], fl[4]);
    h->node_id[fl[4]] = '\0';
    if (strlen(h->node_id) != fl[4] || !roost_session_node_id_valid(h->node_id))
        return -1;   /* an embedded NUL, a space or a stray ',' */
    h->len = (size_t)(end - p) + 1;
    return 0;
}

int roost_session_decode(roost_session_t *s, const char *resource,
                         const uint8_t *val, size_t len)
{
    Roost__SessionRecord *m;
    header_t h;
    int rc = ROOST_EINVAL;

    memset(s, 0, sizeof(*s));
    if (!val || len > ROOST_SESS_VALUE_MAX || parse_header(val, len, &h) < 0)
        return ROOST_EINVAL;
    m = roost__session_record__unpack(NULL, len - h.len, val + h.len);
    if (!m)
        return ROOST_EINVAL;
    /* The header is what scripts trust; a protobuf that disagrees is corrupt. */
    if (!m->node_id || strcmp(m->node_id, h.node_id) != 0 || m->node_epoch != h.epoch
        || m->conn_id != h.conn_id || m->priority != h.priority
        || !!(m->flags & ROOST_SESS_F_AVAILABLE) != h.avail)
        goto fail_m;
    if (m->n_directed > ROOST_SESS_DIRECTED_MAX)
        goto fail_m;
    for (size_t i = 0; i < m->n_directed; i++)
        if (strlen(m->directed[i]) > ROOST_SESS_JID_MAX)
            goto fail_m;
    if (m->sm_id && strlen(m->sm_id) > SM_ID_MAX)
        goto fail_m;

    rc = ROOST_ENOMEM;
    memcpy(s->node_id, h.node_id, sizeof(s->node_id));
    s->node_epoch = h.epoch;
    s->conn_id = h.conn_id;
    s->priority = h.priority;
    s->flags = m->flags;
    s->bind_time = m->bind_time;
    if (resource && !(s->resource = strdup(resource)))
        goto fail_s;
    if (m->presence.len) {
        if (!(s->presence = malloc(m->presence.len)))
            goto fail_s;
        memcpy(s->presence, m->presence.data, m->presence.len);
        s->presence_len = m->presence.len;
    }
    if (m->n_directed) {
        if (!(s->directed = calloc(m->n_directed, sizeof(char *))))
            goto fail_s;
        for (; s->n_directed < m->n_directed; s->n_directed++)
            if (!(s->directed[s->n_directed] = strdup(m->directed[s->n_directed])))
                goto fail_s;
    }
    if (m->sm_id && m->sm_id[0] && !(s->sm_id = strdup(m->sm_id)))
        goto fail_s;
    if (roost_unknown_dup((roost_unknown_t **)&s->unknown, m->base.unknown_fields,
                          m->base.n_unknown_fields) < 0)
        goto fail_s;
    roost__session_record__free_unpacked(m, NULL);
    return 0;

fail_s:
    roost_session_clear(s);
fail_m:
    roost__session_record__free_unpacked(m, NULL);
    return rc;
}

int roost_session_copy(roost_session_t *dst, const roost_session_t *src)
{
    const roost_unknown_t *u = src->unknown;

    *dst = *src;
    dst->resource = NULL;
    dst->presence = NULL;
    dst->presence_len = 0;
    dst->directed = NULL;
    dst->n_directed = 0;
    dst->sm_id = NULL;
    dst->unknown = NULL;
    if (src->resource && !(dst->resource = strdup(src->resource)))
        goto fail_dst;
    if (src->presence_len) {
        if (!(dst->presence = malloc(src->presence_len)))
            goto fail_dst;
        memcpy(dst->presence, src->presence, src->presence_len);
        dst->presence_len = src->presence_len;
    }
    if (src->n_directed) {
        if (!(dst->directed = calloc(src->n_directed, sizeof(char *))))
            goto fail_dst;
        for (; dst->n_directed < src->n_directed; dst->n_directed++)
            if (!(dst->directed[dst->n_directed] = strdup(src->directed[dst->n_directed])))
                goto fail_dst;
    }
    if (src->sm_id && !(dst->sm_id = strdup(src->sm_id)))
        goto fail_dst;
    if (u && roost_unknown_dup((roost_unknown_t **)&dst->unknown, u->f, u->n) < 0)
        goto fail_dst;
    return 0;
fail_dst:
    roost_session_clear(dst);
    return ROOST_ENOMEM;
}

void roost_session_clear(roost_session_t *s)
{
    if (!s)
        return;
    free(s->resource);
    free(s->presence);
    for (size_t i = 0; i < s->n_directed; i++)
        free(s->directed[i]);
    free(s->directed);
    free(s->sm_id);
    roost_unknown_free(s->unknown);
    memset(s, 0, sizeof(*s));
}
