/* Server-answered iq: disco, ping, version. Pure: iq in, reply out. */
#include <string.h>

#include "node/iq_server.h"
#include "node/xmpp_error.h"

#ifndef ROOST_VERSION
#define ROOST_VERSION "0.1.0"
#endif

static roost_xml_t *result_for(const roost_xml_t *iq)
{
    roost_xml_t *r = roost_xml_new("iq", ROOST_NS_CLIENT);
    if (r == NULL)
        return NULL;
    if (roost_xml_set_attr(r, "type", "result") != 0 ||
        roost_xml_set_attr(r, "id", roost_xml_attr(iq, "id")) != 0 ||
        roost_xml_set_attr(r, "to", roost_xml_attr(iq, "from")) != 0 ||
        roost_xml_set_attr(r, "from", roost_xml_attr(iq, "to")) != 0) {
        roost_xml_free(r);
        return NULL;
    }
    return r;
}

static roost_xml_t *error_for(const roost_xml_t *iq, const char *cond)
{
    roost_xmpp_error_t err = { NULL, cond, NULL };
    return roost_xmpp_error_reply(iq, NULL, &err);
}

static int add_feature(roost_xml_t *q, const char *var)
{
    roost_xml_t *f = roost_xml_add(q, "feature", NULL);
    return f != NULL ? roost_xml_set_attr(f, "var", var) : -1;
}

static roost_xml_t *disco_info(const roost_xml_t *iq, const roost_xml_t *query,
                               roost_iq_target_t target)
{
    if (roost_xml_attr(query, "node") != NULL)
        return error_for(iq, "item-not-found");
    roost_xml_t *r = result_for(iq);
    if (r == NULL)
        return NULL;
    roost_xml_t *q = roost_xml_add(r, "query", ROOST_NS_DISCO_INFO);
    roost_xml_t *id = q != NULL ? roost_xml_add(q, "identity", NULL) : NULL;
    int rc = id == NULL;
    if (!rc && target == ROOST_IQ_TO_DOMAIN) {
        rc |= roost_xml_set_attr(id, "category", "server");
        rc |= roost_xml_set_attr(id, "type", "im");
        rc |= roost_xml_set_attr(id, "name", "roost");
        rc |= add_feature(q, ROOST_NS_DISCO_INFO);
        rc |= add_feature(q, ROOST_NS_DISCO_ITEMS);
        rc |= add_feature(q, ROOST_NS_PING);
        rc |= add_feature(q, ROOST_NS_VERSION);
        rc |= add_feature(q, "urn:xmpp:carbons:2");
        rc |= add_feature(q, "urn:xmpp:blocking");
    } else if (!rc) {
        rc |= roost_xml_set_attr(id, "category", "account");
        rc |= roost_xml_set_attr(id, "type", "registered");
        rc |= add_feature(q, ROOST_NS_DISCO_INFO);
        rc |= add_feature(q, ROOST_NS_DISCO_ITEMS);
    }
    if (rc) {
        roost_xml_free(r);
        return NULL;
    }
    return r;
}

static roost_xml_t *disco_items(const roost_xml_t *iq, const roost_xml_t *query)
{
    if (roost_xml_attr(query, "node") != NULL)
        return error_for(iq, "item-not-found");
    roost_xml_t *r = result_for(iq);
    if (r != NULL && roost_xml_add(r, "query", ROOST_NS_DISCO_ITEMS) == NULL) {
        roost_xml_free(r);
        return NULL;
    }
    return r;
}

static roost_xml_t *version(const roost_xml_t *iq)
{
    roost_xml_t *r = result_for(iq);
    if (r == NULL)
        return NULL;
    roost_xml_t *q = roost_xml_add(r, "query", ROOST_NS_VERSION);
    roost_xml_t *n = q != NULL ? roost_xml_add(q, "name", NULL) : NULL;
    roost_xml_t *v = q != NULL ? roost_xml_add(q, "version", NULL) : NULL;
    if (n == NULL || v == NULL || roost_xml_add_text(n, "roost", 5) != 0 ||
        roost_xml_add_text(v, ROOST_VERSION, strlen(ROOST_VERSION)) != 0) {
        roost_xml_free(r);
        return NULL;
    }
    return r;
}

roost_xml_t *roost_iq_server_handle(const roost_xml_t *iq, roost_iq_target_t target)
{
    const char *type = roost_xml_attr(iq, "type");
    int get = type != NULL && strcmp(type, "get") == 0;
    const roost_xml_t *p = roost_xml_child(iq, NULL, NULL);
    if (p == NULL)
        return error_for(iq, "bad-request");
    if (strcmp(p->name, "ping") == 0 && strcmp(p->ns, ROOST_NS_PING) == 0)
        return get ? result_for(iq) : error_for(iq, "bad-request");
    if (strcmp(p->name, "query") == 0 && strcmp(p->ns, ROOST_NS_DISCO_INFO) == 0)
        return get ? disco_info(iq, p, target) : error_for(iq, "bad-request");
    if (strcmp(p->name, "query") == 0 && strcmp(p->ns, ROOST_NS_DISCO_ITEMS) == 0)
        return get ? disco_items(iq, p) : error_for(iq, "bad-request");
    if (target == ROOST_IQ_TO_DOMAIN && strcmp(p->name, "query") == 0 &&
        strcmp(p->ns, ROOST_NS_VERSION) == 0)
        return get ? version(iq) : error_for(iq, "bad-request");
    return error_for(iq, "service-unavailable");
}
