/* Stanza and stream error XML built from (type, condition, text). */
#include <string.h>

#include "node/xmpp_error.h"

static const struct { const char *cond, *type; } defaults[] = {
    { "bad-request", "modify" },
    { "conflict", "cancel" },
    { "feature-not-implemented", "cancel" },
    { "forbidden", "auth" },
    { "gone", "cancel" },
    { "internal-server-error", "cancel" },
    { "item-not-found", "cancel" },
    { "jid-malformed", "modify" },
    { "not-acceptable", "modify" },
    { "not-allowed", "cancel" },
    { "not-authorized", "auth" },
    { "policy-violation", "modify" },
    { "recipient-unavailable", "wait" },
    { "redirect", "modify" },
    { "registration-required", "auth" },
    { "remote-server-not-found", "cancel" },
    { "remote-server-timeout", "wait" },
    { "resource-constraint", "wait" },
    { "service-unavailable", "cancel" },
    { "subscription-required", "auth" },
    { "undefined-condition", "cancel" },
    { "unexpected-request", "wait" },
};

const char *roost_xmpp_error_default_type(const char *condition)
{
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (strcmp(defaults[i].cond, condition) == 0)
            return defaults[i].type;
    return "cancel";
}

roost_xml_t *roost_xmpp_error_reply(const roost_xml_t *stanza, const char *from_default,
                                    const roost_xmpp_error_t *err)
{
    const char *type = roost_xml_attr(stanza, "type");
    if (type != NULL && strcmp(type, "error") == 0)
        return NULL;
    int is_iq = strcmp(stanza->name, "iq") == 0;
    roost_xml_t *r = is_iq ? roost_xml_new(stanza->name, stanza->ns) : roost_xml_copy(stanza);
    if (r == NULL)
        return NULL;
    const char *from = roost_xml_attr(stanza, "from");
    const char *to = roost_xml_attr(stanza, "to");
    const char *id = roost_xml_attr(stanza, "id");
    if (is_iq) {
        /* Echo the request payload: clients match errors to requests by it
         * as much as by id. Only the first element child is kept. */
        roost_xml_t *payload = roost_xml_child(stanza, NULL, NULL);
        if (payload != NULL) {
            roost_xml_t *cp = roost_xml_copy(payload);
            if (cp == NULL)
                goto fail;
            roost_xml_append(r, cp);
        }
    }
    if (roost_xml_set_attr(r, "to", from) != 0 ||
        roost_xml_set_attr(r, "from", to != NULL ? to : from_default) != 0 ||
        roost_xml_set_attr(r, "id", id) != 0 ||
        roost_xml_set_attr(r, "type", "error") != 0)
        goto fail;
    roost_xml_t *e = roost_xml_add(r, "error", NULL);
    if (e == NULL)
        goto fail;
    if (roost_xml_set_attr(e, "type", err->type != NULL ? err->type
                              : roost_xmpp_error_default_type(err->condition)) != 0)
        goto fail;
    if (roost_xml_add(e, err->condition, ROOST_NS_STANZAS) == NULL)
        goto fail;
    if (err->text != NULL) {
        roost_xml_t *t = roost_xml_add(e, "text", ROOST_NS_STANZAS);
        if (t == NULL || roost_xml_add_text(t, err->text, strlen(err->text)) != 0)
            goto fail;
    }
    return r;
fail:
    roost_xml_free(r);
    return NULL;
}

int roost_xmpp_stream_error(roost_buf_t *b, const char *condition, const char *text)
{
    int rc = roost_buf_puts(b, "<stream:error><");
    rc |= roost_buf_puts(b, condition);
    rc |= roost_buf_puts(b, " xmlns='" ROOST_NS_STREAM_ERR "'/>");
    if (text != NULL) {
        rc |= roost_buf_puts(b, "<text xmlns='" ROOST_NS_STREAM_ERR "' xml:lang='en'>");
        rc |= roost_buf_escape(b, text, strlen(text));
        rc |= roost_buf_puts(b, "</text>");
    }
    rc |= roost_buf_puts(b, "</stream:error>");
    return rc != 0 ? -1 : 0;
}
