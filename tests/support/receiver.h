/*
 * receiver.h - a scriptable HTTP receiver for the libwebhook test suite.
 *
 * A receiver is a small HTTP/1.1 server (libmicrohttpd, one thread per
 * connection) listening on 127.0.0.1:0 or [::1]:0.  It records every request
 * it receives and answers according to a per-path script, so tests can make
 * the "remote endpoint" succeed, fail, redirect, stall, drip, reset or send
 * huge bodies on demand.
 *
 * Two raw-socket helpers complete it for network-failure tests: a blackhole
 * listener (accepts, never reads or writes) and a refused port.
 *
 * Thread safety: every function taking an rcv * may be called from any
 * thread while the server runs, except rcv_stop() and rcv_free(), which
 * belong to the thread that owns the receiver.  Recorded requests are
 * immutable once recorded; the pointers handed out stay valid until
 * rcv_free().
 *
 * Linking: target_link_libraries(<test> PRIVATE wh_test_receiver)
 * (static library; brings libmicrohttpd and pthreads along).
 */
#ifndef WH_TEST_RECEIVER_H
#define WH_TEST_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rcv rcv;
typedef struct rcv_blackhole rcv_blackhole;

/* ------------------------------------------------------------------ */
/* Recorded requests                                                   */
/* ------------------------------------------------------------------ */

/* One request header, exactly as received (name case preserved). */
typedef struct rcv_header {
  const char *name;
  const char *value;
} rcv_header;

/* One recorded request.  All strings are NUL-terminated and owned by the
 * receiver. */
typedef struct rcv_request {
  size_t index;              /* position in the receiver's log, from 0 */
  const char *method;        /* "POST", "GET", ... */
  const char *path;          /* percent-decoded path without query, "/hook" */
  const char *uri;           /* raw request target as sent, "/hook?a=%20b" */
  const char *version;       /* "HTTP/1.1" */
  const rcv_header *headers; /* in arrival order */
  size_t nheaders;
  const char *body;          /* full body, with an extra NUL after it */
  size_t body_len;
  int64_t mono_ms;           /* CLOCK_MONOTONIC ms when the request line arrived */
  int64_t real_ms;           /* CLOCK_REALTIME ms (Unix epoch) at the same moment */
  unsigned remote_port;      /* client's source port: same port = same connection */
  unsigned long conn_id;     /* receiver-wide connection number, from 1 */
  unsigned conn_seq;         /* 1 for the first request on its connection, 2 ... */
} rcv_request;

/* Case-insensitive lookup of the first header called @name in @q.
 * Returns its value or NULL. */
const char *rcv_header_get(const rcv_request *q, const char *name);

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

/* Start a receiver on 127.0.0.1 (ipv6 == 0) or ::1 (ipv6 != 0) with a kernel
 * chosen port.  Returns 0 and sets *out, or -1 (e.g. no IPv6 loopback).
 * Without any script every request is answered "200" with an empty body. */
int rcv_start(rcv **out, int ipv6);

/* The bound TCP port. */
unsigned rcv_port(const rcv *r);

/* Writes "http://127.0.0.1:PORT/path" (or "http://[::1]:PORT/path") into
 * buf; a missing leading '/' in @path is added, NULL means "/".  Returns buf,
 * or NULL if @len is too small. */
char *rcv_url(const rcv *r, const char *path, char *buf, size_t len);

/* Stop serving: stalled and dripping answers are cancelled, every open
 * connection is closed, the port is released.  Recorded requests stay
 * readable.  Idempotent; returns within about a second whatever clients do. */
void rcv_stop(rcv *r);

/* rcv_stop() then release everything, including recorded requests.
 * NULL is accepted. */
void rcv_free(rcv *r);

/* ------------------------------------------------------------------ */
/* Reading the log                                                     */
/* ------------------------------------------------------------------ */

/* Number of requests recorded so far.  A request is recorded once its body
 * has been received completely, before it is answered. */
size_t rcv_count(rcv *r);

/* Request number @i (from 0), or NULL if not (yet) recorded. */
const rcv_request *rcv_request_at(rcv *r, size_t i);

/* Wait until at least @n requests are recorded.  Returns 1 when reached,
 * 0 after @timeout_ms. */
int rcv_wait_count(rcv *r, size_t n, unsigned timeout_ms);

/* Number of recorded requests whose (decoded) path equals @path. */
size_t rcv_count_path(rcv *r, const char *path);

/* The @n-th (from 0) recorded request whose path equals @path, or NULL. */
const rcv_request *rcv_request_on_path(rcv *r, const char *path, size_t n);

/* First recorded request having header @name (case-insensitive) with value
 * @value (exact), or NULL. */
const rcv_request *rcv_find_header(rcv *r, const char *name, const char *value);

/* Number of TCP connections accepted so far. */
unsigned long rcv_connections(rcv *r);

/* Number of TCP connections open right now (accepted and not yet closed). */
unsigned rcv_open_connections(rcv *r);

/* ------------------------------------------------------------------ */
/* Scripting the answers                                               */
/* ------------------------------------------------------------------ */

typedef enum rcv_kind {
  /* status + headers + body, after waiting @ms first if non-zero */
  RCV_REPLY = 0,
  /* status + @nbytes of generated body (see rcv_large_byte), streamed
   * without ever being held in memory */
  RCV_LARGE,
  /* never answer: hold the request for @ms (0 = until rcv_stop or until the
   * client hangs up), then close the connection without a response */
  RCV_STALL,
  /* status, Content-Length, then the body one byte every @ms; the body is
   * @body, or @nbytes generated bytes when @body is NULL */
  RCV_DRIP,
  /* close the connection without sending anything */
  RCV_RESET,
  /* send headers announcing @nbytes + 1024 bytes of body, send @nbytes of
   * generated body, then close the connection (truncated response) */
  RCV_RESET_BODY,
  /* "HTTP/1.0" status line, no Content-Length, no chunking: the body (@body)
   * ends when the server closes the connection */
  RCV_HTTP10
} rcv_kind;

/* One scripted answer.  Zero-initialise and fill what the kind needs.
 * Strings are copied when scripted. */
typedef struct rcv_spec {
  rcv_kind kind;
  int status;          /* HTTP status; 0 means 200 */
  const char *headers; /* extra response headers, "Name: value" lines
                          separated by '\n' (a trailing '\r' is ignored) */
  const char *body;    /* body text or NULL */
  uint64_t nbytes;     /* see rcv_kind */
  unsigned ms;         /* see rcv_kind */
  unsigned times;      /* requests answered by this entry before the next one
                          takes over; 0 means 1.  Ignored for the last entry
                          of a queue, which stays in force ("sticky"). */
} rcv_spec;

/* Append @spec to the queue of @path (exact match on the decoded path; NULL
 * = the default queue, used for paths without a queue of their own).
 * Entries are consumed in order; the last one is sticky.  Returns 0 or -1
 * (out of memory). */
int rcv_script(rcv *r, const char *path, const rcv_spec *spec);

/* Drop the queue of @path (NULL = the default queue). */
void rcv_script_clear(rcv *r, const char *path);

/* Shorthands for rcv_script() with times = 1. */
int rcv_script_reply(rcv *r, const char *path, int status, const char *headers,
                     const char *body);
int rcv_script_redirect(rcv *r, const char *path, int status, const char *location);
int rcv_script_large(rcv *r, const char *path, uint64_t nbytes);
int rcv_script_stall(rcv *r, const char *path, unsigned ms);
int rcv_script_drip(rcv *r, const char *path, const char *body, unsigned interval_ms);
int rcv_script_reset(rcv *r, const char *path);
int rcv_script_reset_body(rcv *r, const char *path, uint64_t sent_bytes);
int rcv_script_http10(rcv *r, const char *path, int status, const char *body);

/* Byte @i of every generated body: 'a' + i % 26, so clients can verify. */
static inline char rcv_large_byte(uint64_t i) { return (char)('a' + (int)(i % 26)); }

/* Optional hook, called on the connection's thread for each request right
 * after it is recorded.  Returning non-zero with *answer filled overrides
 * the script for this request (the script queue is then not consumed).
 * Strings in *answer are copied as soon as the hook returns, so literals or
 * memory owned by @ud will do (not the hook's own locals).  The hook
 * must be thread-safe: requests on different connections run concurrently. */
typedef int (*rcv_hook)(const rcv_request *q, void *ud, rcv_spec *answer);
void rcv_set_hook(rcv *r, rcv_hook hook, void *ud);

/* ------------------------------------------------------------------ */
/* Raw socket helpers (no HTTP)                                        */
/* ------------------------------------------------------------------ */

/* A TCP listener on 127.0.0.1:0 (or [::1]:0) that accepts connections and
 * never reads nor writes; connections stay open until the client leaves or
 * rcv_blackhole_free().  Past 1024 open connections it stops accepting (the
 * kernel backlog then keeps the silence).  Returns 0 or -1. */
int rcv_blackhole_start(rcv_blackhole **out, int ipv6);

/* Its port. */
unsigned rcv_blackhole_port(const rcv_blackhole *b);

/* Like rcv_url() for the blackhole. */
char *rcv_blackhole_url(const rcv_blackhole *b, const char *path, char *buf, size_t len);

/* Number of connections accepted so far. */
unsigned long rcv_blackhole_accepted(rcv_blackhole *b);

/* Close everything and free.  NULL is accepted. */
void rcv_blackhole_free(rcv_blackhole *b);

/* A port on 127.0.0.1 where nothing listens (bound then released, so
 * connecting is refused unless someone grabs it meanwhile), or 0 on error. */
unsigned rcv_refused_port(void);

/* "http://127.0.0.1:PORT/path" or "http://[::1]:PORT/path" for any port;
 * same conventions as rcv_url(). */
char *rcv_loopback_url(int ipv6, unsigned port, const char *path, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* WH_TEST_RECEIVER_H */
