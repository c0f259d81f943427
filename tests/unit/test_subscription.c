/* The subscription state machine against every row of RFC 6121 Appendix
 * A.2 (outbound) and A.3 (inbound), plus pre-approval (§3.4) and roster
 * removal (§2.5.3). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/subscription.h"
#include "store/error.h"

/* The nine defined states of Appendix A.1, in the RFC's order. */
enum { S_NONE, S_NONE_OUT, S_NONE_IN, S_NONE_OUT_IN, S_TO, S_TO_IN, S_FROM, S_FROM_OUT,
       S_BOTH, N_STATES };

static const char *const state_names[N_STATES] = {
    "None", "None+Out", "None+In", "None+Out+In", "To", "To+In", "From", "From+Out", "Both",
};

static roost_substate_t mk(int s)
{
    roost_substate_t st;
    memset(&st, 0, sizeof(st));
    st.exists = 1;
    switch (s) {
    case S_NONE: break;
    case S_NONE_OUT: st.ask = 1; break;
    case S_NONE_IN: st.pending_in = 1; break;
    case S_NONE_OUT_IN: st.ask = 1; st.pending_in = 1; break;
    case S_TO: st.sub = ROOST_SUB_TO; break;
    case S_TO_IN: st.sub = ROOST_SUB_TO; st.pending_in = 1; break;
    case S_FROM: st.sub = ROOST_SUB_FROM; break;
    case S_FROM_OUT: st.sub = ROOST_SUB_FROM; st.ask = 1; break;
    case S_BOTH: st.sub = ROOST_SUB_BOTH; break;
    }
    return st;
}

/* Which of the nine states st is (-1 when none of them). */
static int which(const roost_substate_t *st)
{
    for (int s = 0; s < N_STATES; s++) {
        roost_substate_t r = mk(s);
        if (r.sub == st->sub && r.ask == st->ask && r.pending_in == st->pending_in)
            return s;
    }
    return -1;
}

typedef struct {
    int next;
    int flag;   /* forward (outbound) or deliver (inbound) */
} row_t;

static void check_table(int inbound, roost_subev_t ev, const row_t rows[N_STATES])
{
    for (int s = 0; s < N_STATES; s++) {
        roost_substate_t cur = mk(s);
        roost_subdecision_t d;
        if (inbound)
            roost_subscription_inbound(&cur, ev, &d);
        else
            roost_subscription_outbound(&cur, ev, &d);
        int got = which(&d.next);
        ck_assert_msg(got == rows[s].next, "%s %s in %s: got %s, want %s",
                      inbound ? "inbound" : "outbound", roost_subev_name(ev), state_names[s],
                      got >= 0 ? state_names[got] : "?", state_names[rows[s].next]);
        int flag = inbound ? d.deliver : d.forward;
        ck_assert_msg(flag == rows[s].flag, "%s %s in %s: %s=%d, want %d",
                      inbound ? "inbound" : "outbound", roost_subev_name(ev), state_names[s],
                      inbound ? "deliver" : "forward", flag, rows[s].flag);
        /* A roster push exactly when the item (not pending-in) changed. */
        int item_diff = cur.sub != d.next.sub || cur.ask != d.next.ask ||
                        cur.approved != d.next.approved;
        ck_assert_int_eq(d.item_changed, item_diff);
        ck_assert_int_eq(d.next.exists, 1);
    }
}

/* ---- A.2 outbound ---------------------------------------------------- */

START_TEST(test_out_subscribe)
{
    static const row_t t[N_STATES] = {
        { S_NONE_OUT, 1 }, { S_NONE_OUT, 1 }, { S_NONE_OUT_IN, 1 }, { S_NONE_OUT_IN, 1 },
        { S_TO, 1 }, { S_TO_IN, 1 }, { S_FROM_OUT, 1 }, { S_FROM_OUT, 1 }, { S_BOTH, 1 },
    };
    check_table(0, ROOST_SUBEV_SUBSCRIBE, t);
}
END_TEST

START_TEST(test_out_unsubscribe)
{
    static const row_t t[N_STATES] = {
        { S_NONE, 1 }, { S_NONE, 1 }, { S_NONE_IN, 1 }, { S_NONE_IN, 1 },
        { S_NONE, 1 }, { S_NONE_IN, 1 }, { S_FROM, 1 }, { S_FROM, 1 }, { S_FROM, 1 },
    };
    check_table(0, ROOST_SUBEV_UNSUBSCRIBE, t);
}
END_TEST

START_TEST(test_out_subscribed)
{
    /* Rows without pending-in and without 'from' record a pre-approval
     * (checked below); the state proper does not change. */
    roost_substate_t cur;
    roost_subdecision_t d;
    static const row_t t[N_STATES] = {
        { S_NONE, 0 }, { S_NONE_OUT, 0 }, { S_FROM, 1 }, { S_FROM_OUT, 1 },
        { S_TO, 0 }, { S_BOTH, 1 }, { S_FROM, 0 }, { S_FROM_OUT, 0 }, { S_BOTH, 0 },
    };
    for (int s = 0; s < N_STATES; s++) {
        cur = mk(s);
        roost_subscription_outbound(&cur, ROOST_SUBEV_SUBSCRIBED, &d);
        ck_assert_msg(which(&d.next) == t[s].next, "subscribed in %s", state_names[s]);
        ck_assert_int_eq(d.forward, t[s].flag);
        /* The approver sends its presence to the new subscriber. */
        ck_assert_int_eq(d.send_presence, t[s].flag);
        int preapprove = s == S_NONE || s == S_NONE_OUT || s == S_TO;
        ck_assert_int_eq(d.next.approved, preapprove);
        ck_assert_int_eq(d.item_changed, preapprove || t[s].flag);
    }
}
END_TEST

START_TEST(test_out_unsubscribed)
{
    static const row_t t[N_STATES] = {
        { S_NONE, 1 }, { S_NONE_OUT, 1 }, { S_NONE, 1 }, { S_NONE_OUT, 1 },
        { S_TO, 1 }, { S_TO, 1 }, { S_NONE, 1 }, { S_NONE_OUT, 1 }, { S_TO, 1 },
    };
    check_table(0, ROOST_SUBEV_UNSUBSCRIBED, t);
    for (int s = 0; s < N_STATES; s++) {
        roost_substate_t cur = mk(s);
        roost_subdecision_t d;
        roost_subscription_outbound(&cur, ROOST_SUBEV_UNSUBSCRIBED, &d);
        int lost_from = s == S_FROM || s == S_FROM_OUT || s == S_BOTH;
        ck_assert_int_eq(d.send_unavailable, lost_from);
    }
}
END_TEST

/* ---- A.3 inbound ----------------------------------------------------- */

START_TEST(test_in_subscribe)
{
    static const row_t t[N_STATES] = {
        /* A.3.1: a repeat while pending-in changes nothing and is not
         * delivered again. */
        { S_NONE_IN, 1 }, { S_NONE_OUT_IN, 1 }, { S_NONE_IN, 0 }, { S_NONE_OUT_IN, 0 },
        { S_TO_IN, 1 }, { S_TO_IN, 0 }, { S_FROM, 0 }, { S_FROM_OUT, 0 }, { S_BOTH, 0 },
    };
    static const int auto_reply[N_STATES] = { 0, 0, 0, 0, 0, 0, 1, 1, 1 };
    check_table(1, ROOST_SUBEV_SUBSCRIBE, t);
    for (int s = 0; s < N_STATES; s++) {
        roost_substate_t cur = mk(s);
        roost_subdecision_t d;
        roost_subscription_inbound(&cur, ROOST_SUBEV_SUBSCRIBE, &d);
        /* §3.1.3: a contact already subscribed gets an automatic answer. */
        ck_assert_int_eq(d.auto_reply, auto_reply[s]);
        ck_assert_int_eq(d.send_presence, 0);
    }
}
END_TEST

START_TEST(test_in_unsubscribe)
{
    static const row_t t[N_STATES] = {
        { S_NONE, 0 }, { S_NONE_OUT, 0 }, { S_NONE, 1 }, { S_NONE_OUT, 1 },
        { S_TO, 0 }, { S_TO, 1 }, { S_NONE, 1 }, { S_NONE_OUT, 1 }, { S_TO, 1 },
    };
    check_table(1, ROOST_SUBEV_UNSUBSCRIBE, t);
    for (int s = 0; s < N_STATES; s++) {
        roost_substate_t cur = mk(s);
        roost_subdecision_t d;
        roost_subscription_inbound(&cur, ROOST_SUBEV_UNSUBSCRIBE, &d);
        int lost_from = s == S_FROM || s == S_FROM_OUT || s == S_BOTH;
        ck_assert_int_eq(d.send_unavailable, lost_from);
    }
}
END_TEST

START_TEST(test_in_subscribed)
{
    static const row_t t[N_STATES] = {
        { S_NONE, 0 }, { S_TO, 1 }, { S_NONE_IN, 0 }, { S_TO_IN, 1 },
        { S_TO, 0 }, { S_TO_IN, 0 }, { S_FROM, 0 }, { S_BOTH, 1 }, { S_BOTH, 0 },
    };
    check_table(1, ROOST_SUBEV_SUBSCRIBED, t);
}
END_TEST

START_TEST(test_in_unsubscribed)
{
    static const row_t t[N_STATES] = {
        { S_NONE, 0 }, { S_NONE, 1 }, { S_NONE_IN, 0 }, { S_NONE_IN, 1 },
        { S_NONE, 1 }, { S_NONE_IN, 1 }, { S_FROM, 0 }, { S_FROM, 1 }, { S_FROM, 1 },
    };
    check_table(1, ROOST_SUBEV_UNSUBSCRIBED, t);
}
END_TEST

/* ---- without a roster item ------------------------------------------ */

START_TEST(test_no_item)
{
    roost_substate_t cur;
    roost_subdecision_t d;

    /* Outbound subscribe creates the item with ask. */
    roost_substate_from_item(&cur, NULL, 0);
    roost_subscription_outbound(&cur, ROOST_SUBEV_SUBSCRIBE, &d);
    ck_assert_int_eq(d.item_changed, 1);
    ck_assert_int_eq(d.next.exists, 1);
    ck_assert_int_eq(d.next.ask, 1);
    ck_assert_int_eq(d.next.sub, ROOST_SUB_NONE);
    ck_assert_int_eq(d.forward, 1);

    /* Inbound subscribe only records pending-in: no item is created. */
    roost_subscription_inbound(&cur, ROOST_SUBEV_SUBSCRIBE, &d);
    ck_assert_int_eq(d.item_changed, 0);
    ck_assert_int_eq(d.next.exists, 0);
    ck_assert_int_eq(d.next.pending_in, 1);
    ck_assert_int_eq(d.deliver, 1);

    /* Approving a request without an item creates it with 'from'. */
    roost_substate_from_item(&cur, NULL, 1);
    roost_subscription_outbound(&cur, ROOST_SUBEV_SUBSCRIBED, &d);
    ck_assert_int_eq(d.item_changed, 1);
    ck_assert_int_eq(d.next.exists, 1);
    ck_assert_int_eq(d.next.sub, ROOST_SUB_FROM);
    ck_assert_int_eq(d.next.pending_in, 0);
    ck_assert_int_eq(d.forward, 1);
    ck_assert_int_eq(d.send_presence, 1);

    /* Denying it touches no item but clears pending-in. */
    roost_subscription_outbound(&cur, ROOST_SUBEV_UNSUBSCRIBED, &d);
    ck_assert_int_eq(d.item_changed, 0);
    ck_assert_int_eq(d.next.exists, 0);
    ck_assert_int_eq(d.next.pending_in, 0);
    ck_assert_int_eq(d.forward, 1);

    /* The contact withdrawing its request: delivered, pending-in cleared. */
    roost_subscription_inbound(&cur, ROOST_SUBEV_UNSUBSCRIBE, &d);
    ck_assert_int_eq(d.item_changed, 0);
    ck_assert_int_eq(d.next.pending_in, 0);
    ck_assert_int_eq(d.deliver, 1);

    /* Inbound subscribed/unsubscribed without an item are ignored. */
    roost_substate_from_item(&cur, NULL, 0);
    roost_subscription_inbound(&cur, ROOST_SUBEV_SUBSCRIBED, &d);
    ck_assert_int_eq(d.item_changed + d.deliver + d.next.exists, 0);
    roost_subscription_inbound(&cur, ROOST_SUBEV_UNSUBSCRIBED, &d);
    ck_assert_int_eq(d.item_changed + d.deliver + d.next.exists, 0);
    roost_subscription_inbound(&cur, ROOST_SUBEV_UNSUBSCRIBE, &d);
    ck_assert_int_eq(d.item_changed + d.deliver + d.next.exists, 0);
}
END_TEST

/* ---- §3.4 pre-approval ------------------------------------------------ */

START_TEST(test_preapproval)
{
    roost_substate_t cur;
    roost_subdecision_t d;

    /* Pre-approving a contact not in the roster adds it (none, approved). */
    roost_substate_from_item(&cur, NULL, 0);
    roost_subscription_outbound(&cur, ROOST_SUBEV_SUBSCRIBED, &d);
    ck_assert_int_eq(d.item_changed, 1);
    ck_assert_int_eq(d.next.exists, 1);
    ck_assert_int_eq(d.next.approved, 1);
    ck_assert_int_eq(d.next.sub, ROOST_SUB_NONE);
    ck_assert_int_eq(d.forward, 0);

    /* Pre-approving twice changes nothing. */
    cur = d.next;
    roost_subscription_outbound(&cur, ROOST_SUBEV_SUBSCRIBED, &d);
    ck_assert_int_eq(d.item_changed, 0);
    ck_assert_int_eq(d.forward, 0);

    /* The contact's request is then answered automatically: None -> From. */
    roost_subscription_inbound(&cur, ROOST_SUBEV_SUBSCRIBE, &d);
    ck_assert_int_eq(d.auto_reply, 1);
    ck_assert_int_eq(d.deliver, 0);
    ck_assert_int_eq(d.send_presence, 1);
    ck_assert_int_eq(d.item_changed, 1);
    ck_assert_int_eq(d.next.sub, ROOST_SUB_FROM);
    ck_assert_int_eq(d.next.approved, 0);
    ck_assert_int_eq(d.next.pending_in, 0);

    /* To + approved -> Both; None+Out + approved -> From+Out. */
    cur = mk(S_TO);
    cur.approved = 1;
    roost_subscription_inbound(&cur, ROOST_SUBEV_SUBSCRIBE, &d);
    ck_assert_int_eq(which(&d.next), S_BOTH);
    ck_assert_int_eq(d.auto_reply, 1);
    cur = mk(S_NONE_OUT);
    cur.approved = 1;
    roost_subscription_inbound(&cur, ROOST_SUBEV_SUBSCRIBE, &d);
    ck_assert_int_eq(which(&d.next), S_FROM_OUT);
    ck_assert_int_eq(d.next.approved, 0);

    /* unsubscribed cancels a pre-approval (and is pushed). */
    cur = mk(S_NONE);
    cur.approved = 1;
    roost_subscription_outbound(&cur, ROOST_SUBEV_UNSUBSCRIBED, &d);
    ck_assert_int_eq(d.next.approved, 0);
    ck_assert_int_eq(d.item_changed, 1);
    ck_assert_int_eq(d.send_unavailable, 0);

    /* Approving an actual request clears a stale approved flag. */
    cur = mk(S_NONE_IN);
    cur.approved = 1;
    roost_subscription_outbound(&cur, ROOST_SUBEV_SUBSCRIBED, &d);
    ck_assert_int_eq(which(&d.next), S_FROM);
    ck_assert_int_eq(d.next.approved, 0);
}
END_TEST

/* ---- §2.5.3 removal and helpers -------------------------------------- */

START_TEST(test_remove)
{
    static const int want_unsub[N_STATES] = { 0, 1, 0, 1, 1, 1, 0, 1, 1 };
    static const int want_unsubd[N_STATES] = { 0, 0, 1, 1, 0, 1, 1, 1, 1 };
    for (int s = 0; s < N_STATES; s++) {
        roost_substate_t cur = mk(s);
        int a = -1, b = -1;
        roost_subscription_remove(&cur, &a, &b);
        ck_assert_msg(a == want_unsub[s], "unsubscribe in %s", state_names[s]);
        ck_assert_msg(b == want_unsubd[s], "unsubscribed in %s", state_names[s]);
    }
    roost_substate_t none;
    int a, b;
    roost_substate_from_item(&none, NULL, 1);
    roost_subscription_remove(&none, &a, &b);
    ck_assert_int_eq(a, 0);
    ck_assert_int_eq(b, 1);
}
END_TEST

START_TEST(test_parse_and_names)
{
    roost_subev_t ev;
    ck_assert_int_eq(roost_subev_parse("subscribe", &ev), 0);
    ck_assert_int_eq(ev, ROOST_SUBEV_SUBSCRIBE);
    ck_assert_int_eq(roost_subev_parse("unsubscribed", &ev), 0);
    ck_assert_int_eq(ev, ROOST_SUBEV_UNSUBSCRIBED);
    ck_assert_int_eq(roost_subev_parse("probe", &ev), ROOST_EINVAL);
    ck_assert_int_eq(roost_subev_parse(NULL, &ev), ROOST_EINVAL);
    ck_assert_int_eq(roost_subev_parse("Subscribe", &ev), ROOST_EINVAL);
    ck_assert_str_eq(roost_subev_name(ROOST_SUBEV_UNSUBSCRIBE), "unsubscribe");
    ck_assert_str_eq(roost_sub_name(ROOST_SUB_BOTH), "both");
    ck_assert_str_eq(roost_sub_name(ROOST_SUB_FROM), "from");
    ck_assert_str_eq(roost_sub_name(ROOST_SUB_TO), "to");
    ck_assert_str_eq(roost_sub_name(ROOST_SUB_NONE), "none");

    roost_roster_item_t it;
    memset(&it, 0, sizeof(it));
    it.sub = ROOST_SUB_TO;
    it.approved = 1;
    roost_substate_t st;
    roost_substate_from_item(&st, &it, 1);
    ck_assert_int_eq(st.exists, 1);
    ck_assert_int_eq(which(&st), S_TO_IN);
    ck_assert_int_eq(st.approved, 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("subscription");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_out_subscribe);
    tcase_add_test(tc, test_out_unsubscribe);
    tcase_add_test(tc, test_out_subscribed);
    tcase_add_test(tc, test_out_unsubscribed);
    tcase_add_test(tc, test_in_subscribe);
    tcase_add_test(tc, test_in_unsubscribe);
    tcase_add_test(tc, test_in_subscribed);
    tcase_add_test(tc, test_in_unsubscribed);
    tcase_add_test(tc, test_no_item);
    tcase_add_test(tc, test_preapproval);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_parse_and_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
