/*
 * The baseline: what a C programmer would write without libwebhook. A pool of
 * THREADS threads, each with one easy handle reused for every request (so one
 * kept-alive connection each), posting the same payload with the same header
 * set libwebhook sends (content-type, webhook-id, webhook-timestamp,
 * webhook-signature; the values are fixed, nothing is signed or stored).
 *
 *   raw_curl URL BODY_FILE THREADS SECONDS
 *
 * Prints "RESULT requests_per_s N": 2xx answers per second over all threads.
 * With WH_BENCH_CA set (a PEM file), https URLs are verified against it.
 */
#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *url;
static char *body;
static long body_len;
static double seconds;
static pthread_barrier_t go;

typedef struct {
  pthread_t t;
  long ok, failed;
  char error[CURL_ERROR_SIZE];
} poster;

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return size * n;
}

static void *post_loop(void *arg)
{
  poster *p = arg;
  CURL *e = curl_easy_init();
  struct curl_slist *h = NULL;
  h = curl_slist_append(h, "content-type: application/json");
  h = curl_slist_append(h, "Expect:");
  h = curl_slist_append(h, "webhook-id: msg_2fVOdTfPjyeZoUyVt0aUlaVK7kq");
  h = curl_slist_append(h, "webhook-timestamp: 1711479196");
  h = curl_slist_append(h, "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, body_len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "raw-curl/1.0.0");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->error);
  if (getenv("WH_BENCH_CA"))
    curl_easy_setopt(e, CURLOPT_CAINFO, getenv("WH_BENCH_CA"));
  pthread_barrier_wait(&go);
  double until = now_s() + seconds;
  while (now_s() < until) {
    long status = 0;
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300)
      p->ok++;
    else
      p->failed++;
  }
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  return NULL;
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: raw_curl URL BODY_FILE THREADS SECONDS\n");
    return 2;
  }
  url = argv[1];
  int threads = atoi(argv[3]);
  seconds = atof(argv[4]);
  FILE *f = fopen(argv[2], "rb");
  if (!f || threads < 1 || threads > 256) {
    perror(argv[2]);
    return 2;
  }
  fseek(f, 0, SEEK_END);
  body_len = ftell(f);
  rewind(f);
  body = malloc((size_t)body_len + 1);
  if (!body || fread(body, 1, (size_t)body_len, f) != (size_t)body_len)
    return 2;
  fclose(f);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  poster *p = calloc((size_t)threads, sizeof *p);
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++)
    pthread_create(&p[i].t, NULL, post_loop, &p[i]);
  pthread_barrier_wait(&go);
  double t0 = now_s();
  struct timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  long ok = 0, failed = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(p[i].t, NULL);
    ok += p[i].ok;
    failed += p[i].failed;
  }
  double elapsed = now_s() - t0;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
  printf("raw libcurl, %d threads: %ld posts answered 2xx in %.3f s, %ld failed%s%s\n", threads, ok, elapsed,
         failed, failed ? ": " : "", failed ? p[0].error : "");
  printf("RESULT requests_per_s %.6g\n", (double)ok / elapsed);
  if (ok)
    printf("RESULT cpu_us_per_request %.6g\n", cpu / (double)ok * 1e6);
  free(p);
  free(body);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
