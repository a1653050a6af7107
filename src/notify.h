/* The sd_notify protocol both ways: a datagram socket on which workers
 * report READY=1 and WATCHDOG=1 (sender checked with SCM_CREDENTIALS), and
 * the client that tells systemd about fugue itself. */
#ifndef FUGUE_NOTIFY_H
#define FUGUE_NOTIFY_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

#define NOTIFY_DATAGRAM_MAX	4096

struct notify_msg {
	pid_t	pid;		/* the sender, from its credentials; 0 unknown */
	bool	ready;		/* READY=1 */
	bool	watchdog;	/* WATCHDOG=1 */
	bool	stopping;	/* STOPPING=1 */
	bool	reloading;	/* RELOADING=1 */
	char	status[128];	/* STATUS=..., cut */
};

/* Parse one datagram (newline-separated assignments; unknown ones are
 * ignored). Returns 0, or -1 if it is not a notify message at all. */
int	notify_parse(const char *buf, size_t len, struct notify_msg *msg);

/* Bind the workers' notify socket at path (mode 0600, owned by uid/gid
 * unless -1). Returns the fd (non-blocking, close-on-exec) or -1 with err. */
int	notify_open(const char *path, uid_t uid, gid_t gid, char *err,
	    size_t len);
/* A private directory for the workers' sockets, base/fugue-PID.XXXXXX,
 * mode 0711. 0 with *dir (malloc'd), or -1 with err. */
int	notify_dir_make(const char *base, pid_t pid, char **dir, char *err,
	    size_t len);
/* Remove it with its sockets. */
void	notify_dir_remove(const char *dir);
/* Remove what fugues that no longer run left in base. */
void	notify_dir_sweep(const char *base);
/* Receive one datagram: 1 with msg filled, 0 when none is waiting, -1 on
 * error. A datagram without credentials gets pid 0. */
int	notify_recv(int fd, struct notify_msg *msg);

/* Send to systemd's $NOTIFY_SOCKET, if fugue was given one. */
void	notify_systemd(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
bool	notify_systemd_enabled(void);
/* FDSTORE=1 with FDNAME=name (and FDPOLL=0) and fd attached: systemd
 * keeps a copy of fd across a restart (its fd store; a copy it holds
 * already is not added twice). FDSTOREREMOVE=1 goes through notify_systemd. 0, or -1 when it
 * could not be sent. */
int	notify_systemd_store(int fd, const char *name);
/* RELOADING=1 with the MONOTONIC_USEC systemd asks for (Type=notify-reload). */
void	notify_systemd_reloading(void);

#endif
