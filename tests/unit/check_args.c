/* Unit tests for args.c: options, --KEY VALUE overrides, the command after
 * "--", usage errors (exit 64), and the command's shell-quoted rendering. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "util.h"

static struct args a;
static char said[1024];		/* what the last parse wrote to stderr */

static int
parse(const char *first, ...)
{
	static char *argv[32];
	FILE *err = tmpfile();
	int saved = dup(2), r;
	va_list ap;
	size_t n;
	int argc = 0;

	argv[argc++] = "fugue";
	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *))
		argv[argc++] = (char *)s;
	va_end(ap);
	argv[argc] = NULL;
	args_free(&a);
	memset(&a, 0, sizeof(a));
	ck_assert_ptr_nonnull(err);
	fflush(stderr);
	dup2(fileno(err), 2);
	r = args_parse(argc, argv, &a);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(err);
	n = fread(said, 1, sizeof(said) - 1, err);
	said[n] = '\0';
	fclose(err);
	return r;
}

/* The usage error: exit 64, one line naming what is wrong, then the hint. */
static void
usage_error(const char *want)
{
	ck_assert_msg(strstr(said, want) != NULL, "said %s, want %s", said,
	    want);
	ck_assert_ptr_nonnull(strstr(said, "(fugue -h for help)\n"));
	ck_assert_int_eq(strncmp(said, "fugue: ", 7), 0);
}

static void
teardown(void)
{
	args_free(&a);
}

START_TEST(config_and_flags)
{
	ck_assert_int_eq(parse("-c", "app.conf", "-t", NULL), 0);
	ck_assert_str_eq(a.config, "app.conf");
	ck_assert(a.test);
	ck_assert(!a.daemonize);
	ck_assert_int_eq(parse("-capp.conf", "-d", NULL), 0);
	ck_assert_str_eq(a.config, "app.conf");
	ck_assert(a.daemonize);
	/* Flags together, the one with a value last. */
	ck_assert_int_eq(parse("-tdc", "x.conf", NULL), 0);
	ck_assert(a.test && a.daemonize);
	ck_assert_str_eq(a.config, "x.conf");
	ck_assert_int_eq(parse("-c", "x.conf", "-s", "reload", NULL), 0);
	ck_assert_str_eq(a.signal, "reload");
}
END_TEST

START_TEST(actions)
{
	ck_assert_int_eq(parse("-c", "x.conf", "status", "--json", NULL), 0);
	ck_assert_str_eq(a.action, "status");
	ck_assert(a.json);
	ck_assert_int_eq(parse("-c", "x.conf", "upgrade", NULL), 0);
	ck_assert_str_eq(a.action, "upgrade");
	/* One action only. */
	ck_assert_int_eq(parse("reload", "status", NULL), EX_USAGE_);
}
END_TEST

START_TEST(overrides)
{
	ck_assert_int_eq(parse("--listen", "127.0.0.1:8080", "--workers=4",
	    "--kill-timeout", "10s", "--listen", "unix:/tmp/s", "--", "srv",
	    "-x", NULL), 0);
	ck_assert_uint_eq(a.nov, 4);
	ck_assert_str_eq(a.ov[0].section, "listen");
	ck_assert_str_eq(a.ov[0].key, "address");
	ck_assert_str_eq(a.ov[0].value, "127.0.0.1:8080");
	ck_assert_str_eq(a.ov[0].where, "--listen");
	ck_assert_str_eq(a.ov[1].section, "worker");
	ck_assert_str_eq(a.ov[1].key, "count");
	ck_assert_str_eq(a.ov[1].value, "4");
	ck_assert_str_eq(a.ov[1].where, "--workers");
	ck_assert_str_eq(a.ov[2].key, "kill_timeout");
	ck_assert_str_eq(a.ov[2].value, "10s");
	ck_assert_str_eq(a.ov[2].where, "--kill-timeout");
	ck_assert_str_eq(a.ov[3].value, "unix:/tmp/s");
	ck_assert_int_eq(a.ncommand, 2);
	ck_assert_str_eq(a.command[0], "srv");
	ck_assert_str_eq(a.command[1], "-x");
}
END_TEST

START_TEST(after_dashdash_is_the_command)
{
	/* What follows "--" is the command's, even if it looks like ours. */
	ck_assert_int_eq(parse("--workers", "2", "--", "srv", "-c", "--listen",
	    NULL), 0);
	ck_assert_ptr_null(a.config);
	ck_assert_uint_eq(a.nov, 1);
	ck_assert_int_eq(a.ncommand, 3);
	ck_assert_str_eq(a.command[2], "--listen");
}
END_TEST

START_TEST(usage_errors)
{
	ck_assert_int_eq(parse("--no-such-key", "1", NULL), EX_USAGE_);
	usage_error("unknown option --no-such-key");
	ck_assert_int_eq(parse("--kill-timeout", NULL), EX_USAGE_);
	usage_error("option --kill-timeout needs a value");
	ck_assert_int_eq(parse("-c", NULL), EX_USAGE_);
	usage_error("option -c needs a value");
	ck_assert_int_eq(parse("-x", NULL), EX_USAGE_);
	usage_error("unknown option -x");
	ck_assert_int_eq(parse("-", NULL), EX_USAGE_);
	usage_error("unexpected argument \"-\"");
	ck_assert_int_eq(parse("stray", NULL), EX_USAGE_);
	usage_error("unexpected argument \"stray\"");
	ck_assert_int_eq(parse("--workers", "2", "--", NULL), EX_USAGE_);
	usage_error("--: no command after it");
	/* A good command line says nothing. */
	ck_assert_int_eq(parse("-c", "x.conf", NULL), 0);
	ck_assert_str_eq(said, "");
}
END_TEST

START_TEST(timeout_bounds_the_clients)
{
	ck_assert_int_eq(parse("-c", "x.conf", "status", "-w", "1s", NULL), 0);
	ck_assert_int_eq(a.timeout_ms, 1000);
	ck_assert_int_eq(parse("-c", "x.conf", "-w500ms", "reload", NULL), 0);
	ck_assert_int_eq(a.timeout_ms, 500);
	ck_assert_int_eq(parse("-c", "x.conf", "--timeout", "2m", "-s", "quit",
	    NULL), 0);
	ck_assert_int_eq(a.timeout_ms, 120000);
	ck_assert_int_eq(parse("-c", "x.conf", "-d", "--timeout=90", NULL), 0);
	ck_assert_int_eq(a.timeout_ms, 90000);
	ck_assert_int_eq(parse("-c", "x.conf", "upgrade", NULL), 0);
	ck_assert_int_eq(a.timeout_ms, 0);

	ck_assert_int_eq(parse("status", "-w", NULL), EX_USAGE_);
	usage_error("option -w needs a value");
	ck_assert_int_eq(parse("status", "--timeout", NULL), EX_USAGE_);
	usage_error("option --timeout needs a value");
	ck_assert_int_eq(parse("status", "-w", "soon", NULL), EX_USAGE_);
	usage_error("option -w: expected a duration above 0");
	ck_assert_int_eq(parse("status", "--timeout=0", NULL), EX_USAGE_);
	usage_error("got \"0\"");
	/* Nothing to bound: the master itself waits for nobody. */
	ck_assert_int_eq(parse("-c", "x.conf", "-w", "1s", NULL), EX_USAGE_);
	usage_error("option -w/--timeout: nothing waits");
	/* --timeout-ish keys are still configuration keys, or unknown. */
	ck_assert_int_eq(parse("--timeouts", "1s", NULL), EX_USAGE_);
	usage_error("unknown option --timeouts");
}
END_TEST

START_TEST(join_quotes_what_needs_it)
{
	char *argv[] = { "/usr/bin/node", "app.js", "--port=80", "a b", "",
	    "it's", "$HOME" };
	char *s = args_join_command(argv, 7);

	ck_assert_str_eq(s, "/usr/bin/node app.js --port=80 'a b' '' "
	    "'it'\\''s' '$HOME'");
	free(s);
}
END_TEST

static Suite *
args_suite(void)
{
	Suite *s = suite_create("args");
	TCase *tc = tcase_create("args");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, config_and_flags);
	tcase_add_test(tc, actions);
	tcase_add_test(tc, overrides);
	tcase_add_test(tc, after_dashdash_is_the_command);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, timeout_bounds_the_clients);
	tcase_add_test(tc, join_quotes_what_needs_it);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(args_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
