/* Test peers for the proxy and mutual-TLS tests, on 127.0.0.1 only:
 *  - px: an HTTP proxy (plain "POST http://host:port/path" requests, and CONNECT
 *    tunnels) that records what it was asked, forwards only to loopback
 *    destinations, and answers requests for any other destination itself
 *    (200, "not forwarded") without ever connecting out;
 *  - tls: a TLS server (OpenSSL) that requires a client certificate signed by a
 *    given CA, answers 204 to each request, and records the subject of the
 *    client certificates it accepted. */
#ifndef WH_TEST_PROXY_H
#define WH_TEST_PROXY_H

#include <stddef.h>

typedef struct px px;

int px_start(px **out);
unsigned px_port(const px *p);
void px_free(px *p);
/* Requests seen so far: "CONNECT 127.0.0.1:443" or "POST http://127.0.0.1:80/path". */
size_t px_count(px *p);
/* Copy of request i's line into buf; 0 when there is none. */
int px_request(px *p, size_t i, char *buf, size_t len);

typedef struct tls tls;

/* cert/key: the server's PEM files; client_ca: the CA that client certificates
   must be signed by (a client without one fails the handshake). */
int tls_start(tls **out, const char *cert, const char *key, const char *client_ca);
unsigned tls_port(const tls *t);
void tls_free(tls *t);
/* Requests answered (with a verified client certificate). */
size_t tls_requests(tls *t);
/* Handshakes refused (no certificate, or not signed by the CA). */
size_t tls_refused(tls *t);
/* Connections whose TLS session was resumed (no full handshake). */
size_t tls_resumed(tls *t);
/* Close every connection after n requests (0: keep it open, the default). */
void tls_close_after(tls *t, unsigned n);
/* The subject CN of the last accepted client certificate. */
int tls_last_client(tls *t, char *buf, size_t len);

#endif
