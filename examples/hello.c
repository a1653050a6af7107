/*
 * examples/hello.c - the smallest useful fugue worker, in C.
 *
 * Run it under fugue (`make run` does this with fugue.conf.example):
 *
 *     make && ./fugue --listen 127.0.0.1:8080 --workers 4 -- examples/hello
 *     curl http://127.0.0.1:8080/      ->  Hello from worker 2 (pid 4321)
 *
 * fugue binds the listening socket once and hands it to every worker as fd 3,
 * with LISTEN_FDS=1 and LISTEN_PID=<the worker's pid> (the systemd
 * socket-activation convention), FUGUE_WORKER_ID=<slot> and friends. To stop
 * or replace a worker, fugue sends it SIGTERM: the worker finishes the request
 * it is serving and exits 0, while the socket stays open in fugue and new
 * connections wait in the kernel's queue for the other workers.
 *
 * If you start the server from a wrapper script, end the script with
 * `exec ./server`: then the server *is* the worker process, so LISTEN_PID
 * matches its pid, and fugue's signals (SIGTERM to drain, the parent-death
 * signal if fugue dies) reach the server instead of a shell.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

static volatile sig_atomic_t stopping;

static void on_sigterm(int sig)
{
	(void)sig;
	stopping = 1;
}

/* fd 3 is ours only if LISTEN_PID names this very process. */
static int inherited_listener(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

	if (!fds || !pid || atoi(fds) < 1 || atol(pid) != (long)getpid()) {
		fprintf(stderr, "hello: no listening socket on fd 3 "
		    "(LISTEN_FDS/LISTEN_PID): run me under fugue\n");
		exit(2);
	}
	return 3;
}

/* Read one request (headers only, up to 8 KiB), answer it, close. */
static void serve(int conn, const char *id)
{
	char req[8192], body[128], resp[256];
	struct timeval tv = { 10, 0 };
	size_t len = 0;
	int n, hlen;
	ssize_t r;

	/* a client that stalls must not hold the worker (and its drain) for ever */
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

	while (len < sizeof req - 1) {
		r = read(conn, req + len, sizeof req - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;			/* client gone, or timed out */
		len += (size_t)r;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;			/* end of the headers */
	}

	n = snprintf(body, sizeof body, "Hello from worker %s (pid %ld)\n", id,
	    (long)getpid());
	hlen = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain\r\nContent-Length: %d\r\n"
	    "Connection: close\r\n\r\n%s", n, body);

	/* write it all, even if the kernel takes it in pieces */
	for (int off = 0; off < hlen; off += (int)r) {
		r = send(conn, resp + off, (size_t)(hlen - off), MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			r = 0;
		else if (r < 0)
			return;
	}
}

int main(void)
{
	const char *id = getenv("FUGUE_WORKER_ID") ? getenv("FUGUE_WORKER_ID") : "?";
	int lfd = inherited_listener();
	sigset_t term, unblocked;
	struct sigaction sa;

	/*
	 * The listener is shared by every worker: the kernel wakes them all
	 * when a connection arrives and only one gets it. So accept without
	 * blocking (a loser just goes back to waiting), as nginx, Node and Go
	 * do. SIGTERM stays blocked except inside ppoll(), so it can only
	 * arrive while we wait - never in the middle of a request.
	 */
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigterm;
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &unblocked);
	printf("worker %s (pid %ld) serving\n", id, (long)getpid());
	fflush(stdout);			/* stdout is a pipe to fugue: flush lines */

	while (!stopping) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int conn;

		if (ppoll(&p, 1, NULL, &unblocked) < 0) {
			if (errno == EINTR)
				continue;	/* SIGTERM: the loop test ends it */
			perror("hello: ppoll");
			return 1;
		}
		conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000);	/* out of fds: do not spin */
			continue;		/* EAGAIN: another worker won it */
		}
		serve(conn, id);
		close(conn);
	}
	printf("worker %s (pid %ld) drained, exiting\n", id, (long)getpid());
	return 0;
}
