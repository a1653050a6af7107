/*
 * Sockets handed over at start. systemd passes a socket unit's sockets
 * first, then what its fd store kept, each named in LISTEN_FDNAMES: a
 * socket unit's by its FileDescriptorName= (the unit's name by default),
 * the fd store's by the FDNAME= fugue gave it (listen_fdname).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activate.h"
#include "listen.h"
#include "logging.h"
#include "notify.h"

/* The i-th name of a colon-separated list, in buf; "" if there is none. */
static void
nth_name(const char *names, long i, char *buf, size_t len)
{
	const char *p = names, *end;

	buf[0] = '\0';
	for (; p != NULL && i > 0; i--)
		if ((p = strchr(p, ':')) != NULL)
			p++;
	if (p == NULL)
		return;
	end = strchr(p, ':');
	snprintf(buf, len, "%.*s", (int)(end ? end - p : (long)strlen(p)), p);
}

static bool
held(struct lsock_list *all, const char *text)
{
	struct lsock *s;

	TAILQ_FOREACH(s, all, link)
		if (strcmp(s->l.addr.text, text) == 0)
			return true;
	return false;
}

int
activate_listeners(const struct config *c, struct lsock_list *all, char *err,
    size_t len)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *names, name[256], ours[ADDRESS_TEXT_MAX];
	int r = 0;
	long n;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid())
		return 0;
	n = strtol(fds, NULL, 10);
	names = xstrdup(getenv("LISTEN_FDNAMES") ? getenv("LISTEN_FDNAMES") :
	    "");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n > ACTIVATE_MAX) {
		snprintf(err, len, "LISTEN_FDS=%ld: more sockets than fugue "
		    "takes (%d)", n, ACTIVATE_MAX);
		free(names);
		return EX_CONFIG_;
	}
	for (int fd = 3; fd < 3 + n && r == 0; fd++) {
		struct address a;
		bool stored;
		size_t i;

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (listen_describe(fd, &a) == -1) {
			snprintf(err, len, "LISTEN_FDS: fd %d is neither a "
			    "listening stream socket nor a bound datagram "
			    "socket", fd);
			r = EX_CONFIG_;
			break;
		}
		nth_name(names, fd - 3, name, sizeof(name));
		listen_fdname(&a, ours, sizeof(ours));
		stored = strcmp(name, ours) == 0;
		for (i = 0; i < c->nlisten; i++)
			if (strcmp(c->listen[i].text, a.text) == 0)
				break;
		if (i == c->nlisten && stored) {
			/* The configuration dropped it while fugue was down. */
			log_warnx("LISTEN_FDS: fd %d (%s) from systemd's fd "
			    "store matches no [listen] address: closed and "
			    "removed from the store", fd, a.text);
			notify_systemd("FDSTOREREMOVE=1\nFDNAME=%s", ours);
			close(fd);
			continue;
		}
		if (i == c->nlisten) {
			snprintf(err, len, "LISTEN_FDS: fd %d (%s) matches no "
			    "[listen] address", fd, a.text);
			r = EX_CONFIG_;
			break;
		}
		if (held(all, a.text)) {
			/* A socket unit's, and its copy in the fd store. */
			close(fd);
			continue;
		}
		/* dev/ino 0: never unlinked by fugue */
		lsock_adopt(all, fd, &a, 0, 0);
		log_info("listening on %s (%s)", a.text, stored ?
		    "systemd's fd store" : "socket activation");
	}
	free(names);
	return r;
}
