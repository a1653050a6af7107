/* Small helpers shared by every module: allocation that cannot fail
 * silently, error lists, string vectors. */
#ifndef FUGUE_UTIL_H
#define FUGUE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <sysexits.h>

/* fugue's exit codes (fugue(8), EXIT STATUS). */
#define EX_USAGE_	EX_USAGE	/* 64 bad command line */
#define EX_DATAERR_	EX_DATAERR	/* 65 a trial or a pid file failed */
#define EX_NOINPUT_	EX_NOINPUT	/* 66 config file missing or unreadable */
#define EX_UNAVAIL_	EX_UNAVAILABLE	/* 69 workers cannot start */
#define EX_OSERR_	EX_OSERR	/* 71 fork, bind (other than in use) ... */
#define EX_CANTCREAT_	EX_CANTCREAT	/* 73 cannot create pid or socket file */
#define EX_TEMPFAIL_	EX_TEMPFAIL	/* 75 address in use, already running */
#define EX_CONFIG_	EX_CONFIG	/* 78 invalid configuration */
#define EX_TIMEOUT_	124		/* a client's wait passed its bound, as timeout(1) */

/* "s" after a count other than 1: "1 worker", "2 workers". */
static inline const char *
plural(unsigned long n)
{
	return n == 1 ? "" : "s";
}

/* Seconds on the monotonic clock: ages and uptimes survive clock steps. */
double	 mono_now(void);

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A growable list of one-line error messages. */
struct errlist {
	char	**v;
	size_t	  n;
};
void	errlist_add(struct errlist *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	errlist_free(struct errlist *);

/* A NULL-terminated vector of strings, owned. */
struct strvec {
	char	**v;	/* v[n] == NULL (v may be NULL when n == 0) */
	size_t	  n;
};
void	strvec_push(struct strvec *, const char *);
void	strvec_push_owned(struct strvec *, char *);
void	strvec_clear(struct strvec *);
void	strvec_copy(struct strvec *, const struct strvec *);

/* Can a file be created at path: its directory is there, and ours to
 * write. 0, or -1 with errno. */
int	path_dir_writable(const char *path);

#endif
