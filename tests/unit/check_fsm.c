/* Unit tests of src/fsm.c: every (state, event) pair of the worker state
 * machine, under every combination of its inputs. */
#include <check.h>
#include <stdbool.h>

#include "fsm.h"

/* What each pair must do, written out independently of the table. */
static struct fsm_out
expected(enum worker_state s, enum worker_event e, const struct fsm_in *in)
{
	struct fsm_out o = { s, 0, true };
	unsigned ready = A_MARK_READY | (in->watchdog ? A_ARM_WATCHDOG : 0);

#define GO(st, act)	do { o.next = (st); o.actions = (act); \
			    o.ignored = false; } while (0)
	if (e == WE_EXIT && s != W_BACKOFF && s != W_GONE) {
		if (in->respawn)
			GO(W_BACKOFF, A_DISARM | A_RESPAWN);
		else
			GO(W_GONE, A_DISARM | A_FORGET);
		return o;
	}
	switch (s) {
	case W_STARTING:
		if (e == WE_EXEC_OK && (in->notify || in->delay))
			GO(W_STARTING, A_ARM_READY);
		else if (e == WE_EXEC_OK)
			GO(W_READY, ready);
		else if (e == WE_EXEC_FAILED)
			GO(W_STARTING, 0);
		else if ((e == WE_READY && in->notify) || e == WE_DELAY)
			GO(W_READY, A_DISARM | ready);
		else if (e == WE_READY_TIMEOUT)
			GO(W_DRAINING, A_DISARM | A_FAILED_START |
			    A_SIGNAL_STOP);
		else if (e == WE_STOP)
			GO(W_DRAINING, A_DISARM | A_SIGNAL_STOP);
		break;
	case W_READY:
		if (e == WE_PING)
			GO(W_READY, A_ARM_WATCHDOG);
		else if (e == WE_WATCHDOG)
			GO(W_READY, A_DISARM | A_SIGNAL_KILL);
		else if (e == WE_STOP)
			GO(W_DRAINING, A_DISARM | A_SIGNAL_STOP);
		else if (e == WE_STOPPING)	/* the master replaces it */
			GO(W_READY, 0);
		break;
	case W_DRAINING:
		if (e == WE_KILL)
			GO(W_DRAINING, A_SIGNAL_KILL);
		break;
	case W_BACKOFF:
		if (e == WE_RESTART)
			GO(W_STARTING, A_SPAWN);
		else if (e == WE_STOP)
			GO(W_GONE, A_DISARM | A_FORGET);
		break;
	case W_GONE:
		break;
	}
#undef GO
	return o;
}

START_TEST(every_pair)
{
	unsigned pairs = 0;

	for (int s = W_STARTING; s <= W_GONE; s++)
		for (int e = 0; e < WE_COUNT; e++)
			for (int bits = 0; bits < 16; bits++) {
				struct fsm_in in = {
					.notify = bits & 1,
					.delay = bits & 2,
					.watchdog = (bits & 4) && (bits & 1),
					.respawn = bits & 8,
				};
				struct fsm_out want = expected(s, e, &in);
				struct fsm_out got = fsm_step(s, e, &in);

				ck_assert_msg(got.next == want.next &&
				    got.actions == want.actions &&
				    got.ignored == want.ignored,
				    "%s on %s (notify %d delay %d watchdog %d "
				    "respawn %d): got %s/%#x/%d, want %s/%#x/%d",
				    worker_state_name(s), fsm_event_name(e),
				    in.notify, in.delay, in.watchdog,
				    in.respawn, worker_state_name(got.next),
				    got.actions, got.ignored,
				    worker_state_name(want.next), want.actions,
				    want.ignored);
				pairs++;
			}
	ck_assert_uint_eq(pairs, (W_GONE + 1) * WE_COUNT * 16);
}
END_TEST

/* A stopped worker is never signalled twice, and a gone one never again. */
START_TEST(no_second_signal)
{
	struct fsm_in in = { 0 };

	for (int e = 0; e < WE_COUNT; e++) {
		struct fsm_out o = fsm_step(W_DRAINING, e, &in);

		ck_assert(!(o.actions & A_SIGNAL_STOP));
		o = fsm_step(W_GONE, e, &in);
		ck_assert(o.ignored && o.actions == 0);
	}
}
END_TEST

START_TEST(names)
{
	for (int e = 0; e < WE_COUNT; e++)
		ck_assert_str_ne(fsm_event_name(e), "?");
	ck_assert_str_eq(fsm_event_name(WE_COUNT), "?");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fsm");
	TCase *tc = tcase_create("fsm");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_pair);
	tcase_add_test(tc, no_second_signal);
	tcase_add_test(tc, names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
