#ifndef WARREN_SPAWN_H
#define WARREN_SPAWN_H

#include <sys/types.h>

#ifdef __linux__
#include <sys/epoll.h>
#endif

/// What `warren_spawn` reports: the child's pid and a pidfd for it, or the
/// errno of the step that failed (`failed_step` names it).
typedef struct {
    pid_t pid;
    int pidfd;
    int error;
    const char *failed_step;
} warren_spawned;

/// Starts `path` with `argv` and `envp` (NULL-terminated) in a process group
/// of its own, its stdin, stdout and stderr on the given descriptors, every
/// other descriptor closed and every signal at its default, unblocked. With
/// `parent_pid` > 0 the child asks the kernel for SIGKILL when the thread
/// that spawned it ends (PR_SET_PDEATHSIG) and exits 70 at once if its parent
/// is no longer `parent_pid` (the parent died before the request was made).
/// Call it from a thread that lives as long as the process: the death signal
/// follows the spawning thread, not the process.
/// With `nofile_soft` > 0 the child's soft limit on open files is set to it
/// (never above the hard limit, which is left alone) before exec: warren's own
/// raised limit is not handed on.
/// Returns 0, or -1 with `out->error` and `out->failed_step` set (nothing is
/// left running then).
int warren_spawn(const char *path, char *const argv[], char *const envp[],
                 int stdin_fd, int stdout_fd, int stderr_fd,
                 pid_t parent_pid, unsigned long long nofile_soft, warren_spawned *out);

/// Reaps `pid` if it has ended, without blocking: 1 (and its exit code, or the
/// signal that ended it, -1 for the other), 0 while it runs, -1 on error.
int warren_reap(pid_t pid, int *exit_code, int *signal_number);

/// pipe2(O_CLOEXEC), the read end non-blocking.
int warren_pipe(int fds[2]);

/// accept4(SOCK_CLOEXEC): a connection accepted by warren's listener never
/// reaches a child spawned in between. -1 (errno) when none is waiting.
int warren_accept(int listener);

/// Opens a descriptor for `pid` (pidfd_open), close-on-exec; -1 on error.
int warren_pidfd_open(pid_t pid);

#endif
