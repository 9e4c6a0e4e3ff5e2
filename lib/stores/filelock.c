/*
 * Who else has a SQLite file open. Opening the file releases every claimed
 * delivery: that is how the work of a process that died is taken over. But a
 * process that opens the file while another one has it open must not do that:
 * it would take the running process's work and deliver it twice.
 *
 * So every open store holds a shared lock on a file beside the database,
 * "PATH.lock"; an opener that can have the lock exclusively for a moment is
 * alone (every earlier holder is gone, however it ended: the kernel drops the
 * locks of a dead process) and may recover, then keeps its lock shared. The
 * locks are open-file-description locks (F_OFD_SETLK): their downgrade from
 * exclusive to shared is atomic, and they belong to the open file, not the
 * process, so two registries of one process see each other too. The first
 * opener writes its process id in the file, for whctl's message.
 *
 * A sidecar file and not the database itself: SQLite's own locks are fcntl
 * locks on the database.
 */
#include "stores/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ofd_lock(int fd, short type, int wait)
{
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  int rc;
  while ((rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl)) != 0 && errno == EINTR) {
  }
  return rc;
}

int wh__file_lock(const char *path, int *fd_out, int *alone)
{
  *fd_out = -1;
  *alone = 0;
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
  } else if (ofd_lock(fd, F_WRLCK, 0) == 0) {
    *alone = 1;
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* Only for whctl's message: a failure here changes nothing. */
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
      (void)0;
  } else if (errno != EAGAIN && errno != EACCES) {
    rc = wh__fail(WH_ESTORE, "store sqlite:%s: cannot lock %s: %s", path, lock, strerror(errno));
  }
  /* Shared from here on, alone or not (an opener deciding holds it exclusively
     for a moment: wait for it). */
  if (fd >= 0 && !rc && ofd_lock(fd, F_RDLCK, 1) != 0)
    rc = wh__fail(WH_ESTORE, "store sqlite:%s: cannot lock %s: %s", path, lock, strerror(errno));
  if (rc && fd >= 0)
    close(fd);
  else
    *fd_out = fd;
  free(lock);
  return rc;
}

void wh__file_unlock(int fd)
{
  if (fd >= 0)
    close(fd); /* closing the last descriptor of it drops the lock */
}
