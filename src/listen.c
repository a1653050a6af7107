#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stddef.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "util.h"

static int
open_error(char *err, size_t len, const struct address *a, int e)
{
	snprintf(err, len, "listen %s: %s", a->text, strerror(e));
	if (e == EADDRINUSE)
		return EX_TEMPFAIL_;
	return EX_OSERR_;
}

/* Does anyone answer at a's path? 0 (someone does), or the errno of a
 * connect: ECONNREFUSED is a stale socket file. Non-blocking: a full
 * backlog (EAGAIN) is someone listening, not a wait. A socket of the other
 * type answers EPROTOTYPE: ask again with that type. */
static int
unix_probe(const struct address *a)
{
	int types[2] = { a->type, a->type == SOCK_DGRAM ? SOCK_STREAM :
	    SOCK_DGRAM };
	int fd, r = 0;

	for (int i = 0; i < 2; i++) {
		fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
		if (fd == -1)
			return errno;
		r = connect(fd, (const struct sockaddr *)&a->sa, a->salen);
		r = r == -1 ? errno : 0;
		close(fd);
		if (r != EPROTOTYPE)
			break;
	}
	return r;
}

/*
 * Make way for a UNIX socket at path: 0 when nothing is there, or when a
 * stale socket file was (nobody answers on it, and it is ours or
 * socket_owner's: never a file of another user); else an exit code with
 * err filled.
 */
static int
unix_clear_path(const struct address *a, const char *path, uid_t owner,
    char *err, size_t len)
{
	struct stat st;
	int r;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, len, "listen %s: %s", a->text, strerror(errno));
		return EX_CANTCREAT_;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, len, "listen %s: %s exists and is not a socket; "
		    "not replacing it", a->text, path);
		return EX_CANTCREAT_;
	}
	if (st.st_uid != geteuid() && st.st_uid != owner) {
		snprintf(err, len, "listen %s: %s is a socket of uid %ld; "
		    "not replacing it", a->text, path, (long)st.st_uid);
		return EX_CANTCREAT_;
	}
	/* Replace it only if nobody answers on it. */
	r = unix_probe(a);
	if (r != ECONNREFUSED && r != ENOENT) {
		snprintf(err, len, "listen %s: Address already in use (%s)",
		    a->text, r == 0 || r == EAGAIN ? "something answers on it" :
		    strerror(r));
		return EX_TEMPFAIL_;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, len, "listen %s: removing the stale socket: %s",
		    a->text, strerror(errno));
		return EX_CANTCREAT_;
	}
	return 0;
}

/*
 * Bound at its configured path, so that getsockname() in a worker names
 * it (servers match inherited sockets by that name). No client connects
 * before listen(), and with socket_mode the file is created with no
 * permission at all and given its mode and owner before that: nobody ever
 * sees looser permissions (a datagram socket has no listen(): the mode
 * alone keeps senders out until then).
 */
static int
listen_unix(struct listener *l, const struct address *a, int backlog,
    int mode, uid_t uid, gid_t gid, char *err, size_t len)
{
	const char *path = ((const struct sockaddr_un *)&a->sa)->sun_path;
	struct stat st, now;
	mode_t old = 0;
	bool made;
	int fd, r;

	if ((r = unix_clear_path(a, path, uid, err, len)) != 0)
		return r;
	fd = socket(AF_UNIX, a->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return open_error(err, len, a, errno);
	if (mode >= 0)
		old = umask(0777);
	r = bind(fd, (const struct sockaddr *)&a->sa, a->salen);
	if (mode >= 0)
		umask(old);
	if (r == -1) {
		r = errno;
		close(fd);
		snprintf(err, len, "listen %s: %s", a->text, strerror(r));
		return r == EADDRINUSE ? EX_TEMPFAIL_ : EX_CANTCREAT_;
	}
	/* Mode and owner of the file just created, then listen(): until
	 * then a connect is refused, whatever the permissions. */
	made = lstat(path, &st) == 0;
	if (!made)
		r = errno;
	else if (!S_ISSOCK(st.st_mode))
		r = EEXIST;	/* replaced under us */
	else if ((mode >= 0 && chmod(path, mode) == -1) ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    lchown(path, uid, gid) == -1) ||
	    (a->type == SOCK_STREAM && listen(fd, backlog) == -1))
		r = errno;
	if (r != 0) {
		if (made && lstat(path, &now) == 0 && now.st_dev == st.st_dev &&
		    now.st_ino == st.st_ino)
			unlink(path);
		close(fd);
		snprintf(err, len, "listen %s: %s", a->text, strerror(r));
		return EX_CANTCREAT_;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

int
listen_open(struct listener *l, const struct address *a, int backlog,
    int mode, uid_t uid, gid_t gid, char *err, size_t len)
{
	int fd, one = 1;

	memset(l, 0, sizeof(*l));
	l->addr = *a;
	l->fd = -1;
	if (a->family == AF_UNIX)
		return listen_unix(l, a, backlog, mode, uid, gid, err, len);

	fd = socket(a->family, a->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return open_error(err, len, a, errno);
	/* SO_REUSEADDR lets a restarted fugue bind past TIME_WAIT; UDP has
	 * none, and there it would let a second fugue bind the same port.
	 * Never SO_REUSEPORT: closing one of a group resets its queue. */
	if ((a->type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET,
	    SO_REUSEADDR, &one, sizeof(one)) == -1) ||
	    (a->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &one, sizeof(one)) == -1) ||
	    bind(fd, (const struct sockaddr *)&a->sa, a->salen) == -1 ||
	    (a->type == SOCK_STREAM && listen(fd, backlog) == -1)) {
		int e = errno;

		close(fd);
		return open_error(err, len, a, e);
	}
	l->fd = fd;
	return 0;
}


static int
check_unix(const struct address *a, char *err, size_t len)
{
	const char *path = ((const struct sockaddr_un *)&a->sa)->sun_path;
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (S_ISSOCK(st.st_mode))
			return 0;	/* stale, or ours: a start finds out */
		snprintf(err, len, "listen %s: %s exists and is not a socket; "
		    "not replacing it", a->text, path);
		return EX_CANTCREAT_;
	}
	if (errno == ENOENT && path_dir_writable(path) == 0)
		return 0;
	snprintf(err, len, "listen %s: %s", a->text, strerror(errno));
	return EX_CANTCREAT_;
}

/* Bound on port 0 with the options of listen_open: the address is ours,
 * the family usable, and no port is taken. */
static int
check_inet(const struct address *a, char *err, size_t len)
{
	struct sockaddr_storage sa = a->sa;
	int fd, one = 1, r = 0;

	if (a->family == AF_INET)
		((struct sockaddr_in *)&sa)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&sa)->sin6_port = 0;
	if ((fd = socket(a->family, a->type | SOCK_CLOEXEC, 0)) == -1)
		return open_error(err, len, a, errno);
	if ((a->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (const struct sockaddr *)&sa, a->salen) == -1)
		r = open_error(err, len, a, errno);
	close(fd);
	return r;
}

int
listen_check(const struct address *a, char *err, size_t len)
{
	if (a->family == AF_UNIX)
		return check_unix(a, err, len);
	return check_inet(a, err, len);
}

void
listen_close(struct listener *l, bool unlink_file)
{
	struct stat st;

	if (l->fd == -1)
		return;
	if (unlink_file && l->addr.family == AF_UNIX) {
		const char *path = ((struct sockaddr_un *)&l->addr.sa)->sun_path;

		if (lstat(path, &st) == 0 && st.st_dev == l->dev &&
		    st.st_ino == l->ino)
			unlink(path);
	}
	close(l->fd);
	l->fd = -1;
}

void
listen_fdname(const struct address *a, char *buf, size_t len)
{
	size_t i;

	/* systemd's names are printable ASCII without ':' (its fd store
	 * refuses others); keep the rest readable. */
	snprintf(buf, len, "%s", a->text);
	for (i = 0; buf[i]; i++)
		if (buf[i] == ':' || (unsigned char)buf[i] < 0x20 ||
		    (unsigned char)buf[i] > 0x7e)
			buf[i] = '_';
}

int
listen_describe(int fd, struct address *a)
{
	char host[NI_MAXHOST];
	int type, listening;
	socklen_t len = sizeof(type);

	memset(a, 0, sizeof(*a));
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM))
		return -1;
	len = sizeof(listening);
	if (type == SOCK_STREAM && (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN,
	    &listening, &len) == -1 || !listening))
		return -1;
	a->type = type;
	a->salen = sizeof(a->sa);
	if (getsockname(fd, (struct sockaddr *)&a->sa, &a->salen) == -1)
		return -1;
	a->family = a->sa.ss_family;
	switch (a->family) {
	case AF_UNIX: {
		const struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;
		int n = (int)(a->salen - offsetof(struct sockaddr_un, sun_path));

		if (a->salen <= offsetof(struct sockaddr_un, sun_path) ||
		    sun->sun_path[0] == '\0')
			return -1;	/* unnamed or abstract */
		snprintf(a->text, sizeof(a->text), "%s:%.*s", type ==
		    SOCK_DGRAM ? "unixgram" : "unix", n, sun->sun_path);
		return 0;
	}
	case AF_INET:
	case AF_INET6: {
		unsigned port = ntohs(a->family == AF_INET ?
		    ((struct sockaddr_in *)&a->sa)->sin_port :
		    ((struct sockaddr_in6 *)&a->sa)->sin6_port);

		if (port == 0 || getnameinfo((struct sockaddr *)&a->sa,
		    a->salen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
			return -1;	/* an unbound datagram socket */
		snprintf(a->text, sizeof(a->text), a->family == AF_INET6 ?
		    "%s[%s]:%u" : "%s%s:%u", type == SOCK_DGRAM ? "udp:" : "",
		    host, port);
		return 0;
	}
	}
	return -1;
}
