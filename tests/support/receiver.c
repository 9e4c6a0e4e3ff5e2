/*
 * receiver.c - scriptable HTTP test receiver on libmicrohttpd (see receiver.h).
 *
 * Design notes:
 *  - MHD runs one thread per connection.  A stalled or dripping answer then
 *    simply blocks its own thread, which can never hold up other connections
 *    (no suspend/resume bookkeeping needed).
 *  - Every wait (stall, reply delay, drip) is a poll() on a "stop pipe" that
 *    rcv_stop() makes readable, plus the client socket for hang-up.  So
 *    rcv_stop() cancels all waits at once, and a stall ends by itself when
 *    the client gives up, which keeps long test runs from piling up threads.
 *  - Recorded requests are immutable after recording and never freed before
 *    rcv_free(), so readers may keep the pointers without holding the lock.
 */
#define _GNU_SOURCE /* POLLRDHUP, accept4, pipe2 */

#include "receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int64_t clock_ms(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

/* Fill buf with bytes pos.. of the generated body (rcv_large_byte). */
static void fill_pattern(char *buf, size_t n, uint64_t pos)
{
  int c = (int)(pos % 26);
  for (size_t i = 0; i < n; i++) {
    buf[i] = (char)('a' + c);
    if (++c == 26)
      c = 0;
  }
}

char *rcv_loopback_url(int ipv6, unsigned port, const char *path, char *buf, size_t len)
{
  if (!path)
    path = "/";
  const char *slash = path[0] == '/' ? "" : "/";
  int n = snprintf(buf, len, "http://%s:%u%s%s", ipv6 ? "[::1]" : "127.0.0.1", port, slash,
                   path);
  return (n < 0 || (size_t)n >= len) ? NULL : buf;
}

/* Bind a TCP socket to the loopback address, port 0.  Returns the fd and the
 * chosen port, or -1. */
static int bind_loopback(int ipv6, unsigned *port)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (ipv6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sl = sizeof *a;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    close(fd);
    return -1;
  }
  *port = ipv6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

/* A scripted answer; the spec's strings are heap copies owned by the entry. */
struct entry {
  rcv_spec s;
  unsigned left; /* uses remaining before moving on (unless last) */
  struct entry *next;
};

/* The answer queue of one path (path NULL = the default queue). */
struct queue {
  char *path;
  struct entry *head, *tail;
  struct queue *next;
};

struct rcv {
  struct MHD_Daemon *d;
  int ipv6;
  unsigned port;
  int stop_pipe[2];     /* [0] turns readable when stopping; wakes every wait */
  atomic_int stopping;

  pthread_mutex_t mu;   /* guards everything below */
  pthread_cond_t cv_req; /* broadcast on each recorded request */
  rcv_request **reqs;
  size_t nreqs, capreqs;
  struct queue *queues;
  rcv_hook hook;
  void *hook_ud;
  unsigned long nconns;  /* accepted so far */
  unsigned open_conns;   /* currently open */
};

/* Per TCP connection (MHD socket context). */
struct conn_info {
  unsigned long id;
  unsigned nreq; /* guarded by rcv.mu */
};

/* Per HTTP request (MHD request context): what we gather before recording. */
struct req_state {
  char *uri;
  int64_t mono_ms, real_ms;
  int started;
  char *body;
  size_t len, cap;
};

/* Body generator for callback-based responses. */
struct gen {
  rcv *r;
  rcv_kind kind;
  char *text; /* DRIP/HTTP10 body, or NULL */
  size_t text_len;
  uint64_t limit; /* LARGE/DRIP size, RESET_BODY bytes before abort */
  unsigned ms;
  int conn_fd;
};

/* ------------------------------------------------------------------ */
/* Waiting                                                             */
/* ------------------------------------------------------------------ */

/* Wait @ms (negative = forever) unless the receiver stops or the client on
 * @conn_fd (-1 = none) hangs up.  Returns 0 when the time ran out, -1 when
 * cut short. */
static int hold(rcv *r, int conn_fd, int64_t ms)
{
  int64_t deadline = clock_ms(CLOCK_MONOTONIC) + ms;
  for (;;) {
    if (atomic_load(&r->stopping))
      return -1;
    int timeout = -1;
    if (ms >= 0) {
      int64_t left = deadline - clock_ms(CLOCK_MONOTONIC);
      if (left <= 0)
        return 0;
      timeout = left > INT_MAX ? INT_MAX : (int)left;
    }
    /* POLLRDHUP only: data the client sends (pipelining) must not count as
     * hang-up.  POLLHUP/POLLERR are always reported. */
    struct pollfd p[2] = {{.fd = r->stop_pipe[0], .events = POLLIN},
                          {.fd = conn_fd, .events = POLLRDHUP}};
    int n = poll(p, conn_fd >= 0 ? 2 : 1, timeout);
    if (n > 0)
      return -1;
    if (n < 0 && errno != EINTR)
      return -1;
  }
}

static int conn_fd_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  return ci ? ci->connect_fd : -1;
}

/* ------------------------------------------------------------------ */
/* Recording                                                           */
/* ------------------------------------------------------------------ */

static void request_free(rcv_request *q)
{
  if (!q)
    return;
  for (size_t i = 0; i < q->nheaders; i++) {
    free((char *)q->headers[i].name);
    free((char *)q->headers[i].value);
  }
  free((rcv_header *)q->headers);
  free((char *)q->method);
  free((char *)q->path);
  free((char *)q->uri);
  free((char *)q->version);
  free((char *)q->body);
  free(q);
}

struct header_vec {
  rcv_header *v;
  size_t n, cap;
  int oom;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
  (void)kind;
  struct header_vec *hv = cls;
  if (hv->n == hv->cap) {
    size_t cap = hv->cap ? hv->cap * 2 : 16;
    rcv_header *v = realloc(hv->v, cap * sizeof *v);
    if (!v) {
      hv->oom = 1;
      return MHD_NO;
    }
    hv->v = v;
    hv->cap = cap;
  }
  char *k = strdup(key ? key : "");
  char *val = strdup(value ? value : "");
  if (!k || !val) {
    free(k);
    free(val);
    hv->oom = 1;
    return MHD_NO;
  }
  hv->v[hv->n++] = (rcv_header){k, val};
  return MHD_YES;
}

static unsigned remote_port_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr)
    return 0;
  if (ci->client_addr->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ci->client_addr)->sin6_port);
  if (ci->client_addr->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
  return 0;
}

/* Build the immutable record of a completed request; takes the body. */
static rcv_request *build_request(struct req_state *st, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version)
{
  rcv_request *q = calloc(1, sizeof *q);
  if (!q)
    return NULL;
  struct header_vec hv = {0};
  MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hv);
  q->headers = hv.v;
  q->nheaders = hv.n;
  q->method = strdup(method);
  q->path = strdup(url);
  q->uri = strdup(st->uri ? st->uri : url);
  q->version = strdup(version);
  /* The body buffer always has room for a terminating NUL (see append_body);
   * an empty body still gets a buffer so callers never see NULL. */
  q->body = st->body ? st->body : calloc(1, 1);
  q->body_len = st->len;
  st->body = NULL;
  q->mono_ms = st->mono_ms;
  q->real_ms = st->real_ms;
  q->remote_port = remote_port_of(c);
  if (hv.oom || !q->method || !q->path || !q->uri || !q->version || !q->body) {
    request_free(q);
    return NULL;
  }
  return q;
}

/* Append @q to the log and wake rcv_wait_count() callers. */
static int record(rcv *r, rcv_request *q, struct conn_info *ci)
{
  pthread_mutex_lock(&r->mu);
  if (r->nreqs == r->capreqs) {
    size_t cap = r->capreqs ? r->capreqs * 2 : 64;
    rcv_request **v = realloc(r->reqs, cap * sizeof *v);
    if (!v) {
      pthread_mutex_unlock(&r->mu);
      return -1;
    }
    r->reqs = v;
    r->capreqs = cap;
  }
  q->index = r->nreqs;
  if (ci) {
    q->conn_id = ci->id;
    q->conn_seq = ++ci->nreq;
  }
  r->reqs[r->nreqs++] = q;
  pthread_cond_broadcast(&r->cv_req);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

static int append_body(struct req_state *st, const char *data, size_t n)
{
  if (st->len + n + 1 > st->cap) {
    size_t cap = st->cap ? st->cap : 4096;
    while (cap < st->len + n + 1)
      cap *= 2;
    char *b = realloc(st->body, cap);
    if (!b)
      return -1;
    st->body = b;
    st->cap = cap;
  }
  memcpy(st->body + st->len, data, n);
  st->len += n;
  st->body[st->len] = '\0';
  return 0;
}

/* ------------------------------------------------------------------ */
/* Scripts                                                             */
/* ------------------------------------------------------------------ */

static void spec_release(rcv_spec *s)
{
  free((char *)s->headers);
  free((char *)s->body);
  s->headers = s->body = NULL;
}

/* Deep copy: the strings of @src may go away right after. */
static int spec_copy(rcv_spec *dst, const rcv_spec *src)
{
  *dst = *src;
  dst->headers = dup_or_null(src->headers);
  dst->body = dup_or_null(src->body);
  if ((src->headers && !dst->headers) || (src->body && !dst->body)) {
    spec_release(dst);
    return -1;
  }
  return 0;
}

static struct queue **find_queue(rcv *r, const char *path)
{
  struct queue **pq = &r->queues;
  for (; *pq; pq = &(*pq)->next) {
    const char *p = (*pq)->path;
    if ((!p && !path) || (p && path && strcmp(p, path) == 0))
      break;
  }
  return pq;
}

static void queue_free(struct queue *q)
{
  while (q->head) {
    struct entry *e = q->head;
    q->head = e->next;
    spec_release(&e->s);
    free(e);
  }
  free(q->path);
  free(q);
}

int rcv_script(rcv *r, const char *path, const rcv_spec *spec)
{
  struct entry *e = calloc(1, sizeof *e);
  if (!e || spec_copy(&e->s, spec) != 0) {
    free(e);
    return -1;
  }
  e->left = spec->times ? spec->times : 1;
  pthread_mutex_lock(&r->mu);
  struct queue **pq = find_queue(r, path);
  if (!*pq) {
    struct queue *q = calloc(1, sizeof *q);
    if (!q || (path && !(q->path = strdup(path)))) {
      free(q);
      pthread_mutex_unlock(&r->mu);
      spec_release(&e->s);
      free(e);
      return -1;
    }
    *pq = q;
  }
  struct queue *q = *pq;
  if (q->tail)
    q->tail->next = e;
  else
    q->head = e;
  q->tail = e;
  pthread_mutex_unlock(&r->mu);
  return 0;
}

void rcv_script_clear(rcv *r, const char *path)
{
  pthread_mutex_lock(&r->mu);
  struct queue **pq = find_queue(r, path);
  struct queue *q = *pq;
  if (q)
    *pq = q->next;
  pthread_mutex_unlock(&r->mu);
  if (q)
    queue_free(q);
}

/* Copy the answer due for @path into @out and consume it.  The queue of the
 * path wins over the default queue; with neither, answer 200. */
static int take_answer(rcv *r, const char *path, rcv_spec *out)
{
  static const rcv_spec fallback = {.kind = RCV_REPLY, .status = 200};
  int rc;
  pthread_mutex_lock(&r->mu);
  struct queue *q = *find_queue(r, path);
  if (!q || !q->head)
    q = *find_queue(r, NULL);
  if (!q || !q->head) {
    rc = spec_copy(out, &fallback);
  } else {
    struct entry *e = q->head;
    rc = spec_copy(out, &e->s);
    /* The last entry is sticky; the others are used e->left times. */
    if (rc == 0 && e->next && --e->left == 0) {
      q->head = e->next;
      spec_release(&e->s);
      free(e);
    }
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* The hook's answer if it gives one, else the script's. */
static int choose_answer(rcv *r, const rcv_request *q, rcv_spec *out)
{
  pthread_mutex_lock(&r->mu);
  rcv_hook hook = r->hook;
  void *ud = r->hook_ud;
  pthread_mutex_unlock(&r->mu);
  if (hook) {
    rcv_spec s = {0};
    if (hook(q, ud, &s))
      return spec_copy(out, &s);
  }
  return take_answer(r, q->path, out);
}

static int script_simple(rcv *r, const char *path, rcv_kind kind, int status, const char *headers,
                         const char *body, uint64_t nbytes, unsigned ms)
{
  rcv_spec s = {.kind = kind, .status = status, .headers = headers, .body = body,
                .nbytes = nbytes, .ms = ms};
  return rcv_script(r, path, &s);
}

int rcv_script_reply(rcv *r, const char *path, int status, const char *headers, const char *body)
{
  return script_simple(r, path, RCV_REPLY, status, headers, body, 0, 0);
}

int rcv_script_redirect(rcv *r, const char *path, int status, const char *location)
{
  size_t n = strlen(location) + sizeof "Location: ";
  char *h = malloc(n);
  if (!h)
    return -1;
  snprintf(h, n, "Location: %s", location);
  int rc = script_simple(r, path, RCV_REPLY, status, h, "redirect", 0, 0);
  free(h);
  return rc;
}

int rcv_script_large(rcv *r, const char *path, uint64_t nbytes)
{
  return script_simple(r, path, RCV_LARGE, 200, NULL, NULL, nbytes, 0);
}

int rcv_script_stall(rcv *r, const char *path, unsigned ms)
{
  return script_simple(r, path, RCV_STALL, 0, NULL, NULL, 0, ms);
}

int rcv_script_drip(rcv *r, const char *path, const char *body, unsigned interval_ms)
{
  return script_simple(r, path, RCV_DRIP, 200, NULL, body, 0, interval_ms);
}

int rcv_script_reset(rcv *r, const char *path)
{
  return script_simple(r, path, RCV_RESET, 0, NULL, NULL, 0, 0);
}

int rcv_script_reset_body(rcv *r, const char *path, uint64_t sent_bytes)
{
  return script_simple(r, path, RCV_RESET_BODY, 200, NULL, NULL, sent_bytes, 0);
}

int rcv_script_http10(rcv *r, const char *path, int status, const char *body)
{
  return script_simple(r, path, RCV_HTTP10, status, NULL, body, 0, 0);
}

void rcv_set_hook(rcv *r, rcv_hook hook, void *ud)
{
  pthread_mutex_lock(&r->mu);
  r->hook = hook;
  r->hook_ud = ud;
  pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------------------ */
/* Answering                                                           */
/* ------------------------------------------------------------------ */

static ssize_t gen_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct gen *g = cls;
  if (atomic_load(&g->r->stopping))
    return MHD_CONTENT_READER_END_WITH_ERROR;
  switch (g->kind) {
  case RCV_DRIP:
    /* One byte per call; the wait also ends early if the client leaves. */
    if (hold(g->r, g->conn_fd, g->ms) != 0)
      return MHD_CONTENT_READER_END_WITH_ERROR;
    if (g->text)
      buf[0] = g->text[pos];
    else
      fill_pattern(buf, 1, pos);
    return 1;
  case RCV_HTTP10: {
    if (pos >= g->text_len)
      return MHD_CONTENT_READER_END_OF_STREAM; /* unknown size: MHD closes */
    size_t n = g->text_len - (size_t)pos;
    n = n < max ? n : max;
    memcpy(buf, g->text + pos, n);
    return (ssize_t)n;
  }
  case RCV_RESET_BODY:
    if (pos >= g->limit)
      return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD drops the connection */
    /* fall through */
  default: {
    uint64_t left = g->limit - pos;
    size_t n = left < max ? (size_t)left : max;
    fill_pattern(buf, n, pos);
    return (ssize_t)n;
  }
  }
}

static void gen_free(void *cls)
{
  struct gen *g = cls;
  free(g->text);
  free(g);
}

/* Response whose body MHD pulls from gen_read(). */
static struct MHD_Response *make_generated(rcv *r, const rcv_spec *s, int conn_fd)
{
  struct gen *g = calloc(1, sizeof *g);
  if (!g)
    return NULL;
  g->r = r;
  g->kind = s->kind;
  g->ms = s->ms;
  g->conn_fd = conn_fd;
  g->limit = s->nbytes;
  if (s->body) {
    g->text = strdup(s->body);
    g->text_len = strlen(s->body);
    if (!g->text) {
      free(g);
      return NULL;
    }
  }
  uint64_t size = s->nbytes;
  size_t block = 64 * 1024;
  if (s->kind == RCV_DRIP) {
    if (g->text)
      size = g->limit = g->text_len;
    block = 1;
  } else if (s->kind == RCV_RESET_BODY) {
    size = s->nbytes + 1024; /* promise more than we will send */
  } else if (s->kind == RCV_HTTP10) {
    size = MHD_SIZE_UNKNOWN;
  }
  struct MHD_Response *resp = MHD_create_response_from_callback(size, block, gen_read, g, gen_free);
  if (!resp) {
    gen_free(g);
    return NULL;
  }
  if (s->kind == RCV_HTTP10)
    /* 1.0 status line; STRICT forbids chunking, so the size-less body can
     * only be delimited by closing the connection. */
    MHD_set_response_options(resp, MHD_RF_HTTP_1_0_SERVER | MHD_RF_HTTP_1_0_COMPATIBLE_STRICT,
                             MHD_RO_END);
  return resp;
}

/* Add "Name: value\n..." lines to @resp. */
static void add_headers(struct MHD_Response *resp, const char *headers)
{
  if (!headers)
    return;
  char *copy = strdup(headers);
  if (!copy)
    return;
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r')
      line[len - 1] = '\0';
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
      value++;
    if (MHD_add_response_header(resp, line, value) != MHD_YES)
      fprintf(stderr, "receiver: MHD refused response header '%s'\n", line);
  }
  free(copy);
}

/* Carry out answer @s for connection @c.  Returning MHD_NO without queueing
 * a response makes MHD close the connection: that is our "reset". */
static enum MHD_Result respond(rcv *r, struct MHD_Connection *c, const rcv_spec *s)
{
  int fd = conn_fd_of(c);
  struct MHD_Response *resp;
  switch (s->kind) {
  case RCV_RESET:
    return MHD_NO;
  case RCV_STALL:
    hold(r, fd, s->ms ? (int64_t)s->ms : -1);
    return MHD_NO;
  case RCV_REPLY:
    if (s->ms && hold(r, fd, s->ms) != 0)
      return MHD_NO;
    resp = MHD_create_response_from_buffer(s->body ? strlen(s->body) : 0, (void *)s->body,
                                           MHD_RESPMEM_MUST_COPY);
    break;
  default:
    resp = make_generated(r, s, fd);
    break;
  }
  if (!resp)
    return MHD_NO;
  add_headers(resp, s->headers);
  enum MHD_Result rc = MHD_queue_response(c, s->status ? (unsigned)s->status : 200u, resp);
  MHD_destroy_response(resp);
  return rc;
}

/* ------------------------------------------------------------------ */
/* MHD callbacks                                                       */
/* ------------------------------------------------------------------ */

static struct req_state *req_state_new(const char *uri)
{
  struct req_state *st = calloc(1, sizeof *st);
  if (!st)
    return NULL;
  st->uri = dup_or_null(uri);
  st->mono_ms = clock_ms(CLOCK_MONOTONIC);
  st->real_ms = clock_ms(CLOCK_REALTIME);
  return st;
}

/* Called as soon as the request line is parsed: the earliest point, and the
 * only one where the raw (undecoded, with query) target is available. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
  (void)cls;
  (void)c;
  return req_state_new(uri);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)c;
  (void)toe;
  struct req_state *st = *req_cls;
  if (st) {
    free(st->uri);
    free(st->body);
    free(st);
    *req_cls = NULL;
  }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
  (void)c;
  rcv *r = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    struct conn_info *ci = calloc(1, sizeof *ci);
    pthread_mutex_lock(&r->mu);
    unsigned long id = ++r->nconns;
    r->open_conns++;
    pthread_mutex_unlock(&r->mu);
    if (ci)
      ci->id = id;
    *socket_context = ci;
  } else {
    pthread_mutex_lock(&r->mu);
    r->open_conns--;
    pthread_mutex_unlock(&r->mu);
    free(*socket_context);
    *socket_context = NULL;
  }
}

static struct conn_info *conn_info_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* Record the finished request, then answer it. */
static enum MHD_Result finish_request(rcv *r, struct MHD_Connection *c, struct req_state *st,
                                      const char *url, const char *method, const char *version)
{
  rcv_request *q = build_request(st, c, url, method, version);
  if (!q)
    return MHD_NO;
  if (record(r, q, conn_info_of(c)) != 0) {
    request_free(q);
    return MHD_NO;
  }
  rcv_spec s;
  if (choose_answer(r, q, &s) != 0)
    return MHD_NO;
  enum MHD_Result rc = respond(r, c, &s);
  spec_release(&s);
  return rc;
}

/* MHD calls this once when the headers are in, once per body chunk, and
 * once more (with no data) when the body is complete. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
  rcv *r = cls;
  struct req_state *st = *req_cls;
  if (!st && !(st = *req_cls = req_state_new(NULL)))
    return MHD_NO;
  if (!st->started) {
    st->started = 1; /* returning YES here also lets MHD send 100-continue */
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (append_body(st, upload_data, *upload_data_size) != 0)
      return MHD_NO;
    *upload_data_size = 0;
    return MHD_YES;
  }
  return finish_request(r, c, st, url, method, version);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static int start_daemon(rcv *r)
{
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  const struct sockaddr *sa = r->ipv6 ? (const struct sockaddr *)&a6 : (const struct sockaddr *)&a4;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
  if (r->ipv6)
    flags |= MHD_USE_IPv6;
  if (getenv("RCV_DEBUG"))
    flags |= MHD_USE_ERROR_LOG; /* quiet by default: resets are expected */
  r->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, r,
                          MHD_OPTION_SOCK_ADDR, sa,
                          MHD_OPTION_URI_LOG_CALLBACK, on_uri, r,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
                          MHD_OPTION_NOTIFY_CONNECTION, on_connection, r,
                          /* room for large request headers */
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
                          MHD_OPTION_END);
  if (!r->d)
    return -1;
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
  r->port = di ? di->port : 0;
  return r->port ? 0 : -1;
}

static void rcv_destroy(rcv *r)
{
  for (size_t i = 0; i < r->nreqs; i++)
    request_free(r->reqs[i]);
  free(r->reqs);
  while (r->queues) {
    struct queue *q = r->queues;
    r->queues = q->next;
    queue_free(q);
  }
  if (r->stop_pipe[0] >= 0) {
    close(r->stop_pipe[0]);
    close(r->stop_pipe[1]);
  }
  pthread_cond_destroy(&r->cv_req);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

int rcv_start(rcv **out, int ipv6)
{
  *out = NULL;
  rcv *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  r->ipv6 = ipv6 != 0;
  atomic_init(&r->stopping, 0);
  pthread_mutex_init(&r->mu, NULL);
  /* Monotonic clock so rcv_wait_count() is immune to wall-clock jumps. */
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv_req, &ca);
  pthread_condattr_destroy(&ca);
  if (pipe2(r->stop_pipe, O_CLOEXEC) != 0) {
    r->stop_pipe[0] = r->stop_pipe[1] = -1;
    rcv_destroy(r);
    return -1;
  }
  if (start_daemon(r) != 0) {
    rcv_stop(r);
    rcv_destroy(r);
    return -1;
  }
  *out = r;
  return 0;
}

unsigned rcv_port(const rcv *r)
{
  return r->port;
}

char *rcv_url(const rcv *r, const char *path, char *buf, size_t len)
{
  return rcv_loopback_url(r->ipv6, r->port, path, buf, len);
}

void rcv_stop(rcv *r)
{
  if (atomic_exchange(&r->stopping, 1))
    return;
  /* Wake every hold() first: MHD_stop_daemon joins the connection threads,
   * which would otherwise sit out their stalls. */
  ssize_t w = write(r->stop_pipe[1], "x", 1);
  (void)w;
  if (r->d)
    MHD_stop_daemon(r->d);
  r->d = NULL;
}

void rcv_free(rcv *r)
{
  if (!r)
    return;
  rcv_stop(r);
  rcv_destroy(r);
}

/* ------------------------------------------------------------------ */
/* Reading the log                                                     */
/* ------------------------------------------------------------------ */

const char *rcv_header_get(const rcv_request *q, const char *name)
{
  for (size_t i = 0; i < q->nheaders; i++)
    if (strcasecmp(q->headers[i].name, name) == 0)
      return q->headers[i].value;
  return NULL;
}

size_t rcv_count(rcv *r)
{
  pthread_mutex_lock(&r->mu);
  size_t n = r->nreqs;
  pthread_mutex_unlock(&r->mu);
  return n;
}

const rcv_request *rcv_request_at(rcv *r, size_t i)
{
  pthread_mutex_lock(&r->mu);
  const rcv_request *q = i < r->nreqs ? r->reqs[i] : NULL;
  pthread_mutex_unlock(&r->mu);
  return q;
}

int rcv_wait_count(rcv *r, size_t n, unsigned timeout_ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->mu);
  while (r->nreqs < n)
    if (pthread_cond_timedwait(&r->cv_req, &r->mu, &ts) == ETIMEDOUT)
      break;
  int ok = r->nreqs >= n;
  pthread_mutex_unlock(&r->mu);
  return ok;
}

size_t rcv_count_path(rcv *r, const char *path)
{
  size_t n = 0;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nreqs; i++)
    n += strcmp(r->reqs[i]->path, path) == 0;
  pthread_mutex_unlock(&r->mu);
  return n;
}

const rcv_request *rcv_request_on_path(rcv *r, const char *path, size_t n)
{
  const rcv_request *found = NULL;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nreqs && !found; i++)
    if (strcmp(r->reqs[i]->path, path) == 0 && n-- == 0)
      found = r->reqs[i];
  pthread_mutex_unlock(&r->mu);
  return found;
}

const rcv_request *rcv_find_header(rcv *r, const char *name, const char *value)
{
  const rcv_request *found = NULL;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nreqs && !found; i++) {
    const char *v = rcv_header_get(r->reqs[i], name);
    if (v && strcmp(v, value) == 0)
      found = r->reqs[i];
  }
  pthread_mutex_unlock(&r->mu);
  return found;
}

unsigned long rcv_connections(rcv *r)
{
  pthread_mutex_lock(&r->mu);
  unsigned long n = r->nconns;
  pthread_mutex_unlock(&r->mu);
  return n;
}

unsigned rcv_open_connections(rcv *r)
{
  pthread_mutex_lock(&r->mu);
  unsigned n = r->open_conns;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* ------------------------------------------------------------------ */
/* Blackhole and refused port                                          */
/* ------------------------------------------------------------------ */

#define BH_MAX 1024

struct rcv_blackhole {
  int ipv6;
  unsigned port;
  int lfd;
  int wake[2]; /* [0] turns readable when freeing */
  pthread_t th;
  atomic_ulong accepted;
  /* Only the blackhole thread touches these (and free, after joining). */
  int fds[BH_MAX];
  size_t nfds;
  struct pollfd pfd[BH_MAX + 2];
};

/* Close accepted connections whose client has gone (hang-up or error), so
 * the BH_MAX bound counts live connections only. */
static void bh_reap(rcv_blackhole *b, const struct pollfd *conn_pfd)
{
  for (size_t i = b->nfds; i-- > 0;)
    if (conn_pfd[i].revents) {
      close(b->fds[i]);
      b->fds[i] = b->fds[--b->nfds];
    }
}

static void bh_accept(rcv_blackhole *b)
{
  int fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return; /* the client left already (listen socket is non-blocking) */
  b->fds[b->nfds++] = fd;
  atomic_fetch_add(&b->accepted, 1);
}

static void *bh_main(void *arg)
{
  rcv_blackhole *b = arg;
  for (;;) {
    /* pfd[0] wake, pfd[1] listener (while below the bound), then the
     * accepted connections, watched for hang-up only: never POLLIN, since
     * we never read. */
    size_t base = 2;
    b->pfd[0] = (struct pollfd){.fd = b->wake[0], .events = POLLIN};
    b->pfd[1] = (struct pollfd){.fd = b->nfds < BH_MAX ? b->lfd : -1, .events = POLLIN};
    for (size_t i = 0; i < b->nfds; i++)
      b->pfd[base + i] = (struct pollfd){.fd = b->fds[i], .events = POLLRDHUP};
    int n = poll(b->pfd, base + b->nfds, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || b->pfd[0].revents)
      break;
    bh_reap(b, b->pfd + base);
    if (b->pfd[1].revents & POLLIN)
      bh_accept(b);
  }
  return NULL;
}

int rcv_blackhole_start(rcv_blackhole **out, int ipv6)
{
  *out = NULL;
  rcv_blackhole *b = calloc(1, sizeof *b);
  if (!b)
    return -1;
  b->ipv6 = ipv6 != 0;
  b->wake[0] = b->wake[1] = -1;
  atomic_init(&b->accepted, 0);
  b->lfd = bind_loopback(b->ipv6, &b->port);
  if (b->lfd < 0 || listen(b->lfd, 128) != 0 || fcntl(b->lfd, F_SETFL, O_NONBLOCK) != 0 ||
      pipe2(b->wake, O_CLOEXEC) != 0 || pthread_create(&b->th, NULL, bh_main, b) != 0) {
    if (b->lfd >= 0)
      close(b->lfd);
    if (b->wake[0] >= 0) {
      close(b->wake[0]);
      close(b->wake[1]);
    }
    free(b);
    return -1;
  }
  *out = b;
  return 0;
}

unsigned rcv_blackhole_port(const rcv_blackhole *b)
{
  return b->port;
}

char *rcv_blackhole_url(const rcv_blackhole *b, const char *path, char *buf, size_t len)
{
  return rcv_loopback_url(b->ipv6, b->port, path, buf, len);
}

unsigned long rcv_blackhole_accepted(rcv_blackhole *b)
{
  return atomic_load(&b->accepted);
}

void rcv_blackhole_free(rcv_blackhole *b)
{
  if (!b)
    return;
  ssize_t w = write(b->wake[1], "x", 1);
  (void)w;
  pthread_join(b->th, NULL);
  for (size_t i = 0; i < b->nfds; i++)
    close(b->fds[i]);
  close(b->lfd);
  close(b->wake[0]);
  close(b->wake[1]);
  free(b);
}

unsigned rcv_refused_port(void)
{
  unsigned port = 0;
  int fd = bind_loopback(0, &port);
  if (fd < 0)
    return 0;
  /* Never listened on: once closed, connecting gets RST (ECONNREFUSED). */
  close(fd);
  return port;
}
