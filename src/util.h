/* Small helpers shared by every module: allocation that cannot fail
 * silently, error lists, string vectors. */
#ifndef FUGUE_UTIL_H
#define FUGUE_UTIL_H

#include <stdarg.h>
#include <stddef.h>

#define EX_USAGE_	64	/* bad command line */
#define EX_DATAERR_	65	/* a pid file its lock does not vouch for */
#define EX_NOINPUT_	66	/* config file missing or unreadable */
#define EX_UNAVAIL_	69	/* workers cannot start */
#define EX_OSERR_	71	/* fork, bind (other than in use) ... */
#define EX_CANTCREAT_	73	/* cannot create pid or socket file */
#define EX_TEMPFAIL_	75	/* address in use, already running */
#define EX_CONFIG_	78	/* invalid configuration */
#define EX_TIMEOUT_	124	/* a client's wait passed its bound, as timeout(1) */

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

#endif
