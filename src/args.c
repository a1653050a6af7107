/* fugue's command line (see args.h and fugue(8)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "config.h"
#include "util.h"

#ifndef FUGUE_VERSION
#define FUGUE_VERSION "0.0.0"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: fugue -c FILE [-t | -d | -s SIGNAL] [-w DURATION]\n"
	    "       fugue [--listen ADDR ...] [--workers N] [--KEY VALUE ...] "
	    "-- COMMAND [ARG ...]\n"
	    "       fugue -c FILE [-w DURATION] status [--json] | reload | "
	    "upgrade\n"
	    "       fugue -V | -h\n"
	    "\n"
	    "  -c FILE     configuration file (see fugue.conf(5))\n"
	    "  -t          test the configuration and exit (0, or 78)\n"
	    "  -d          run as a daemon; exit 0 once the workers are ready\n"
	    "  -s SIGNAL   signal the running master found through pid_file:\n"
	    "              quit stop reload upgrade reopen incr decr\n"
	    "  status      the workers of the running master (control_socket)\n"
	    "  reload, upgrade  through control_socket, waiting for the outcome\n"
	    "  -w DURATION, --timeout DURATION\n"
	    "              how long status, reload, upgrade, -s and -d wait "
	    "(124 after)\n"
	    "  -V          print the version\n"
	    "  -h          this help\n"
	    "  --KEY VALUE set any configuration key (--kill-timeout 10s);\n"
	    "              --listen is [listen] address, --workers is "
	    "[worker] count\n");
}

int
args_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "fugue: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(fugue -h for help)\n");
	return EX_USAGE_;
}

/* -w, --timeout: a duration above 0, or a usage error. */
static int
parse_timeout(const char *opt, const char *value, struct args *a)
{
	char *msg;
	int r;

	if (parse_duration(value, &a->timeout_ms) == 0 && a->timeout_ms > 0)
		return 0;
	msg = xprintf("option %s: expected a duration above 0 (500ms, 30s, "
	    "2m), got \"%s\"", opt, value);
	r = args_usage_error("%s", msg);
	free(msg);
	return r;
}

/* What -w bounds must be there. */
static int
check_timeout(const struct args *a)
{
	if (a->timeout_ms == 0 || a->signal || a->action || a->daemonize)
		return 0;
	return args_usage_error("%s", "option -w/--timeout: nothing waits (it "
	    "bounds status, reload, upgrade, -s and -d)");
}

/* --timeout DURATION or --timeout=DURATION at argv[*i]: 1 if it is that
 * (and *r the result), 0 if not. */
static int
long_timeout(int argc, char **argv, int *i, struct args *a, int *r)
{
	const char *arg = argv[*i];

	if (strncmp(arg, "--timeout", 9) != 0 || (arg[9] && arg[9] != '='))
		return 0;
	if (arg[9] == '=')
		*r = parse_timeout("--timeout", arg + 10, a);
	else if (*i + 1 < argc)
		*r = parse_timeout("--timeout", argv[++*i], a);
	else
		*r = args_usage_error("option %s needs a value", "--timeout");
	return 1;
}

int
args_parse(int argc, char **argv, struct args *a)
{
	int r;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];

		if (strcmp(arg, "--") == 0) {
			a->command = argv + i + 1;
			a->ncommand = argc - i - 1;
			if (a->ncommand == 0)
				return args_usage_error("%s: no command after it",
				    "--");
			return check_timeout(a);
		}
		if (strcmp(arg, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(arg, "--json") == 0) {
			a->json = true;
			continue;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("fugue %s\n", FUGUE_VERSION);
			exit(0);
		}
		if (long_timeout(argc, argv, &i, a, &r)) {
			if (r != 0)
				return r;
			continue;
		}
		if (strncmp(arg, "--", 2) == 0) {
			char *eq = strchr(arg, '=');
			char *key = xstrdup(arg + 2);
			const char *section, *value;

			if (eq)
				key[eq - arg - 2] = '\0';
			for (char *p = key; *p; p++)
				if (*p == '-')
					*p = '_';
			if (strcmp(key, "listen") == 0 ||
			    strcmp(key, "workers") == 0) {
				char *alias = xstrdup(key[0] == 'l' ? "address" :
				    "count");

				free(key);
				key = alias;
			}
			if ((section = config_key_section(key)) == NULL) {
				free(key);
				return args_usage_error("unknown option %s", arg);
			}
			if (eq)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				free(key);
				return args_usage_error("option %s needs a value",
				    arg);
			}
			a->ov = xrealloc(a->ov, (a->nov + 1) * sizeof(*a->ov));
			a->ov[a->nov].section = section;
			a->ov[a->nov].key = key;
			a->ov[a->nov].value = value;
			a->ov[a->nov].where = xprintf("--%.*s",
			    eq ? (int)(eq - arg - 2) : (int)strlen(arg + 2),
			    arg + 2);
			a->nov++;
			continue;
		}
		if ((strcmp(arg, "status") == 0 || strcmp(arg, "reload") == 0 ||
		    strcmp(arg, "upgrade") == 0) && a->action == NULL) {
			a->action = arg;
			continue;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			return args_usage_error("unexpected argument \"%s\"", arg);
		for (char *p = arg + 1; *p; p++) {
			switch (*p) {
			case 't':
				a->test = true;
				continue;
			case 'd':
				a->daemonize = true;
				continue;
			case 'V':
				printf("fugue %s\n", FUGUE_VERSION);
				exit(0);
			case 'h':
				usage(stdout);
				exit(0);
			case 'c':
			case 's':
			case 'w':
				break;
			default: {
				char opt[3] = { '-', *p, '\0' };
				return args_usage_error("unknown option %s", opt);
			}
			}
			/* -c FILE, -cFILE, -s SIGNAL, -w DURATION */
			const char *v = p[1] ? p + 1 : (i + 1 < argc ?
			    argv[++i] : NULL);
			if (v == NULL) {
				char opt[3] = { '-', *p, '\0' };
				return args_usage_error("option %s needs a value",
				    opt);
			}
			if (*p == 'c')
				a->config = v;
			else if (*p == 's')
				a->signal = v;
			else if ((r = parse_timeout("-w", v, a)) != 0)
				return r;
			break;
		}
	}
	return check_timeout(a);
}

void
args_free(struct args *a)
{
	for (size_t i = 0; i < a->nov; i++) {
		free(a->ov[i].key);
		free(a->ov[i].where);
	}
	free(a->ov);
	a->ov = NULL;
	a->nov = 0;
}

/* Shell-quoted rendering of argv, for logs. */
char *
args_join_command(char **argv, int n)
{
	size_t len = 1;
	char *s, *p;

	for (int i = 0; i < n; i++)
		len += strlen(argv[i]) * 4 + 3;
	p = s = xmalloc(len);
	for (int i = 0; i < n; i++) {
		bool plain = argv[i][0] != '\0' &&
		    strspn(argv[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
		    "qrstuvwxyz0123456789-_./:=,@+%") == strlen(argv[i]);

		if (i)
			*p++ = ' ';
		if (plain) {
			p = stpcpy(p, argv[i]);
			continue;
		}
		*p++ = '\'';
		for (const char *q = argv[i]; *q; q++) {
			if (*q == '\'')
				p = stpcpy(p, "'\\''");
			else
				*p++ = *q;
		}
		*p++ = '\'';
	}
	*p = '\0';
	return s;
}
