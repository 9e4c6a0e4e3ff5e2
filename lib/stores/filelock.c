/*
 * One process per SQLite file. Opening the file releases every claimed
 * delivery (that is how a crashed process's work is taken over), so a second
 * process opening it would take the work of a running one, and deliver it
 * twice. The store therefore holds an advisory lock while it is open: flock on
 * a file beside the database, "PATH.lock", which holds the process id for the
 * message the next opener gets. The kernel drops the lock when the process
 * ends, however it ends, so a crash never leaves the file locked.
 *
 * A sidecar file and not the database itself: SQLite's own locks are fcntl
 * locks on the database, and where flock is emulated with fcntl (NFS) the two
 * would meet.
 */
#include "stores/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The process id written in a lock file, or 0. */
static long holder(int fd)
{
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

int wh__file_lock(const char *path, int *fd_out)
{
  *fd_out = -1;
  size_t n = strlen(path);
  char *lock = malloc(n + sizeof ".lock");
  if (!lock)
    return wh__oom();
  memcpy(lock, path, n);
  memcpy(lock + n, ".lock", sizeof ".lock");
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  int rc = WH_OK;
  if (fd < 0) {
    int e = errno;
    rc = e == EACCES || e == EPERM || e == EROFS
           ? wh__fail(WH_ESTORE, "store sqlite:%s: the file or its folder is read-only; libwebhook needs to write "
                                 "it and %s (%s)", path, lock, strerror(e))
           : wh__fail(WH_ESTORE, "store sqlite:%s: cannot open %s: %s", path, lock, strerror(e));
  } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    long pid = holder(fd);
    if (e != EWOULDBLOCK)
      rc = wh__fail(WH_ESTORE, "store sqlite:%s: cannot lock %s: %s", path, lock, strerror(e));
    else if (pid == (long)getpid())
      rc = wh__fail(WH_ESTORE, "store sqlite:%s: held by this process (another registry has it open); a SQLite "
                               "store is opened once per process", path);
    else if (pid > 0)
      rc = wh__fail(WH_ESTORE, "store sqlite:%s: held by process %ld, which has it open; one process per SQLite "
                               "file (stop that process first, or share a postgresql:// store)", path, pid);
    else
      rc = wh__fail(WH_ESTORE, "store sqlite:%s: held by another process, which has it open; one process per "
                               "SQLite file (stop that process first, or share a postgresql:// store)", path);
    close(fd);
  } else {
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* Only for the message of the next opener: a failure here changes nothing. */
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
      (void)0;
    *fd_out = fd;
  }
  free(lock);
  return rc;
}

void wh__file_unlock(int fd)
{
  if (fd >= 0)
    close(fd); /* closing the last descriptor of it drops the lock */
}
