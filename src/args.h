/* fugue's command line: options, the no-config form's --KEY VALUE
 * overrides, and the command after "--". */
#ifndef FUGUE_ARGS_H
#define FUGUE_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct override {
	const char	*section;
	char		*key;
	const char	*value;
	char		*where;
};

struct args {
	const char	*config;
	bool		 test;
	bool		 daemonize;
	const char	*signal;
	const char	*action;	/* status, reload, upgrade */
	bool		 json;
	int64_t		 timeout_ms;	/* -w, --timeout; 0: the default */
	char	       **command;	/* after "--" */
	int		 ncommand;
	struct override	*ov;
	size_t		 nov;
};

/* 0, or EX_USAGE_ after a one-line error; -h and -V print and exit. */
int	args_parse(int argc, char **argv, struct args *a);
void	args_free(struct args *a);
/* "fugue: <fmt with arg>" and a pointer to -h, on stderr: EX_USAGE_. */
int	args_usage_error(const char *fmt, const char *arg);
/* Shell-quoted rendering of argv, for logs (malloc'd). */
char   *args_join_command(char **argv, int n);

#endif
