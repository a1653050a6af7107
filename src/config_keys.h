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
