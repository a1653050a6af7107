#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "util.h"

static bool
field_is(const char *line, size_t n, const char *what)
{
	size_t w = strlen(what);

	return n == w && memcmp(line, what, w) == 0;
}

int
notify_parse(const char *buf, size_t len, struct notify_msg *msg)
{
	const char *p = buf, *end = buf + len, *nl;
	bool any = false;

	memset(msg, 0, sizeof(*msg));
	while (p < end) {
		nl = memchr(p, '\n', end - p);
		size_t n = (nl ? nl : end) - p;

		if (field_is(p, n, "READY=1"))
			msg->ready = any = true;
		else if (field_is(p, n, "WATCHDOG=1"))
			msg->watchdog = any = true;
		else if (field_is(p, n, "STOPPING=1"))
			msg->stopping = any = true;
		else if (field_is(p, n, "RELOADING=1"))
			msg->reloading = any = true;
		else if (n >= 7 && memcmp(p, "STATUS=", 7) == 0) {
			size_t s = n - 7;

			if (s >= sizeof(msg->status))
				s = sizeof(msg->status) - 1;
			memcpy(msg->status, p + 7, s);
			/* Keep it printable: it goes into log lines. */
			for (size_t i = 0; i < s; i++)
				if ((unsigned char)msg->status[i] < 0x20 ||
				    msg->status[i] == 0x7f)
					msg->status[i] = ' ';
			msg->status[s] = '\0';
			any = true;
		} else if (memchr(p, '=', n) != NULL)
			any = true;	/* another assignment: ignored */
		p += n + 1;
	}
	return any ? 0 : -1;
}

int
notify_open(const char *path, uid_t uid, gid_t gid, char *err, size_t len)
{
	struct sockaddr_un sa;
	int fd, one = 1;
	mode_t old;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, len, "notify socket %s: path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	/* The copy from here on: with -fsanitize=undefined, gcc's null
	 * checks on path make it warn that the messages below may print a
	 * NULL (-Wformat-truncation); sa.sun_path never is. */
	path = sa.sun_path;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		snprintf(err, len, "notify socket: %s", strerror(errno));
		return -1;
	}
	/* Ours by name (fugue-<pid>.notify): a stale socket is replaced,
	 * anything else is left alone. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, len, "notify socket %s: exists and is not "
			    "a socket", path);
			close(fd);
			return -1;
		}
		unlink(path);
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == -1 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    chown(path, uid, gid) == -1)) {
		snprintf(err, len, "notify socket %s: %s", path,
		    strerror(errno));
		umask(old);
		close(fd);
		unlink(path);
		return -1;
	}
	umask(old);
	return fd;
}

int
notify_recv(int fd, struct notify_msg *msg)
{
	char buf[NOTIFY_DATAGRAM_MAX];
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(struct ucred)) +
				    CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh;
	struct cmsghdr *c;
	pid_t pid = 0;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
			struct ucred cr;

			memcpy(&cr, CMSG_DATA(c), sizeof(cr));
			pid = cr.pid;
		} else if (c->cmsg_type == SCM_RIGHTS) {
			/* Nobody passes us fds: close what came. */
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *fds = (int *)CMSG_DATA(c);

			for (size_t i = 0; i < nfd; i++)
				close(fds[i]);
		}
	}
	if ((size_t)n > sizeof(buf) || (mh.msg_flags & MSG_CTRUNC) ||
	    notify_parse(buf, (size_t)n, msg) == -1)
		memset(msg, 0, sizeof(*msg));	/* nothing is honoured */
	msg->pid = pid;
	return 1;
}

void
notify_systemd_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_systemd("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000);
}

bool
notify_systemd_enabled(void)
{
	const char *p = getenv("NOTIFY_SOCKET");

	return p && (*p == '/' || *p == '@');
}

/* One datagram to $NOTIFY_SOCKET, with fd attached unless -1. Returns 0,
 * or -1 (no NOTIFY_SOCKET, or systemd went away). */
static int
systemd_send(const char *buf, size_t n, int fd)
{
	const char *path = getenv("NOTIFY_SOCKET");
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct sockaddr_un sa;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int s, r;

	if (!notify_systemd_enabled() || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract namespace */
	mh.msg_name = &sa;
	mh.msg_namelen = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if (fd != -1) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.hdr), &fd, sizeof(int));
	}
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	r = sendmsg(s, &mh, MSG_NOSIGNAL) == -1 ? -1 : 0;
	close(s);
	return r;
}

void
notify_systemd(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (!notify_systemd_enabled())
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	/* systemd went away: nothing to do about it. */
	(void)systemd_send(buf, (size_t)n, -1);
}

int
notify_systemd_store(int fd, const char *name)
{
	char buf[320];
	int n;

	/* FDPOLL=0: systemd would drop a socket on EPOLLERR, which a UDP
	 * socket can report for an ICMP error; fugue removes its own. */
	n = snprintf(buf, sizeof(buf), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0",
	    name);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return systemd_send(buf, (size_t)n, fd);
}

/*
 * The workers' notify sockets live in a directory of their own, made with
 * an unpredictable name (mkdtemp: nobody can take the name first) and mode
 * 0711: a worker reaches its socket by its full path but cannot list or add
 * anything; each socket is 0600 and belongs to its generation's user.
 */
int
notify_dir_make(const char *base, pid_t pid, char **dir, char *err,
    size_t len)
{
	char *p = xprintf("%s/fugue-%ld.XXXXXX", base, (long)pid);

	if (mkdtemp(p) == NULL || chmod(p, 0711) == -1) {
		snprintf(err, len, "notify directory in %s: %s", base,
		    strerror(errno));
		free(p);
		return -1;
	}
	*dir = p;
	return 0;
}

/* Remove dir and the sockets in it (fugue's own: flat, sockets only). */
void
notify_dir_remove(const char *dir)
{
	struct dirent *e;
	DIR *d;

	if (dir == NULL || (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

/* What a fugue killed with SIGKILL left in base: directories (and, from
 * older versions, sockets) named after a pid that no longer runs, owned
 * by us. */
void
notify_dir_sweep(const char *base)
{
	struct dirent *e;
	struct stat st;
	char *path;
	long pid;
	DIR *d;

	if ((d = opendir(base)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (sscanf(e->d_name, "fugue-%ld.", &pid) != 1 || pid <= 0 ||
		    (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1 || st.st_uid != geteuid())
			continue;
		path = xprintf("%s/%s", base, e->d_name);
		if (S_ISDIR(st.st_mode))
			notify_dir_remove(path);
		else if (S_ISSOCK(st.st_mode) &&
		    strcmp(strchr(e->d_name, '.'), ".notify") == 0)
			unlink(path);
		free(path);
	}
	closedir(d);
}
