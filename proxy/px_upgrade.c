/*
 * Socket handoff: systemd socket activation and the exec upgrade.
 *
 * Inherited listeners follow systemd's protocol (sd_listen_fds(3)): when
 * LISTEN_PID is this process and LISTEN_FDS >= 1, descriptor 3 is the Kafka
 * listener and, with LISTEN_FDS >= 2 and an admin_listen key, descriptor 4
 * the admin listener, whatever "listen" / "admin_listen" say; "systemd" in
 * either key makes the socket mandatory.
 *
 * SIGUSR2 upgrades: this process forks and execs its own command line
 * (argv[0] as it is on disk now, so a new binary installed at that path)
 * with the listening sockets as descriptors 3 and 4 and LISTEN_FDS /
 * LISTEN_PID set for it, plus KZPROXY_UPGRADE_FD, a pipe on which the new
 * process writes one byte once it is ready. Both accept meanwhile (one
 * socket, two processes: no connection is refused); on the byte this one
 * closes its copies of the listeners and drains in upgrade mode
 * (px_drain.c). If the new process exits or is not ready within a minute,
 * this one goes on serving.
 */
#include "config.h"

#include "proxy/px_proxy.h"

#include "common/kz_log.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PX_UPGRADE_READY_MS 60000

struct px_upgrade {
    pid_t pid;
    int rfd;
    struct event *ev;
};

/* What the file said for each listener, and what it became. */
static px_listen_addr px_file_spec[2], px_running[2];
static int px_taken[2];
static int px_ready_fd = -1;

int px_listen_fds_take(px_config *cfg, char *errstr, size_t n)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS"), *up = getenv("KZPROXY_UPGRADE_FD");
    long nfds = 0;
    if (pid && fds && strtol(pid, NULL, 10) == (long)getpid())
        nfds = strtol(fds, NULL, 10);
    if (nfds < 0 || nfds > 64)
        nfds = 0;
    if (up && nfds > 0) {
        long fd = strtol(up, NULL, 10);
        if (fd > 2 && fd < INT_MAX) {
            px_ready_fd = (int)fd;
            fcntl(px_ready_fd, F_SETFD, FD_CLOEXEC);
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    unsetenv("KZPROXY_UPGRADE_FD");
    px_listen_addr *la[2] = {&cfg->listen, &cfg->admin_listen};
    static const char *const keys[2] = {"listen", "admin_listen"};
    int taken = 0;
    for (int i = 0; i < 2; i++) {
        if (i < nfds && (i == 0 || cfg->have_admin)) {
            px_file_spec[i] = *la[i];
            la[i]->fd = 3 + i;
            fcntl(3 + i, F_SETFD, FD_CLOEXEC);
            px_running[i] = *la[i];
            px_taken[i] = 1;
            taken = 1;
        } else if (la[i]->fd == PX_LISTEN_SYSTEMD && (i == 0 || cfg->have_admin)) {
            snprintf(errstr, n, "%s: \"systemd\", but no socket was passed for it (LISTEN_FDS=%ld for this "
                     "process; start kzproxy from a .socket unit with ListenStream= lines for the Kafka and "
                     "the admin listener, in that order)", keys[i], nfds);
            return -1;
        }
    }
    if (taken)
        kz_info("listening sockets inherited (LISTEN_FDS=%ld): Kafka on fd 3%s", nfds,
                px_taken[1] ? ", admin on fd 4" : "");
    return taken;
}

px_listen_addr px_listen_as_configured(const px_listen_addr *file, int admin)
{
    const px_listen_addr *f = &px_file_spec[admin ? 1 : 0];
    if (px_taken[admin ? 1 : 0] && file->fd == f->fd && file->port == f->port && strcmp(file->host, f->host) == 0)
        return px_running[admin ? 1 : 0];
    return *file;
}

void px_upgrade_ready(px_proxy *px)
{
    (void)px;
    if (px_ready_fd < 0)
        return;
    ssize_t r = write(px_ready_fd, "R", 1);
    (void)r;
    close(px_ready_fd);
    px_ready_fd = -1;
}

void px_upgrade_free(px_proxy *px)
{
    struct px_upgrade *u = px->upgrade;
    if (u == NULL)
        return;
    if (u->ev)
        event_free(u->ev);
    if (u->rfd >= 0)
        close(u->rfd);
    free(u);
    px->upgrade = NULL;
}

static void px_upgrade_cb(evutil_socket_t fd, short what, void *arg)
{
    px_proxy *px = arg;
    struct px_upgrade *u = px->upgrade;
    char b;
    ssize_t r = (what & EV_READ) ? read(fd, &b, 1) : -1;
    pid_t pid = u->pid;
    if (r == 1) {
        kz_info("upgrade: new process %d is ready; this process (%d) hands over and drains", (int)pid,
                (int)getpid());
        px_upgrade_free(px);
        if (px->admin_handle) { /* the new process answers /healthz and /metrics from now on */
            evhttp_del_accept_socket(px->http, px->admin_handle);
            px->admin_handle = NULL;
        }
        px->draining = 2; /* upgrade mode (px_drain.c) */
        px_drain_start(px, "upgrade");
        return;
    }
    if (r == 0) {
        kz_err("upgrade: new process %d exited before it was ready (its log lines say why); this process "
               "goes on serving", (int)pid);
    } else {
        kz_err("upgrade: new process %d not ready within %d ms; stopping it, this process goes on serving",
               (int)pid, PX_UPGRADE_READY_MS);
        kill(pid, SIGTERM);
    }
    px_upgrade_free(px);
    int st;
    (void)waitpid(pid, &st, WNOHANG);
}

/* "NAME=" followed by the decimal v, into buf (async-signal-safe). */
static void px_put_env_num(char *buf, size_t bufsz, const char *name, long v)
{
    size_t k = 0;
    while (*name && k + 1 < bufsz)
        buf[k++] = *name++;
    char d[24];
    int nd = 0;
    do {
        d[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && nd < (int)sizeof(d));
    while (nd > 0 && k + 1 < bufsz)
        buf[k++] = d[--nd];
    buf[k] = '\0';
}

void px_upgrade_start(px_proxy *px)
{
    if (px->draining || px->upgrade) {
        kz_warn("upgrade (SIGUSR2): ignored, %s", px->draining ? "this process is draining" : "one is in progress");
        return;
    }
    if (px->listener == NULL || px->argv == NULL) {
        kz_warn("upgrade (SIGUSR2): ignored, no listener to hand over");
        return;
    }
    int kfd = evconnlistener_get_fd(px->listener);
    int afd = px->admin_handle ? evhttp_bound_socket_get_fd(px->admin_handle) : -1;
    char exe[PATH_MAX];
    if (strchr(px->argv[0], '/') != NULL) {
        snprintf(exe, sizeof(exe), "%s", px->argv[0]);
    } else {
        ssize_t r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (r <= 0) {
            kz_err("upgrade (SIGUSR2): cannot find this binary's path (%s); start kzproxy with an absolute path",
                   strerror(errno));
            return;
        }
        exe[r] = '\0';
    }
    int p[2];
    if (pipe(p) != 0) {
        kz_err("upgrade (SIGUSR2): pipe: %s", strerror(errno));
        return;
    }
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    /* The environment, without inherited LISTEN_* / KZPROXY_UPGRADE_FD. */
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = calloc(ne + 4, sizeof(char *));
    static char e_fds[32], e_pid[32], e_up[48];
    struct px_upgrade *u = calloc(1, sizeof(*u));
    if (envp == NULL || u == NULL) {
        kz_err("upgrade (SIGUSR2): out of memory");
        free(envp);
        free(u);
        close(p[0]);
        close(p[1]);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "LISTEN_", 7) != 0 && strncmp(environ[i], "KZPROXY_UPGRADE_FD=", 19) != 0)
            envp[k++] = environ[i];
    px_put_env_num(e_fds, sizeof(e_fds), "LISTEN_FDS=", afd >= 0 ? 2 : 1);
    px_put_env_num(e_up, sizeof(e_up), "KZPROXY_UPGRADE_FD=", 5);
    envp[k++] = e_fds;
    envp[k++] = e_up;
    envp[k++] = e_pid; /* filled in by the child */
    envp[k] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: only async-signal-safe calls from here to execve. */
        int hk = fcntl(kfd, F_DUPFD, 10), ha = afd >= 0 ? fcntl(afd, F_DUPFD, 10) : -1;
        int hw = fcntl(p[1], F_DUPFD, 10);
        if (hk < 0 || hw < 0 || (afd >= 0 && ha < 0) || dup2(hk, 3) != 3 || dup2(hw, 5) != 5 ||
            (ha >= 0 ? dup2(ha, 4) != 4 : close(4) != 0 && errno != EBADF))
            _exit(127);
        long maxfd = sysconf(_SC_OPEN_MAX);
        if (maxfd < 0 || maxfd > 65536)
            maxfd = 65536;
        for (int fd = 6; fd < maxfd; fd++)
            close(fd);
        px_put_env_num(e_pid, sizeof(e_pid), "LISTEN_PID=", (long)getpid());
        execve(exe, px->argv, envp);
        _exit(127);
    }
    free(envp);
    close(p[1]);
    if (pid < 0) {
        kz_err("upgrade (SIGUSR2): fork: %s", strerror(errno));
        close(p[0]);
        free(u);
        return;
    }
    u->pid = pid;
    u->rfd = p[0];
    px->upgrade = u;
    struct timeval tv = {PX_UPGRADE_READY_MS / 1000, 0};
    u->ev = event_new(px->base, p[0], EV_READ, px_upgrade_cb, px);
    if (u->ev == NULL || event_add(u->ev, &tv) != 0) {
        kz_err("upgrade (SIGUSR2): out of memory watching process %d; it keeps the sockets too", (int)pid);
        px_upgrade_free(px);
        return;
    }
    px->m.upgrades++;
    kz_info("upgrade (SIGUSR2): started %s as process %d with the listening sockets; draining once it is ready",
            exe, (int)pid);
}
