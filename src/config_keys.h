/* Inside the configuration module: the key table as config.c keeps it,
 * for cfgload.c, which reads files into it. */
#ifndef FUGUE_CONFIG_KEYS_H
#define FUGUE_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct errlist;

#define CONFIG_FILE_MAX	(1024 * 1024)	/* a larger file is refused (66) */

struct key;
typedef int	setter(struct config *, const struct key *, const char *,
		    char *, size_t);

struct key {
	const char	*section;
	const char	*name;
	setter		*set;
	size_t		 off;		/* the field, for the generic setters */
	long long	 lo, hi;	/* ranges of numbers, modes, durations */
	bool		 repeatable;
};

#define FIELD(c, k, type)	((type *)(void *)((char *)(c) + (k)->off))

/* The setters (cfgset.c). */
int	set_path(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_log_level(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_kill_mode(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_subreaper(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_address(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_metrics(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_int(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_unsigned(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_size(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_surge(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_mode(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_socket_owner(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_command(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_hook(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_user(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_group(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_env(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_bool(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_signal(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_duration(struct config *, const struct key *, const char *,
	    char *, size_t);
int	set_ready(struct config *, const struct key *, const char *,
	    char *, size_t);

const struct key *key_find(const char *section, const char *name);
size_t	key_count(void);
size_t	key_index(const struct key *);
bool	key_repeatable(const struct key *);
/* Set k from value; errors as "where: [section] key: why". */
int	key_apply(struct config *, const struct key *, const char *value,
	    const char *where, struct errlist *);
bool	section_known(const char *);
/* " (did you mean ...?)" or "" */
void	key_hint(const char *section, const char *name, char *buf, size_t len);
void	section_hint(const char *section, char *buf, size_t len);
void	add_error(struct errlist *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
char	*dupn(const char *, size_t);

#endif
