#define _GNU_SOURCE
#include <sys/socket.h>
#include "warren_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

int warren_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int warren_accept(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}

int warren_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    int flags = fcntl(fds[0], F_GETFL);
    if (flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

/// Puts `from` on `to` for the child; dup2 clears close-on-exec, and a
/// descriptor already in place only needs the flag cleared.
static int place(int from, int to) {
    if (from == to) return fcntl(to, F_SETFD, 0);
    return dup2(from, to) < 0 ? -1 : 0;
}

int warren_spawn(const char *path, char *const argv[], char *const envp[],
                 int stdin_fd, int stdout_fd, int stderr_fd,
                 pid_t parent_pid, unsigned long long nofile_soft, warren_spawned *out) {
    out->pid = -1;
    out->pidfd = -1;
    out->error = 0;
    out->failed_step = NULL;

    // The three descriptors must not sit on 0-2 where another one is placed
    // first; the caller's are its own (pipes, /dev/null) far above 2, but be sure.
    if (stdin_fd < 3 || stdout_fd < 3 || stderr_fd < 3) {
        out->error = EINVAL;
        out->failed_step = "descriptors";
        return -1;
    }

    // Between vfork and exec the child shares this process's memory: no signal
    // handler of the parent may run in it. Block everything here; the child
    // resets every handler to its default before unblocking.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    // Written by the child only before it exits (exec failed); the parent
    // reads it after vfork returns, when the child has exec'd or exited.
    volatile int child_error = 0;
    volatile const char *child_step = NULL;

    pid_t pid = vfork();
    if (pid == 0) {
        // The child. Only async-signal-safe calls from here on.
        // The kernel's own call: glibc's sigaction() refuses the two signals
        // it reserves (32 and 33), and an ignored one stays ignored across exec.
        struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } dfl = { SIG_DFL, 0, NULL, 0 };
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
        }
        if (setpgid(0, 0) != 0) { child_step = "setpgid"; goto fail; }
        if (parent_pid > 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) { child_step = "prctl"; goto fail; }
            if (getppid() != parent_pid) _exit(70);
        }
        if (nofile_soft > 0) {
            // The raw call: after vfork only the kernel's own entry points.
            struct rlimit limit;
            if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &limit) != 0) { child_step = "getrlimit"; goto fail; }
            limit.rlim_cur = nofile_soft < limit.rlim_max ? nofile_soft : limit.rlim_max;
            if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &limit, NULL) != 0) { child_step = "setrlimit"; goto fail; }
        }
        if (place(stdin_fd, 0) != 0 || place(stdout_fd, 1) != 0 || place(stderr_fd, 2) != 0) {
            child_step = "dup2";
            goto fail;
        }
        if (syscall(SYS_close_range, 3, ~0U, 0) != 0) {
            for (int fd = 3; fd < 65536; fd++) close(fd);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        child_step = "execve";
    fail:
        child_error = errno;
        _exit(127);
    }

    int fork_error = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        out->error = fork_error;
        out->failed_step = "vfork";
        return -1;
    }
    if (child_error != 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        out->error = child_error;
        out->failed_step = (const char *)child_step;
        return -1;
    }
    out->pid = pid;
    out->pidfd = warren_pidfd_open(pid);
    if (out->pidfd < 0) {
        // Without a pidfd its end cannot be watched: end it rather than lose it.
        out->error = errno;
        out->failed_step = "pidfd_open";
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        out->pid = -1;
        return -1;
    }
    return 0;
}

int warren_reap(pid_t pid, int *exit_code, int *signal_number) {
    int status = 0;
    pid_t got;
    do {
        got = waitpid(pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return -1;
    if (got == 0) return 0;
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : -1;
    return 1;
}
