/* Unit tests of src/workers.c: the worker table (add, remove, find, free
 * slots, counts) and the crash-loop backoff. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>

#include "workers.h"

static struct worker_table t;

static void
setup(void)
{
	workers_init(&t);
}

static void
teardown(void)
{
	while (!TAILQ_EMPTY(&t.list))
		workers_remove(&t, TAILQ_FIRST(&t.list));
}

/* The list both ways matches the expected slots, in order. */
static void
expect_slots(const unsigned *slots, unsigned n)
{
	struct worker *w;
	unsigned i = 0;

	ck_assert_uint_eq(t.n, n);
	TAILQ_FOREACH(w, &t.list, link) {
		ck_assert_uint_lt(i, n);
		ck_assert_uint_eq(w->slot, slots[i]);
		i++;
	}
	ck_assert_uint_eq(i, n);
	TAILQ_FOREACH_REVERSE(w, &t.list, worker_list, link)
		ck_assert_uint_eq(w->slot, slots[--i]);
	ck_assert_uint_eq(i, 0);
	ck_assert(n > 0 || TAILQ_EMPTY(&t.list));
}

/* ---- backoff ---- */

START_TEST(backoff_doubles)
{
	unsigned d = 0;
	static const unsigned want[] = { 100, 200, 400, 800, 1600, 3200, 6400,
	    12800, 25600, 30000, 30000, 30000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = workers_backoff(d, false, 0, 30000);
		ck_assert_uint_eq(d, want[i]);
	}
}
END_TEST

START_TEST(backoff_first)
{
	ck_assert_uint_eq(BACKOFF_FIRST_MS, 100);
	ck_assert_uint_eq(workers_backoff(0, false, 0, 30000), 100);
	/* died before it was ready: however long it ran, no reset */
	ck_assert_uint_eq(workers_backoff(0, false, 100.0, 30000), 100);
	ck_assert_uint_eq(workers_backoff(400, false, 100.0, 30000), 800);
}
END_TEST

START_TEST(backoff_reset)
{
	/* ready for a second or more: the exit is a clean one */
	ck_assert_uint_eq(workers_backoff(6400, true, 1.0, 30000), 0);
	ck_assert_uint_eq(workers_backoff(30000, true, 3600.0, 30000), 0);
	ck_assert_uint_eq(workers_backoff(0, true, BACKOFF_STABLE_SEC, 30000),
	    0);
	/* ready, but not for long enough: still a crash loop */
	ck_assert_uint_eq(workers_backoff(6400, true, 0.999, 30000), 12800);
	ck_assert_uint_eq(workers_backoff(0, true, 0.0, 30000), 100);
	ck_assert_uint_eq(workers_backoff(0, true, 0.5, 30000), 100);
}
END_TEST

START_TEST(backoff_cap)
{
	/* the cap holds whatever the previous delay */
	ck_assert_uint_eq(workers_backoff(100, false, 0, 150), 150);
	ck_assert_uint_eq(workers_backoff(150, false, 0, 150), 150);
	ck_assert_uint_eq(workers_backoff(20000, false, 0, 30000), 30000);
	ck_assert_uint_eq(workers_backoff(15000, false, 0, 30000), 30000);
	ck_assert_uint_eq(workers_backoff(14999, false, 0, 30000), 29998);
	ck_assert_uint_eq(workers_backoff(99999, false, 0, 30000), 30000);
	/* a cap under the first delay wins over it */
	ck_assert_uint_eq(workers_backoff(0, false, 0, 50), 50);
	ck_assert_uint_eq(workers_backoff(0, false, 0, 100), 100);
	ck_assert_uint_eq(workers_backoff(100, false, 0, 100), 100);
	/* no overflow near the top of unsigned */
	ck_assert_uint_eq(workers_backoff(UINT_MAX / 2 + 1, false, 0, UINT_MAX),
	    UINT_MAX);
	ck_assert_uint_eq(workers_backoff(UINT_MAX, false, 0, UINT_MAX),
	    UINT_MAX);
	ck_assert_uint_eq(workers_backoff(UINT_MAX / 2, false, 0, UINT_MAX),
	    UINT_MAX - 1);
}
END_TEST

START_TEST(backoff_sequence_with_reset)
{
	unsigned d = 0;

	d = workers_backoff(d, false, 0, 30000);
	d = workers_backoff(d, false, 0, 30000);
	d = workers_backoff(d, true, 0.2, 30000);
	ck_assert_uint_eq(d, 400);
	d = workers_backoff(d, true, 5.0, 30000);	/* stayed up */
	ck_assert_uint_eq(d, 0);
	d = workers_backoff(d, false, 0, 30000);	/* starts over */
	ck_assert_uint_eq(d, 100);
}
END_TEST

/* ---- the table ---- */

START_TEST(add_initial_state)
{
	struct worker *w = workers_add(&t, 3, 7);

	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(w->slot, 3);
	ck_assert_uint_eq(w->gen, 7);
	ck_assert_int_eq(w->state, W_STARTING);
	ck_assert_int_eq(w->pid, 0);
	ck_assert(!w->exec_ok);
	ck_assert_int_eq(w->last_status, -1);
	ck_assert(!w->failed_start);
	ck_assert_ptr_null(w->out);
	ck_assert_uint_eq(w->restarts, 0);
	ck_assert_uint_eq(w->backoff_ms, 0);
	ck_assert(w->ready_at == 0);
	ck_assert_ptr_eq(TAILQ_FIRST(&t.list), w);
	ck_assert_ptr_eq(TAILQ_LAST(&t.list, worker_list), w);
	ck_assert_uint_eq(t.n, 1);
}
END_TEST

START_TEST(add_remove_order)
{
	struct worker *w0, *w1, *w2, *w3;

	w0 = workers_add(&t, 0, 1);
	w1 = workers_add(&t, 1, 1);
	w2 = workers_add(&t, 2, 1);
	w3 = workers_add(&t, 3, 1);
	expect_slots((const unsigned[]){ 0, 1, 2, 3 }, 4);
	workers_remove(&t, w1);			/* middle */
	expect_slots((const unsigned[]){ 0, 2, 3 }, 3);
	workers_remove(&t, w0);			/* head */
	expect_slots((const unsigned[]){ 2, 3 }, 2);
	workers_remove(&t, w3);			/* tail */
	expect_slots((const unsigned[]){ 2 }, 1);
	w1 = workers_add(&t, 5, 1);		/* appends after a removal */
	expect_slots((const unsigned[]){ 2, 5 }, 2);
	workers_remove(&t, w2);
	workers_remove(&t, w1);
	expect_slots(NULL, 0);
	w0 = workers_add(&t, 9, 2);		/* usable again once empty */
	expect_slots((const unsigned[]){ 9 }, 1);
	ck_assert_ptr_eq(TAILQ_FIRST(&t.list), w0);
}
END_TEST

START_TEST(find_pid)
{
	struct worker *a = workers_add(&t, 0, 1), *b = workers_add(&t, 1, 1);
	struct worker *c = workers_add(&t, 2, 1);

	a->pid = 100;
	b->pid = 200;
	c->pid = 0;				/* in backoff: no process */
	c->state = W_BACKOFF;
	ck_assert_ptr_eq(workers_find_pid(&t, 100), a);
	ck_assert_ptr_eq(workers_find_pid(&t, 200), b);
	ck_assert_ptr_null(workers_find_pid(&t, 300));
	/* pid 0 and negative pids never match a record */
	ck_assert_ptr_null(workers_find_pid(&t, 0));
	ck_assert_ptr_null(workers_find_pid(&t, -1));
	workers_remove(&t, a);
	ck_assert_ptr_null(workers_find_pid(&t, 100));
}
END_TEST

START_TEST(find_slot)
{
	struct worker *a = workers_add(&t, 0, 1), *b = workers_add(&t, 1, 1);
	struct worker *c = workers_add(&t, 0, 2);

	ck_assert_ptr_eq(workers_find_slot(&t, 1, 0), a);
	ck_assert_ptr_eq(workers_find_slot(&t, 1, 1), b);
	ck_assert_ptr_eq(workers_find_slot(&t, 2, 0), c);
	ck_assert_ptr_null(workers_find_slot(&t, 2, 1));
	ck_assert_ptr_null(workers_find_slot(&t, 3, 0));
	/* a draining worker gives its slot up; one in backoff keeps it */
	a->state = W_DRAINING;
	ck_assert_ptr_null(workers_find_slot(&t, 1, 0));
	b->state = W_BACKOFF;
	ck_assert_ptr_eq(workers_find_slot(&t, 1, 1), b);
	/* the slot's new worker is found, not the draining one */
	c = workers_add(&t, 0, 1);
	ck_assert_ptr_eq(workers_find_slot(&t, 1, 0), c);
}
END_TEST

START_TEST(free_slot)
{
	struct worker *w[4];

	ck_assert_int_eq(workers_free_slot(&t, 1, 3), 0);
	ck_assert_int_eq(workers_free_slot(&t, 1, 0), -1);
	for (unsigned i = 0; i < 4; i++)
		w[i] = workers_add(&t, i, 1);
	ck_assert_int_eq(workers_free_slot(&t, 1, 4), -1);
	ck_assert_int_eq(workers_free_slot(&t, 1, 3), -1);
	ck_assert_int_eq(workers_free_slot(&t, 1, 5), 4);
	/* other generations are independent */
	ck_assert_int_eq(workers_free_slot(&t, 2, 4), 0);
	/* the lowest free slot first */
	workers_remove(&t, w[2]);
	workers_remove(&t, w[1]);
	ck_assert_int_eq(workers_free_slot(&t, 1, 4), 1);
	w[1] = workers_add(&t, 1, 1);
	ck_assert_int_eq(workers_free_slot(&t, 1, 4), 2);
	/* draining frees a slot, backoff does not */
	w[0]->state = W_DRAINING;
	ck_assert_int_eq(workers_free_slot(&t, 1, 4), 0);
	w[0]->state = W_BACKOFF;
	ck_assert_int_eq(workers_free_slot(&t, 1, 4), 2);
	/* a slot at or above target never counts */
	ck_assert_int_eq(workers_free_slot(&t, 1, 2), -1);
}
END_TEST

START_TEST(count)
{
	struct worker *w;

	w = workers_add(&t, 0, 1);
	w->state = W_READY;
	w = workers_add(&t, 1, 1);
	w->state = W_STARTING;
	w = workers_add(&t, 2, 1);
	w->state = W_BACKOFF;
	w = workers_add(&t, 0, 2);
	w->state = W_READY;
	w = workers_add(&t, 1, 2);
	w->state = W_DRAINING;

	ck_assert_uint_eq(workers_count(&t, 1, WS(W_READY)), 1);
	ck_assert_uint_eq(workers_count(&t, 1, WS_LIVE), 2);
	ck_assert_uint_eq(workers_count(&t, 1, WS_LIVE | WS(W_BACKOFF)), 3);
	ck_assert_uint_eq(workers_count(&t, 1, WS(W_DRAINING)), 0);
	ck_assert_uint_eq(workers_count(&t, 2, WS_LIVE), 2);
	ck_assert_uint_eq(workers_count(&t, 2, WS(W_STARTING)), 0);
	ck_assert_uint_eq(workers_count(&t, 3, WS_LIVE), 0);
	ck_assert_uint_eq(workers_count(&t, 1, 0), 0);
	/* GEN_ANY counts every generation */
	ck_assert_uint_eq(workers_count(&t, GEN_ANY, WS(W_READY)), 2);
	ck_assert_uint_eq(workers_count_all(&t, WS_LIVE), 4);
	ck_assert_uint_eq(workers_count_all(&t, WS_LIVE | WS(W_BACKOFF)), 5);
	ck_assert_uint_eq(workers_count_all(&t, WS(W_DRAINING)), 1);
}
END_TEST

START_TEST(state_names)
{
	ck_assert_str_eq(worker_state_name(W_STARTING), "starting");
	ck_assert_str_eq(worker_state_name(W_READY), "ready");
	ck_assert_str_eq(worker_state_name(W_DRAINING), "draining");
	ck_assert_str_eq(worker_state_name(W_BACKOFF), "backoff");
	ck_assert_str_eq(worker_state_name((enum worker_state)42), "?");
}
END_TEST

START_TEST(many)
{
	/* a big table stays consistent */
	for (unsigned i = 0; i < 10000; i++)
		workers_add(&t, i, 1)->pid = (pid_t)(i + 1000);
	ck_assert_uint_eq(t.n, 10000);
	ck_assert_uint_eq(workers_find_pid(&t, 10999)->slot, 9999);
	ck_assert_int_eq(workers_free_slot(&t, 1, 10000), -1);
	workers_remove(&t, workers_find_pid(&t, 6000));
	ck_assert_int_eq(workers_free_slot(&t, 1, 10000), 5000);
	ck_assert_uint_eq(workers_count(&t, 1, WS_LIVE), 9999);
}
END_TEST

/* ---- exit reasons ---- */

#define EXITED(n)	((n) << 8)
#define KILLED(sig)	(sig)

START_TEST(exit_reasons)
{
	/* Asked to stop: stopped, killed at kill_timeout, or stopped for
	 * not being ready in time (whatever its status). */
	ck_assert_int_eq(workers_exit_reason(W_DRAINING, true, false, false,
	    EXITED(0)), WX_STOPPED);
	ck_assert_int_eq(workers_exit_reason(W_DRAINING, true, false, false,
	    KILLED(15)), WX_STOPPED);
	ck_assert_int_eq(workers_exit_reason(W_DRAINING, true, false, true,
	    KILLED(9)), WX_KILLED);
	ck_assert_int_eq(workers_exit_reason(W_DRAINING, true, true, true,
	    KILLED(9)), WX_READY_TIMEOUT);
	ck_assert_int_eq(workers_exit_reason(W_DRAINING, true, true, false,
	    EXITED(0)), WX_READY_TIMEOUT);
	/* By itself, starting or ready. */
	ck_assert_int_eq(workers_exit_reason(W_STARTING, false, false, false,
	    EXITED(127)), WX_EXEC_FAILED);
	ck_assert_int_eq(workers_exit_reason(W_STARTING, true, false, false,
	    EXITED(1)), WX_EXITED);
	ck_assert_int_eq(workers_exit_reason(W_READY, true, false, false,
	    EXITED(0)), WX_EXITED);
	ck_assert_int_eq(workers_exit_reason(W_READY, true, false, false,
	    KILLED(9)), WX_SIGNALED);
	ck_assert_int_eq(workers_exit_reason(W_READY, true, false, false,
	    KILLED(11) | 0x80), WX_SIGNALED);
	/* fugue's own SIGKILL to a running worker: the watchdog's. */
	ck_assert_int_eq(workers_exit_reason(W_READY, true, false, true,
	    KILLED(9)), WX_WATCHDOG);
}
END_TEST

START_TEST(exit_names)
{
	static const char *const want[WX_COUNT] = { "stopped", "killed",
	    "ready_timeout", "watchdog", "exec_failed", "exited", "signaled" };

	for (int x = 0; x < WX_COUNT; x++)
		ck_assert_str_eq(worker_exit_name(x), want[x]);
	ck_assert_str_eq(worker_exit_name(WX_COUNT), "?");
}
END_TEST

static Suite *
workers_suite(void)
{
	Suite *s = suite_create("workers");
	TCase *tc;

	tc = tcase_create("backoff");
	tcase_add_test(tc, backoff_doubles);
	tcase_add_test(tc, backoff_first);
	tcase_add_test(tc, backoff_reset);
	tcase_add_test(tc, backoff_cap);
	tcase_add_test(tc, backoff_sequence_with_reset);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, add_initial_state);
	tcase_add_test(tc, add_remove_order);
	tcase_add_test(tc, find_pid);
	tcase_add_test(tc, find_slot);
	tcase_add_test(tc, free_slot);
	tcase_add_test(tc, count);
	tcase_add_test(tc, state_names);
	tcase_add_test(tc, many);
	suite_add_tcase(s, tc);

	tc = tcase_create("exits");
	tcase_add_test(tc, exit_reasons);
	tcase_add_test(tc, exit_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(workers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
