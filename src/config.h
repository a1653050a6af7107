/* The configuration: INI file (inih) and command-line overrides into a
 * struct config, every key validated, every error one line with its place. */
#ifndef FUGUE_CONFIG_H
#define FUGUE_CONFIG_H

#include <sys/socket.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum log_level { LVL_ERROR, LVL_WARN, LVL_INFO, LVL_DEBUG };
enum subreaper_mode { SUBREAPER_AUTO, SUBREAPER_NO, SUBREAPER_YES };
/* Who gets a worker's stop signal and its SIGKILL (systemd's KillMode=):
 * mixed: the stop signal to the worker process, SIGKILL to its group;
 * group: both to the group; process: both to the process alone. */
enum kill_mode { KILL_MIXED, KILL_GROUP, KILL_PROCESS };
/* The reload hooks of [master], in this order: exec_before_reload,
 * exec_after_reload, exec_reload_failed. */
enum hook_kind { HOOK_BEFORE, HOOK_AFTER, HOOK_FAILED };
#define HOOK_N	3

#define ADDRESS_TEXT_MAX	160
#define CONFIG_LISTEN_MAX	256	/* addresses: what LISTEN_FDS passes */

/* One listening address: "127.0.0.1:8080", "[::1]:8080", ":8080",
 * "unix:/run/app.sock"; datagrams: "udp:127.0.0.1:5353",
 * "unixgram:/run/app.sock". */
struct address {
	int			family;		/* AF_INET, AF_INET6, AF_UNIX */
	int			type;		/* SOCK_STREAM, SOCK_DGRAM */
	char			text[ADDRESS_TEXT_MAX];	/* canonical form */
	struct sockaddr_storage	sa;
	socklen_t		salen;
};

struct config {
	char		*path;		/* absolute path of the file, or NULL */

	/* [master] */
	char		*pid_file;
	char		*log_file;
	char		*master_log_file;
	int		 log_level;	/* enum log_level, default LVL_INFO */
	char		*control_socket;
	char		*metrics;	/* the HTTP endpoint's address, canonical */
	struct address	 metrics_addr;
	char		*runtime_dir;	/* NULL: $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, /tmp */
	int		 subreaper;	/* enum subreaper_mode, default AUTO */
	struct hookcmd {
		char		*text;	/* as written, NULL: none */
		struct strvec	 argv;	/* split as command is */
	}		 hook[HOOK_N];	/* by enum hook_kind */
	int64_t		 hook_timeout_ms;	/* default 30 s */

	/* [listen] */
	struct address	*listen;
	size_t		 nlisten;
	int		 backlog;	/* default 1024, 1..65535 */
	int		 socket_mode;	/* -1: unset (umask applies), else 0..07777 */
	char		*socket_owner;	/* as written, NULL if unset */
	uid_t		 socket_uid;	/* (uid_t)-1: keep */
	gid_t		 socket_gid;	/* (gid_t)-1: keep */

	/* [worker] */
	char		*command;	/* as written (continuations joined) */
	struct strvec	 argv;		/* command split into words */
	unsigned	 count;		/* default 1, 0..10000 */
	unsigned	 max_surge;	/* new workers beyond count in a reload */
	bool		 blocking;	/* workers start with blocking listeners */
	int64_t		 max_lifetime_ms;	/* recycle older workers; 0 off */
	int64_t		 max_lifetime_jitter_ms;	/* plus a random share */
	uint64_t	 max_memory;	/* recycle one whose PSS is above; 0 off */
	int64_t		 memory_interval_ms;	/* PSS read this often */
	bool		 max_surge_pct;	/* max_surge is a percentage of count */
	char		*user;		/* NULL: workers keep fugue's credentials */
	char		*group;
	uid_t		 uid;		/* resolved from user */
	gid_t		 gid;		/* group, or user's primary group */
	gid_t		*groups;	/* user's supplementary groups (with gid) */
	int		 ngroups;
	char		*user_home;	/* for HOME= when user is set */
	char		*working_dir;	/* NULL: fugue's cwd */
	int		 umask;		/* -1: inherit fugue's */
	struct strvec	 env;		/* "NAME=value" lines */
	bool		 clear_env;
	int		 stop_signal;	/* default SIGTERM */
	int		 kill_mode;	/* enum kill_mode, default KILL_MIXED */
	int64_t		 kill_timeout_ms;	/* default 30 s */
	int64_t		 stop_delay_ms;	/* TERM, QUIT: serve on this long
					 * (lame duck) before draining; 0 */
	bool		 ready_notify;	/* ready = notify or fd: sd_notify lines */
	bool		 ready_pipe;	/* ready = fd: on a pipe, not a socket */
	int64_t		 ready_ms;	/* ready = <duration>, default 1 s */
	int64_t		 ready_timeout_ms;	/* default 60 s */
	int64_t		 ready_hold_ms;	/* a reload's new workers ready and
					 * alive this long; default 1 s */
	int64_t		 watchdog_ms;	/* default 0 (off) */
	int		 master_death_signal;	/* default SIGTERM */
	int64_t		 restart_delay_max_ms;	/* default 30 s */
	bool		 log_raw;

	/* Where each key was set ("app.conf:12", "--log-file"), by key, and
	 * each address: what the checks after parsing name. */
	char		**origin;
	struct strvec	 listen_origin;
	bool		 listen_full;	/* past CONFIG_LISTEN_MAX: said once */
};

/* Defaults for every key. */
void	config_init(struct config *);
void	config_free(struct config *);

/*
 * Read the INI file at path into c (on top of what c holds). Every error
 * found is appended to errs as one line ("app.conf:12: [worker] count:
 * expected an integer from 0 to 10000, got \"four\""). Returns 0, 66 when the
 * file cannot be opened or read, or 78 when anything in it is invalid.
 * Repeatable keys (address, env) append.
 */
int	config_load(struct config *c, const char *path, struct errlist *errs);

/*
 * Set one key as if read from a file; where names the origin for errors
 * (e.g. "--kill-timeout" or "app.conf:12"). Returns 0, or 78 with the error
 * appended. Repeatable keys append.
 */
int	config_set(struct config *c, const char *section, const char *key,
	    const char *value, const char *where, struct errlist *errs);

/* Which section a key belongs to, for the long options; NULL if none. */
const char *config_key_section(const char *key);

/* Where key (or address i) was set, for messages: "app.conf:12",
 * "--log-file"; else the file, or "command line". */
const char *config_origin(const struct config *c, const char *key);
const char *config_listen_origin(const struct config *c, size_t i);
/* Say where key was set when it was not set through config_set. */
void	config_set_origin(struct config *c, const char *key, const char *where);

/* Empty a repeatable key (a command-line --listen replaces the file's). */
void	config_reset_key(struct config *c, const char *key);

/*
 * Checks across keys, after everything is set: a command is given, at least
 * one address unless count is 0 ... , user/group exist, -d wants a log_file,
 * no two TCP addresses exclude each other (0.0.0.0:80 and 127.0.0.1:80).
 * Returns 0 or 78 with the errors appended.
 */
int	config_validate(struct config *c, bool daemonize, struct errlist *errs);

/*
 * What the start would find short of binding, checked against this machine
 * (cfgcheck.c): the log files, pid file and sockets can be created there,
 * each address is this host's, the command can be run, working_dir is a
 * directory the workers can enter. Every problem is appended to errs as one
 * line ("app.conf:12: [worker] working_dir: ..."). Returns 0, or the exit
 * code the start would fail with (the first, in the order of the start).
 * Without start (a reload), what a reload does not open again is left out:
 * the keys that change only at a restart, and the log files.
 */
int	config_check_host(const struct config *c, bool start,
	    struct errlist *errs);

/* Value parsers: 0 on success, -1 on a bad value (nothing changed). */
int	parse_duration(const char *s, int64_t *ms);	/* 250ms 10s 5m 1h, bare = s */
int	parse_size(const char *s, uint64_t *bytes);	/* 512M 2G 4096, KiB... */
void	format_size(uint64_t bytes, char *buf, size_t len);	/* "512M" */
int	parse_signal(const char *s, int *sig);		/* TERM, SIGTERM, 15 */
const char *signal_name(int sig);			/* "TERM"; "?" if unknown */
int	parse_mode(const char *s, int *mode);		/* octal, 0..07777 */
int	parse_bool(const char *s, bool *b);		/* yes/no true/false on/off 1/0 */
int	parse_uint(const char *s, unsigned long lo, unsigned long hi,
	    unsigned long *out);

/* "host:port", "[v6]:port", ":port", "unix:/path", and for datagram
 * sockets "udp:" before any of the first three, "unixgram:/path"; err gets
 * the reason. */
int	parse_address(const char *s, struct address *a, char *err, size_t len);
/* The path of a UNIX socket address (either type). */
const char *address_path(const struct address *a);
/* [::ffff:a.b.c.d]:port: no IPv6-only socket can bind it. */
bool	address_v4_mapped(const struct address *a);
/* A wildcard and an address of the same family, type and port, or two
 * UNIX sockets of either type at one path: binding one fails while the
 * other is bound. (Equal addresses are duplicates.) */
bool	address_overlap(const struct address *a, const struct address *b);

/* Shell-like word splitting without a shell: '...' literal, "..." with \\
 * \" \$ \` escapes, a backslash outside quotes escapes the next character.
 * Appends the words to out. -1 with err on unbalanced quotes or no word. */
int	split_command(const char *s, struct strvec *out, char *err, size_t len);

/* p made absolute against the current directory, "." and "//" dropped;
 * NULL with err when there is no current directory. */
char	*path_absolute(const char *p, char *err, size_t len);

/* "exec_before_reload", "exec_after_reload", "exec_reload_failed". */
const char *hook_name(enum hook_kind);

/* Format a duration back ("1.5s", "250ms", "30s"), for logs. */
void	format_duration(int64_t ms, char *buf, size_t len);

/* The most new workers a reload of count workers runs beyond count (at
 * least 1). */
unsigned	config_surge(const struct config *c, unsigned count);

#endif
