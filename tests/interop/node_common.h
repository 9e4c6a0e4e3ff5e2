/* What the interop drivers (interop.c, incoming.c) share: finding node and
   the npm packages, running a script, reading JSON lines, base64.

   When node or a package is missing a driver skips (exit 77), unless
   WH_REQUIRE_INTEROP=1 (set by .ci/run): then it fails, so that CI never
   passes with the interop tests silently not run. */
#ifndef WH_INTEROP_NODE_COMMON_H
#define WH_INTEROP_NODE_COMMON_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SKIP 77

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; the result is malloc'ed. */
static char *b64_encode(const unsigned char *p, size_t n)
{
  char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
  if (!out)
    abort();
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = B64[(v >> 6) & 63];
    *o++ = B64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return out;
}

/* Decode standard base64 (padding optional); malloc'ed, NULL when malformed. */
static unsigned char *b64_decode(const char *s, size_t *len)
{
  size_t n = strlen(s);
  unsigned char *out = malloc(n / 4 * 3 + 3);
  if (!out)
    abort();
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0, i = 0;
  for (; i < n && s[i] != '='; i++) {
    const char *c = s[i] ? strchr(B64, s[i]) : NULL;
    if (!c) {
      free(out);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)(c - B64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  for (; i < n; i++)
    if (s[i] != '=') {
      free(out);
      return NULL;
    }
  *len = o;
  return out;
}

static int is_executable(const char *path)
{
  struct stat st;
  return path && *path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* `node` from argv (when usable) or from PATH, into buf; 0 when there is none. */
static int find_node(const char *given, char *buf, size_t len)
{
  if (is_executable(given)) {
    snprintf(buf, len, "%s", given);
    return 1;
  }
  const char *path = getenv("PATH");
  if (!path)
    return 0;
  while (*path) {
    const char *end = strchr(path, ':');
    size_t n = end ? (size_t)(end - path) : strlen(path);
    snprintf(buf, len, "%.*s/node", (int)n, n ? path : ".");
    if (is_executable(buf))
      return 1;
    path += n + (end ? 1 : 0);
  }
  return 0;
}

/* Skip (77), or fail (1) under WH_REQUIRE_INTEROP=1, saying why. */
static int not_ready(const char *why)
{
  const char *req = getenv("WH_REQUIRE_INTEROP");
  if (req && strcmp(req, "1") == 0) {
    fprintf(stderr, "FAIL: %s; WH_REQUIRE_INTEROP=1 forbids skipping (run tests/interop/setup.sh)\n", why);
    return 1;
  }
  printf("SKIP: %s; run tests/interop/setup.sh (npm ci)\n", why);
  return SKIP;
}

/* node into node_out and every package installed beside script: 0; otherwise
   what not_ready() says. */
static int node_ready(const char *given, const char *script, const char *const *packages, int n, char *node_out,
                      size_t len)
{
  char why[4400];
  if (!find_node(given, node_out, len)) {
    snprintf(why, sizeof why, "node (Node.js) not found (given \"%s\", nor on PATH)", given);
    return not_ready(why);
  }
  const char *slash = strrchr(script, '/');
  for (int i = 0; i < n; i++) {
    char pkg[4096];
    snprintf(pkg, sizeof pkg, "%.*snode_modules/%s/package.json", slash ? (int)(slash - script + 1) : 0, script,
             packages[i]);
    if (access(pkg, R_OK) != 0) {
      snprintf(why, sizeof why, "%s missing: the npm package %s is not installed", pkg, packages[i]);
      return not_ready(why);
    }
  }
  return 0;
}

static int run_node(const char *node, const char *script, const char *cases, const char *results,
                    const char *signed_out)
{
  char *argv[] = {(char *)node, (char *)script, (char *)cases, (char *)results, (char *)signed_out, NULL};
  fflush(stdout);
  fflush(stderr);
  pid_t pid;
  int rc = posix_spawn(&pid, node, NULL, NULL, argv, environ);
  if (rc != 0) {
    fprintf(stderr, "FAIL: cannot run %s: %s\n", node, strerror(rc));
    return -1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  fprintf(stderr, "FAIL: node died with signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return -1;
}

/* Calls fn for each JSON line of path; returns the number of lines, -1 when
   the file cannot be read, counting a failure for each bad line. */
static long each_line(const char *path, void (*fn)(cJSON *, void *), void *ud)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "FAIL: cannot read %s: %s\n", path, strerror(errno));
    check_failures++;
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  long n = 0;
  while (getline(&line, &cap, f) > 0) {
    if (line[0] == '\n')
      continue;
    cJSON *o = cJSON_Parse(line);
    if (!o) {
      fprintf(stderr, "FAIL: %s: line %ld is not JSON\n", path, n + 1);
      check_failures++;
    } else {
      fn(o, ud);
      cJSON_Delete(o);
    }
    n++;
  }
  free(line);
  fclose(f);
  return n;
}

static const char *jstr(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

#endif
