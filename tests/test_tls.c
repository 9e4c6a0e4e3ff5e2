/* TLS is always verified: an https endpoint whose certificate the system does
   not trust is refused (nothing is delivered), and WH_OPT_CA_FILE makes a
   private CA trusted. A real TLS server on 127.0.0.1 (libmicrohttpd with
   GnuTLS) with a certificate made for the test by the openssl command. */
#include <webhook/webhook.h>

#include "support/check.h"
#include "support/harness.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int requests;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **state)
{
  (void)cls, (void)url, (void)method, (void)version, (void)data;
  if (!*state) {
    *state = (void *)1;
    return MHD_YES;
  }
  if (*size) {
    *size = 0;
    return MHD_YES;
  }
  atomic_fetch_add(&requests, 1);
  struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, 204, r);
  MHD_destroy_response(r);
  return ret;
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  static char buf[2][16384];
  static int k;
  char *b = buf[k++ % 2];
  size_t n = fread(b, 1, sizeof buf[0] - 1, f);
  b[n] = '\0';
  fclose(f);
  return b;
}

/* One dispatcher run against url; returns the outcome of the first attempt. */
static int deliver(const char *url, const char *ca_file, h_result *r)
{
  wh_registry *reg;
  CHECK_OK(wh_registry_open(&reg, NULL));
  char id[WH_ID_MAX];
  CHECK_OK(wh_endpoint_add(reg, "tls", url, NULL, id, sizeof id));
  h_log log;
  h_log_init(&log);
  wh_dispatcher *d = h_dispatcher(reg, &log, "");
  if (ca_file)
    CHECK_OK(wh_dispatcher_set_str(d, WH_OPT_CA_FILE, ca_file));
  CHECK_OK(wh_dispatcher_start(d));
  CHECK_OK(wh_emit(h_person_event(NULL, NULL)));
  int got = h_wait(&log, id, 0, 1, 10000);
  CHECK(got);
  if (got)
    h_get(&log, id, 0, r);
  wh_dispatcher_free(d);
  wh_registry_free(reg);
  h_log_free(&log);
  return got ? r->outcome : 0;
}

int main(void)
{
  if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
    printf("libmicrohttpd without TLS: skipped\n");
    return 77;
  }
  char dir[] = "/tmp/wh-tls-XXXXXX", cmd[1024], key[128], cert[128];
  if (!mkdtemp(dir))
    return 1;
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=localhost"
           " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
           key, cert);
  if (system(cmd) != 0) {
    printf("no openssl command to make a certificate: skipped\n");
    return 77;
  }
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *mhd =
    MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                     answer, NULL, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_HTTPS_MEM_KEY, slurp(key),
                     MHD_OPTION_HTTPS_MEM_CERT, slurp(cert), MHD_OPTION_END);
  CHECK(mhd != NULL);
  if (!mhd)
    return check_done("tls");
  unsigned port = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/tls", port);

  /* Not trusted: refused, and the receiver never sees a request. */
  h_result r = {0};
  CHECK_INT(deliver(url, NULL, &r), WH_FAILED);
  CHECK_INT(r.status, 0);
  CHECK(r.error[0] != '\0');
  printf("untrusted certificate: %s\n", r.error);
  CHECK_INT(atomic_load(&requests), 0);

  /* A private CA given with WH_OPT_CA_FILE: delivered. */
  CHECK_INT(deliver(url, cert, &r), WH_DELIVERED);
  CHECK_INT(r.status, 204);
  CHECK_INT(atomic_load(&requests), 1);

  MHD_stop_daemon(mhd);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done("tls");
}
