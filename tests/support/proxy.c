/* See proxy.h. Small on purpose: one thread per connection, one request per
   plain proxied connection (answered with "Connection: close"), tunnels piped
   with poll() until either side closes. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_loopback(unsigned *port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64) ||
      getsockname(fd, (struct sockaddr *)&a, &l)) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

static int connect_loopback(unsigned port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
  const char *c = p;
  while (n) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Read until the end of the request head ("\r\n\r\n"); returns the bytes in buf
   (head and whatever followed), or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap, size_t *head_len)
{
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t k = read(fd, buf + n, cap - 1 - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    n += (size_t)k;
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end) {
      *head_len = (size_t)(end - buf) + 4;
      return (ssize_t)n;
    }
  }
  return -1;
}

/* ---- the proxy ---------------------------------------------------------------- */

struct px {
  int fd;
  unsigned port;
  pthread_t thread;
  pthread_mutex_t mu;
  char **lines;
  size_t n, cap;
  atomic_int stop;
};

typedef struct {
  px *p;
  int fd;
} px_conn;

static void px_record(px *p, const char *line)
{
  pthread_mutex_lock(&p->mu);
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 16;
    p->lines = realloc(p->lines, p->cap * sizeof *p->lines);
  }
  p->lines[p->n++] = strdup(line);
  pthread_mutex_unlock(&p->mu);
}

/* "127.0.0.1:PORT" or "localhost:PORT" -> port, 0 for anything that is not loopback. */
static unsigned loopback_port(const char *hostport)
{
  const char *colon = strrchr(hostport, ':');
  if (!colon)
    return 0;
  size_t hl = (size_t)(colon - hostport);
  int loop = (hl == 9 && strncmp(hostport, "127.0.0.1", 9) == 0) || (hl == 9 && strncmp(hostport, "localhost", 9) == 0);
  return loop ? (unsigned)atoi(colon + 1) : 0;
}

static void pipe_both(int a, int b)
{
  char buf[16384];
  struct pollfd pf[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
  for (;;) {
    if (poll(pf, 2, 10000) <= 0)
      return;
    for (int i = 0; i < 2; i++) {
      if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t k = read(pf[i].fd, buf, sizeof buf);
      if (k <= 0 || write_all(pf[1 - i].fd, buf, (size_t)k) != 0)
        return;
    }
  }
}

static void *px_serve(void *arg)
{
  px_conn *c = arg;
  char buf[65536];
  size_t head = 0;
  ssize_t n = read_head(c->fd, buf, sizeof buf, &head);
  if (n > 0) {
    char method[16] = "", target[2048] = "";
    sscanf(buf, "%15s %2047s", method, target);
    char line[2100];
    snprintf(line, sizeof line, "%s %s", method, target);
    px_record(c->p, line);
    if (strcmp(method, "CONNECT") == 0) {
      unsigned port = loopback_port(target);
      int up = port ? connect_loopback(port) : -1;
      if (up < 0) {
        static const char no[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
        write_all(c->fd, no, sizeof no - 1);
      } else {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        if (write_all(c->fd, ok, sizeof ok - 1) == 0) {
          if ((size_t)n > head)
            write_all(up, buf + head, (size_t)n - head);
          pipe_both(c->fd, up);
        }
        close(up);
      }
    } else if (strncmp(target, "http://", 7) == 0) {
      /* Absolute form: forward to loopback as origin form, else answer here. */
      char hostport[256] = "";
      const char *path = strchr(target + 7, '/');
      size_t hl = path ? (size_t)(path - target - 7) : strlen(target + 7);
      snprintf(hostport, sizeof hostport, "%.*s", (int)hl, target + 7);
      unsigned port = loopback_port(hostport);
      int up = port ? connect_loopback(port) : -1;
      if (up < 0) {
        static const char here[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nnot forwarded";
        /* Read the body so the client sees its request taken, then answer. */
        write_all(c->fd, here, sizeof here - 1);
      } else {
        /* The request line in origin form, the rest as it came (the body follows the head). */
        char *eol = strstr(buf, "\r\n");
        /* One request per tunnel: the destination closes after it, so the
           client never sends a request for another host down this pipe. */
        char first[2200];
        int fl = snprintf(first, sizeof first, "%s %s HTTP/1.1\r\nConnection: close", method, path ? path : "/");
        if (eol && write_all(up, first, (size_t)fl) == 0 &&
            write_all(up, eol, (size_t)n - (size_t)(eol - buf)) == 0)
          pipe_both(c->fd, up);
        close(up);
      }
    } else {
      static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      write_all(c->fd, bad, sizeof bad - 1);
    }
  }
  close(c->fd);
  free(c);
  return NULL;
}

static void *px_main(void *arg)
{
  px *p = arg;
  while (!atomic_load(&p->stop)) {
    int fd = accept(p->fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      break;
    }
    px_conn *c = malloc(sizeof *c);
    c->p = p;
    c->fd = fd;
    pthread_t t;
    if (pthread_create(&t, NULL, px_serve, c) == 0)
      pthread_detach(t);
    else {
      close(fd);
      free(c);
    }
  }
  return NULL;
}

int px_start(px **out)
{
  px *p = calloc(1, sizeof *p);
  if (!p || (p->fd = listen_loopback(&p->port)) < 0) {
    free(p);
    return -1;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_create(&p->thread, NULL, px_main, p);
  *out = p;
  return 0;
}

unsigned px_port(const px *p) { return p->port; }

size_t px_count(px *p)
{
  pthread_mutex_lock(&p->mu);
  size_t n = p->n;
  pthread_mutex_unlock(&p->mu);
  return n;
}

int px_request(px *p, size_t i, char *buf, size_t len)
{
  pthread_mutex_lock(&p->mu);
  int ok = i < p->n;
  if (ok)
    snprintf(buf, len, "%s", p->lines[i]);
  pthread_mutex_unlock(&p->mu);
  return ok;
}

void px_free(px *p)
{
  if (!p)
    return;
  atomic_store(&p->stop, 1);
  shutdown(p->fd, SHUT_RDWR);
  close(p->fd);
  pthread_join(p->thread, NULL);
  for (size_t i = 0; i < p->n; i++)
    free(p->lines[i]);
  free(p->lines);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* ---- the TLS server that requires a client certificate ------------------------------------ */

struct tls {
  int fd;
  unsigned port;
  SSL_CTX *ctx;
  pthread_t thread;
  atomic_int stop;
  atomic_size_t requests, refused, resumed;
  atomic_uint close_after;
  pthread_mutex_t mu;
  char last_cn[256];
};

static void tls_serve_one(tls *t, int fd)
{
  SSL *ssl = SSL_new(t->ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) {
    atomic_fetch_add(&t->refused, 1);
    SSL_free(ssl);
    return;
  }
  if (SSL_session_reused(ssl))
    atomic_fetch_add(&t->resumed, 1);
  X509 *peer = SSL_get1_peer_certificate(ssl);
  char cn[256] = "";
  if (peer)
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
  X509_free(peer);
  /* Requests on this connection: head, then content-length bytes of body. */
  for (unsigned served = 0;; served++) {
    unsigned most = atomic_load(&t->close_after);
    if (most && served >= most)
      goto done;
    char buf[65536];
    size_t n = 0, head = 0;
    char *end = NULL;
    while (!end && n + 1 < sizeof buf) {
      int k = SSL_read(ssl, buf + n, (int)(sizeof buf - 1 - n));
      if (k <= 0)
        goto done;
      n += (size_t)k;
      buf[n] = '\0';
      end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
      goto done;
    head = (size_t)(end - buf) + 4;
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    size_t want = cl ? (size_t)atol(cl + 17) : 0;
    while (n - head < want) {
      char sink[16384];
      int k = SSL_read(ssl, sink, (int)sizeof sink);
      if (k <= 0)
        goto done;
      n += (size_t)k;
    }
    static const char answer[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                      last[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    int closing = most && served + 1 >= most;
    if (SSL_write(ssl, closing ? last : answer, closing ? (int)sizeof last - 1 : (int)sizeof answer - 1) <= 0)
      goto done;
    pthread_mutex_lock(&t->mu);
    snprintf(t->last_cn, sizeof t->last_cn, "%s", cn);
    pthread_mutex_unlock(&t->mu);
    atomic_fetch_add(&t->requests, 1);
  }
done:
  SSL_shutdown(ssl);
  SSL_free(ssl);
}

static void *tls_main(void *arg)
{
  tls *t = arg;
  while (!atomic_load(&t->stop)) {
    int fd = accept(t->fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      break;
    }
    tls_serve_one(t, fd);
    close(fd);
  }
  return NULL;
}

int tls_start(tls **out, const char *cert, const char *key, const char *client_ca)
{
  tls *t = calloc(1, sizeof *t);
  if (!t)
    return -1;
  t->ctx = SSL_CTX_new(TLS_server_method());
  if (!t->ctx || SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(t->ctx, client_ca, NULL) != 1 ||
      (t->fd = listen_loopback(&t->port)) < 0) {
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(t->ctx);
    free(t);
    return -1;
  }
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  /* Resuming a session of a verified client needs a context the sessions belong to. */
  static const unsigned char sid_ctx[] = "libwebhook-test";
  SSL_CTX_set_session_id_context(t->ctx, sid_ctx, sizeof sid_ctx - 1);
  pthread_mutex_init(&t->mu, NULL);
  pthread_create(&t->thread, NULL, tls_main, t);
  *out = t;
  return 0;
}

unsigned tls_port(const tls *t) { return t->port; }
size_t tls_requests(tls *t) { return atomic_load(&t->requests); }
size_t tls_refused(tls *t) { return atomic_load(&t->refused); }
size_t tls_resumed(tls *t) { return atomic_load(&t->resumed); }
void tls_close_after(tls *t, unsigned n) { atomic_store(&t->close_after, n); }

int tls_last_client(tls *t, char *buf, size_t len)
{
  pthread_mutex_lock(&t->mu);
  snprintf(buf, len, "%s", t->last_cn);
  pthread_mutex_unlock(&t->mu);
  return buf[0] != '\0';
}

void tls_free(tls *t)
{
  if (!t)
    return;
  atomic_store(&t->stop, 1);
  shutdown(t->fd, SHUT_RDWR);
  close(t->fd);
  pthread_join(t->thread, NULL);
  SSL_CTX_free(t->ctx);
  pthread_mutex_destroy(&t->mu);
  free(t);
}
