/*
 * A stand-in for libFuzzer's main() where libFuzzer is not available (gcc):
 * runs LLVMFuzzerTestOneInput once on every file named on the command line
 * and on every regular file inside a directory named there (not recursing,
 * skipping names that start with '.'). Arguments starting with '-' are
 * libFuzzer options and are ignored, so the same command line works for
 * both builds.
 *
 * Each input is passed in a heap block of exactly its size, so that a
 * sanitizer build catches reads past its end. A property violation aborts
 * inside the target; when an input crashes, the driver names it on stderr
 * (FUZZ_REPLAY_VERBOSE=1 names every input before running it). The driver
 * itself exits 1 when a path cannot be read or when no input was found at
 * all, 0 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sanitizer runtimes call this before they exit on an error; weak, so the
   driver also links without one. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* The input being run, named when it crashes (a failed FUZZ_ASSERT aborts,
   a sanitizer reports and exits, an unsanitized build may segfault). */
static const char *current;
/* FUZZ_REPLAY_VERBOSE=1 names every input before running it (for the crashes
   the callbacks below do not see, such as gcc's separate UBSan runtime). */
static int verbose;

static void say_current(void)
{
  if (!current)
    return;
  static const char a[] = "replay: crashed on input ";
  ssize_t r = write(2, a, sizeof a - 1);
  r = write(2, current, strlen(current));
  r = write(2, "\n", 1);
  (void)r;
}

static void on_signal(int sig)
{
  say_current();
  signal(sig, SIG_DFL);
  raise(sig);
}

static int run_file(const char *path)
{
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, fp);
    n += got;
    if (got == 0)
      break;
    if (n == cap) {
      uint8_t *p = realloc(buf, cap * 2);
      if (!p) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = p;
      cap *= 2;
    }
  }
  int err = ferror(fp);
  fclose(fp);
  if (!buf || err) {
    fprintf(stderr, "replay: %s: %s\n", path, buf ? "read error" : "out of memory");
    free(buf);
    return -1;
  }
  /* An exact-size copy: the redzone starts right after the last byte. */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    fprintf(stderr, "replay: %s: out of memory\n", path);
    return -1;
  }
  if (n)
    memcpy(exact, buf, n);
  free(buf);
  current = path;
  if (verbose)
    fprintf(stderr, "replay: %s\n", path);
  LLVMFuzzerTestOneInput(exact, n);
  current = NULL;
  free(exact);
  return 0;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order (runs are reproducible). */
static int run_dir(const char *dir, unsigned long *count)
{
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **p = realloc(names, cap * sizeof *names);
      if (!p) {
        rc = -1;
        break;
      }
      names = p;
    }
    if (!(names[n] = strdup(e->d_name))) {
      rc = -1;
      break;
    }
    n++;
  }
  closedir(d);
  if (rc == 0)
    qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0) {
      size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
      char *path = malloc(len);
      struct stat st;
      if (!path) {
        rc = -1;
      } else {
        snprintf(path, len, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0) {
          fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
          rc = -1;
        } else if (S_ISREG(st.st_mode)) {
          if (run_file(path) != 0)
            rc = -1;
          else
            (*count)++;
        }
        free(path);
      }
    }
    free(names[i]);
  }
  free(names);
  if (rc != 0)
    fprintf(stderr, "replay: %s: could not read every input\n", dir);
  return rc;
}

int main(int argc, char **argv)
{
  unsigned long count = 0;
  int failed = 0;
  const char *v = getenv("FUZZ_REPLAY_VERBOSE");
  verbose = v && *v && strcmp(v, "0") != 0;
  if (__sanitizer_set_death_callback)
    __sanitizer_set_death_callback(say_current);
  signal(SIGABRT, on_signal);
  signal(SIGSEGV, on_signal);
  signal(SIGBUS, on_signal);
  signal(SIGFPE, on_signal);
  signal(SIGILL, on_signal);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (arg[0] == '-')
      continue; /* a libFuzzer option such as -runs=0 */
    struct stat st;
    if (stat(arg, &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
      failed = 1;
    } else if (S_ISDIR(st.st_mode)) {
      if (run_dir(arg, &count) != 0)
        failed = 1;
    } else if (run_file(arg) != 0) {
      failed = 1;
    } else {
      count++;
    }
  }
  if (count == 0 && !failed) {
    fprintf(stderr, "replay: no input found; usage: %s FILE|DIR...\n", argv[0]);
    failed = 1;
  }
  printf("replay: %lu input(s) ran%s\n", count,
         failed ? ", some could not be read" : " without a crash");
  return failed;
}
