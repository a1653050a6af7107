/*
 * Reading a configuration file: inih's ini_parse_stream through our own
 * line reader, which counts lines (Debian's inih reports none), refuses a
 * line too long for inih's buffer instead of letting it be cut, and sees
 * the raw line, so it can tell a quoted value cut at " ;" and join
 * indented continuation lines.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"


enum line_kind { LINE_SKIP, LINE_KEY, LINE_CONT, LINE_SECTION, LINE_BAD };

struct load {
	struct config	*c;
	struct errlist	*errs;
	const char	*file;		/* as given, for messages */
	const char	*buf;		/* the whole file */
	size_t		 len, pos;
	int		 lineno;
	enum line_kind	 kind;		/* of the line inih is on */
	bool		 cut;		/* that line has a quoted " ;" */
	char		*section;	/* as the reader saw it */
	char		*name;		/* inih's prev_name: what continues */
	/* The value being assembled, applied once no line continues it. */
	bool		 pend;
	bool		 pend_bad;	/* already reported: do not apply */
	int		 pend_line;
	char		*pend_section;
	char		*pend_name;
	char		*pend_value;
	int		*first;		/* line where each key was set, by key */
};

/* inih's rule: a ';' that follows white space starts a comment. With
 * chars, stop at any of them too. */
static char *
find_comment(const char *s, const char *chars)
{
	for (const char *p = s; *p; p++) {
		if (chars != NULL && strchr(chars, *p) != NULL)
			return (char *)p;
		if (*p == ';' && p > s && isspace((unsigned char)p[-1]))
			return (char *)p;
	}
	return (char *)s + strlen(s);
}

static void
rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* Is the first comment on this raw value inside quotes (split_command's
 * quoting rules)? inih would cut the value there. */
static bool
quoted_comment(const char *s)
{
	char q = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
			return q != 0;
		if (q == '\'') {
			if (s[i] == '\'')
				q = 0;
		} else if (q == '"') {
			if (s[i] == '\\' && s[i + 1] != '\0' &&
			    strchr("\\\"$`", s[i + 1]) != NULL)
				i++;	/* never a cut: follows '\' */
			else if (s[i] == '"')
				q = 0;
		} else if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == '\'' || s[i] == '"')
			q = s[i];
	}
	return false;
}

static void
load_apply(struct load *l)
{
	const struct key *k;
	char where[PATH_MAX + 32], hint[128];
	const char *sec = l->pend_section, *name = l->pend_name;

	snprintf(where, sizeof(where), "%s:%d", l->file, l->pend_line);
	if (*name == '\0') {
		add_error(l->errs, "%s: missing key name before '='", where);
		return;
	}
	if (*sec == '\0') {
		key_hint("", name, hint, sizeof(hint));
		add_error(l->errs, "%s: %s: key outside any section%s", where,
		    name, hint);
		return;
	}
	if (!section_known(sec))
		return;		/* reported at the section's line */
	if ((k = key_find(sec, name)) == NULL) {
		key_hint(sec, name, hint, sizeof(hint));
		add_error(l->errs, "%s: [%s] %s: unknown key%s", where, sec,
		    name, hint);
		return;
	}
	if (!key_repeatable(k) && l->first[key_index(k)] != 0) {
		add_error(l->errs, "%s: [%s] %s: already set on line %d", where,
		    sec, name, l->first[key_index(k)]);
		return;
	}
	l->first[key_index(k)] = l->pend_line;
	key_apply(l->c, k, l->pend_value, where, l->errs);
}

static void
load_flush(struct load *l)
{
	if (!l->pend)
		return;
	if (!l->pend_bad)
		load_apply(l);
	l->pend = false;
	free(l->pend_section);
	free(l->pend_name);
	free(l->pend_value);
	l->pend_section = l->pend_name = l->pend_value = NULL;
}

static void
load_cut_error(struct load *l)
{
	add_error(l->errs, "%s:%d: %s%s%s%s: a ';' after white space starts a "
	    "comment, even inside quotes; the value would be cut there",
	    l->file, l->lineno, *l->section ? "[" : "", l->section,
	    *l->section ? "] " : "", l->name);
}

/*
 * Sort a raw line as inih will (comment, continuation, section, key or
 * junk), so that the handler knows its line and whether it continues a
 * value, and report what inih reports only as a number.
 */
static void
load_classify(struct load *l, char *s)
{
	char *start = s, *end, *p;
	char hint[128];

	while (isspace((unsigned char)*start))
		start++;
	rstrip(start);
	l->kind = LINE_SKIP;
	l->cut = false;
	if (*start == '\0' || *start == ';' || *start == '#')
		return;		/* blank lines do not end a value in inih */
	if (l->name != NULL && start > s) {
		l->kind = LINE_CONT;
		if ((l->cut = quoted_comment(start)))
			load_cut_error(l);
		return;
	}
	load_flush(l);
	if (*start == '[') {
		end = find_comment(start + 1, "]");
		if (*end != ']') {
			l->kind = LINE_BAD;
			add_error(l->errs, "%s:%d: missing ']' in \"%s\"",
			    l->file, l->lineno, start);
			return;
		}
		l->kind = LINE_SECTION;
		free(l->section);
		l->section = dupn(start + 1, (size_t)(end - start - 1));
		free(l->name);
		l->name = NULL;
		for (p = end + 1; isspace((unsigned char)*p); p++)
			;
		if (*p != '\0' && *p != ';' && *p != '#')
			add_error(l->errs, "%s:%d: unexpected text after [%s]",
			    l->file, l->lineno, l->section);
		if (!section_known(l->section)) {
			section_hint(l->section, hint, sizeof(hint));
			add_error(l->errs, "%s:%d: [%s]: unknown section%s",
			    l->file, l->lineno, l->section, hint);
		}
		return;
	}
	end = find_comment(start, "=:");
	if (*end != '=' && *end != ':') {
		l->kind = LINE_BAD;
		*end = '\0';
		rstrip(start);
		add_error(l->errs, "%s:%d: expected \"key = value\" or "
		    "\"[section]\", got \"%s\"", l->file, l->lineno, start);
		return;
	}
	l->kind = LINE_KEY;
	for (p = end; p > start && isspace((unsigned char)p[-1]); p--)
		;
	free(l->name);
	l->name = p > start ? dupn(start, (size_t)(p - start)) : NULL;
	/* without a name, "missing key name" is the error to give */
	if ((l->cut = l->name != NULL && quoted_comment(end + 1)))
		load_cut_error(l);
}

/* inih's fgets: one line per call, counted, checked, never cut. */
static char *
load_reader(char *str, int num, void *stream)
{
	struct load *l = stream;
	const char *p, *nl;
	size_t n;

	if (l->pos >= l->len || num < 2)
		return NULL;
	p = l->buf + l->pos;
	nl = memchr(p, '\n', l->len - l->pos);
	n = nl != NULL ? (size_t)(nl - p) : l->len - l->pos;
	l->pos += n + (nl != NULL);
	l->lineno++;
	if (l->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
		p += 3;		/* a UTF-8 byte order mark */
		n -= 3;
	}
	l->kind = LINE_SKIP;
	if (memchr(p, '\0', n) != NULL) {
		add_error(l->errs, "%s:%d: NUL byte in line", l->file,
		    l->lineno);
		n = 0;
	} else if (n + 2 > (size_t)num) {
		/* inih would cut it and take the rest for the next line;
		 * an empty line keeps the following numbers right */
		add_error(l->errs, "%s:%d: line too long (%zu characters, at "
		    "most %d)", l->file, l->lineno, n, num - 2);
		n = 0;
	} else {
		memcpy(str, p, n);
		str[n] = '\0';
		load_classify(l, str);
		memcpy(str, p, n);	/* classify may have cut it */
	}
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

static int
load_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct load *l = user;
	char *v, *joined;

	if (l->kind == LINE_CONT && l->pend) {
		/* Some inih versions keep the comment on continuation
		 * lines: cut it as on the first line. */
		v = xstrdup(value);
		*find_comment(v, NULL) = '\0';
		rstrip(v);
		if (*v != '\0') {
			joined = *l->pend_value ? xprintf("%s %s",
			    l->pend_value, v) : xstrdup(v);
			free(l->pend_value);
			l->pend_value = joined;
		}
		free(v);
		l->pend_bad |= l->cut;
		return 1;
	}
	load_flush(l);
	l->pend = true;
	l->pend_bad = l->cut;
	l->pend_line = l->lineno;
	l->pend_section = xstrdup(l->kind == LINE_KEY ? l->section : section);
	l->pend_name = xstrdup(l->kind == LINE_KEY && l->name ? l->name : name);
	l->pend_value = xstrdup(value);
	return 1;
}

int
config_load(struct config *c, const char *path, struct errlist *errs)
{
	struct load l;
	char *buf = NULL, err[256];
	size_t len = 0, n;
	size_t nerr = errs->n;
	FILE *f;
	int r, saved;

	if ((f = fopen(path, "re")) == NULL) {
		add_error(errs, "%s: cannot open: %s", path, strerror(errno));
		return EX_NOINPUT_;
	}
	/* Sized from the file, grown if it grows, never past the limit. */
	struct stat st;
	size_t cap = fstat(fileno(f), &st) == 0 && st.st_size > 0 &&
	    st.st_size <= CONFIG_FILE_MAX ? (size_t)st.st_size + 1 : 4096;

	buf = xmalloc(cap);
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap && cap <= CONFIG_FILE_MAX) {
			cap = cap * 2 > CONFIG_FILE_MAX + 1 ?
			    CONFIG_FILE_MAX + 1 : cap * 2;
			buf = xrealloc(buf, cap);
		}
	}
	saved = errno;
	if (ferror(f) || len > CONFIG_FILE_MAX) {
		add_error(errs, "%s: cannot read: %s", path, ferror(f) ?
		    strerror(saved) : "larger than 1 MiB");
		fclose(f);
		free(buf);
		return EX_NOINPUT_;
	}
	fclose(f);

	free(c->path);
	if ((c->path = path_absolute(path, err, sizeof(err))) == NULL)
		c->path = xstrdup(path);

	memset(&l, 0, sizeof(l));
	l.c = c;
	l.errs = errs;
	l.file = path;
	l.buf = buf;
	l.len = len;
	l.section = xstrdup("");
	l.first = xcalloc(key_count(), sizeof(*l.first));
	r = ini_parse_stream(load_reader, &l, load_handler, &l);
	load_flush(&l);
	if (r != 0 && errs->n == nerr)	/* inih saw what we did not */
		add_error(errs, "%s:%d: syntax error", path, r);
	free(l.section);
	free(l.name);
	free(l.first);
	free(buf);
	return errs->n > nerr ? EX_CONFIG_ : 0;
}

