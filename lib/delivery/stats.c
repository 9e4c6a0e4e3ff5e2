/*
 * Seeing what happens: the dispatcher's figures as JSON (totals, one
 * endpoint) and as Prometheus text.
 *
 * The dispatcher counts with wh__stats_attempt and wh__stats_finished where it
 * already holds its mutex for the same change (an attempt's end, a delivery's
 * end), and hands out copies (wh__dispatcher_totals, wh__dispatcher_endpoint)
 * taken under that mutex in one go. Everything here works on those copies,
 * outside any lock: a scrape costs the workers and the emitters one short
 * copy, never the formatting.
 */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Attempt durations, in ms, as Prometheus le buckets: from a fast local
   receiver to the longest request timeout (30 s). */
const int wh__hist_bounds_ms[WH__HIST_BOUNDS] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 15000, 30000};

/* ---- counting (the dispatcher holds its mutex) ---------------------------------------- */

static int class_of(int status)
{
  return status >= 100 && status <= 599 ? status / 100 : WH__CLASS_NONE; /* 1xx..5xx are 1..5 */
}

/* An error repeats while an endpoint is down: the copy is replaced only when
   the text changes. Without memory for it, the endpoint shows none. */
static void set_last_error(wh__ep_counters *e, const char *error)
{
  if (!error || !*error) {
    free(e->last_error);
    e->last_error = NULL;
  } else if (!e->last_error || strcmp(e->last_error, error) != 0) {
    free(e->last_error);
    e->last_error = wh__strdup(error);
  }
}

static void add_latency(wh__ep_counters *e, int64_t ms)
{
  if (!e->lat_ms && !(e->lat_ms = malloc(WH__LAT_SAMPLES * sizeof *e->lat_ms)))
    return; /* no memory: the latency figures go without this one */
  e->lat_ms[e->lat_next] = (uint16_t)(ms > UINT16_MAX ? UINT16_MAX : ms);
  e->lat_next = (uint16_t)((e->lat_next + 1) % WH__LAT_SAMPLES);
  if (e->nlat < WH__LAT_SAMPLES)
    e->nlat++;
}

void wh__stats_attempt(wh__counters *c, wh__ep_counters *e, const wh__outcome *out, int outcome)
{
  int64_t ms = out->duration_ms > 0 ? out->duration_ms : 0;
  c->attempts++;
  if (outcome == WH_DELIVERED)
    c->attempts_delivered++;
  else if (outcome == WH_RETRYING)
    c->attempts_retrying++;
  else
    c->attempts_failed++;
  c->by_class[class_of(out->http_status)]++;
  int b = 0;
  while (b < WH__HIST_BOUNDS && ms > wh__hist_bounds_ms[b])
    b++;
  c->hist[b]++;
  c->duration_ms_sum += (uint64_t)ms;
  e->last_http_status = out->http_status;
  e->last_attempt_ms = out->started_ms;
  set_last_error(e, out->error);
  add_latency(e, ms);
}

void wh__stats_finished(wh__counters *c, wh__ep_counters *e, int outcome)
{
  if (outcome == WH_DELIVERED) {
    c->delivered++;
    e->delivered++;
  } else {
    c->failed++;
    e->failed++;
  }
}

void wh__ep_counters_free(wh__ep_counters *e)
{
  free(e->last_error);
  free(e->lat_ms);
  e->last_error = NULL;
  e->lat_ms = NULL;
}

/* ---- rendering ---------------------------------------------------------------------------- */

static void putf(wh__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(wh__buf *b, const char *fmt, ...)
{
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    wh__buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_str_or_null(wh__buf *b, const char *key, const char *v)
{
  wh__buf_puts(b, key);
  if (v)
    wh__buf_json_str(b, v);
  else
    wh__buf_puts(b, "null");
}

static int take(wh__buf *b, char **out)
{
  *out = wh__buf_take(b);
  return *out ? WH_OK : wh__oom();
}

/* The totals, for a call that writes its text to *out (set to NULL first). */
static int snapshot(wh_dispatcher *d, char **out, const char *what, wh__stats_totals *t)
{
  if (out)
    *out = NULL;
  else if (d)
    return wh__fail(WH_EINVAL, "%s must not be NULL", what);
  return wh__dispatcher_totals(d, t);
}

int wh_dispatcher_stats_json(wh_dispatcher *d, char **json_out)
{
  wh__stats_totals t;
  int rc = snapshot(d, json_out, "stats: json_out", &t);
  if (rc)
    return rc;
  wh__buf b = {0};
  putf(&b,
       "{\"emitted\":%llu,\"delivered\":%llu,\"failed\":%llu,\"retrying\":%llu,\"attempts\":%llu,"
       "\"in_flight\":%ld,\"due\":%ld,\"scheduled\":%ld,\"results_dropped\":%llu,"
       "\"endpoints_enabled\":%zu,\"endpoints_disabled\":%zu,\"breakers_open\":%ld}",
       (unsigned long long)t.c.emitted, (unsigned long long)t.c.delivered, (unsigned long long)t.c.failed,
       (unsigned long long)t.c.attempts_retrying, (unsigned long long)t.c.attempts, t.in_flight, t.due,
       t.scheduled, (unsigned long long)t.results_dropped, t.endpoints_enabled, t.endpoints_disabled,
       t.c.breakers_open);
  return take(&b, json_out);
}

static int cmp_u16(const void *a, const void *b)
{
  return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Nearest rank: the smallest sample with at least pct % of them at or below it. */
static int percentile(const uint16_t *sorted, int n, int pct)
{
  if (n == 0)
    return 0;
  int rank = (n * pct + 99) / 100;
  return sorted[rank > 0 ? rank - 1 : 0];
}

static const char *breaker_name(int state)
{
  return state == WH__BREAKER_OPEN ? "open" : state == WH__BREAKER_HALF_OPEN ? "half_open" : "closed";
}

int wh_dispatcher_endpoint_stats_json(wh_dispatcher *d, const char *endpoint_id, char **json_out)
{
  if (json_out)
    *json_out = NULL;
  if (d && !endpoint_id)
    return wh__fail(WH_EINVAL, "endpoint stats: endpoint_id must not be NULL");
  if (d && !json_out)
    return wh__fail(WH_EINVAL, "endpoint stats: json_out must not be NULL");
  wh__stats_endpoint e;
  wh__endpoint *ep = NULL;
  int rc = wh__dispatcher_endpoint(d, endpoint_id, &e, &ep);
  if (rc)
    return rc;
  qsort(e.lat_ms, (size_t)e.nlat, sizeof e.lat_ms[0], cmp_u16);
  char when[64];
  if (e.last_attempt_ms)
    wh__iso_ms(e.last_attempt_ms, when);
  wh__buf b = {0};
  put_str_or_null(&b, "{\"endpoint_id\":", ep->id);
  put_str_or_null(&b, ",\"tenant_id\":", ep->tenant);
  putf(&b, ",\"enabled\":%s", ep->enabled ? "true" : "false");
  put_str_or_null(&b, ",\"disabled_reason\":", ep->enabled ? NULL : ep->disabled_reason);
  putf(&b, ",\"in_flight\":%d,\"window\":%d,\"breaker\":\"%s\",\"due\":%ld,\"scheduled\":%ld,"
           "\"delivered\":%llu,\"failed\":%llu,\"last_http_status\":%d",
       e.in_flight, e.window, breaker_name(e.breaker), e.due, e.scheduled, (unsigned long long)e.delivered,
       (unsigned long long)e.failed, e.last_http_status);
  put_str_or_null(&b, ",\"last_error\":", e.last_error[0] ? e.last_error : NULL);
  put_str_or_null(&b, ",\"last_attempt_at\":", e.last_attempt_ms ? when : NULL);
  putf(&b, ",\"latency_ms\":{\"p50\":%d,\"p99\":%d}}", percentile(e.lat_ms, e.nlat, 50),
       percentile(e.lat_ms, e.nlat, 99));
  wh__endpoint_unref(ep);
  return take(&b, json_out);
}

/* ---- Prometheus text exposition 0.0.4 ----------------------------------------------------- */

static void metric_head(wh__buf *b, const char *name, const char *type, const char *help)
{
  putf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_one(wh__buf *b, const char *name, const char *type, const char *help, unsigned long long v)
{
  metric_head(b, name, type, help);
  putf(b, "%s %llu\n", name, v);
}

static void duration_histogram(wh__buf *b, const wh__counters *c)
{
  const char *name = "webhook_attempt_duration_seconds";
  metric_head(b, name, "histogram", "How long attempts took, from the request's start to its outcome.");
  unsigned long long cum = 0;
  for (int i = 0; i < WH__HIST_BOUNDS; i++) {
    cum += c->hist[i];
    putf(b, "%s_bucket{le=\"%g\"} %llu\n", name, wh__hist_bounds_ms[i] / 1000.0, cum);
  }
  cum += c->hist[WH__HIST_BOUNDS];
  putf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
  putf(b, "%s_sum %.3f\n", name, (double)c->duration_ms_sum / 1000.0);
  putf(b, "%s_count %llu\n", name, cum);
}

int wh_dispatcher_metrics_text(wh_dispatcher *d, char **text_out)
{
  wh__stats_totals t;
  int rc = snapshot(d, text_out, "metrics: text_out", &t);
  if (rc)
    return rc;
  const wh__counters *c = &t.c;
  wh__buf b = {0};
  metric_one(&b, "webhook_deliveries_emitted_total", "counter",
             "Deliveries created by emits of this dispatcher (one per endpoint an event goes to).", c->emitted);
  metric_head(&b, "webhook_deliveries_finished_total", "counter", "Deliveries that ended, by outcome.");
  putf(&b, "webhook_deliveries_finished_total{outcome=\"delivered\"} %llu\n", (unsigned long long)c->delivered);
  putf(&b, "webhook_deliveries_finished_total{outcome=\"failed\"} %llu\n", (unsigned long long)c->failed);
  metric_head(&b, "webhook_attempts_total", "counter",
              "Attempts, by what they came to: delivered, retrying (another attempt is scheduled), failed "
              "(the delivery ended failed).");
  putf(&b, "webhook_attempts_total{outcome=\"delivered\"} %llu\n", (unsigned long long)c->attempts_delivered);
  putf(&b, "webhook_attempts_total{outcome=\"retrying\"} %llu\n", (unsigned long long)c->attempts_retrying);
  putf(&b, "webhook_attempts_total{outcome=\"failed\"} %llu\n", (unsigned long long)c->attempts_failed);
  metric_head(&b, "webhook_attempt_responses_total", "counter",
              "Attempts by the class of their HTTP status; none: no response (connection failed, timed out).");
  static const char *const classes[WH__CLASSES] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < WH__CLASSES; i++)
    putf(&b, "webhook_attempt_responses_total{class=\"%s\"} %llu\n", classes[i], (unsigned long long)c->by_class[i]);
  duration_histogram(&b, c);
  metric_one(&b, "webhook_deliveries_in_flight", "gauge",
             "Deliveries being attempted now, or whose outcome is being recorded.", (unsigned long long)t.in_flight);
  metric_one(&b, "webhook_deliveries_due", "gauge",
             "Deliveries held in memory that are due now and wait for a free slot, a token of their endpoint's "
             "rate limit or its breaker.",
             (unsigned long long)t.due);
  metric_one(&b, "webhook_deliveries_scheduled", "gauge",
             "Deliveries held in memory that wait for a later time (a retry's delay).",
             (unsigned long long)t.scheduled);
  metric_head(&b, "webhook_endpoints", "gauge", "Endpoints in the registry, by state.");
  putf(&b, "webhook_endpoints{state=\"enabled\"} %zu\n", t.endpoints_enabled);
  putf(&b, "webhook_endpoints{state=\"disabled\"} %zu\n", t.endpoints_disabled);
  metric_one(&b, "webhook_breakers_open", "gauge",
             "Endpoints whose circuit breaker is open or half-open (not closed).", (unsigned long long)c->breakers_open);
  metric_one(&b, "webhook_results_dropped_total", "counter",
             "Outcomes dropped from a full result queue (WH_OPT_RESULT_QUEUE).", (unsigned long long)t.results_dropped);
  metric_head(&b, "webhook_operational_events_total", "counter",
              "Operational events (webhook.*) about endpoints: emitted, or suppressed (over their rate bound, or "
              "no subscriber).");
  putf(&b, "webhook_operational_events_total{outcome=\"emitted\"} %llu\n", (unsigned long long)c->ops_emitted);
  putf(&b, "webhook_operational_events_total{outcome=\"suppressed\"} %llu\n", (unsigned long long)c->ops_suppressed);
  metric_one(&b, "webhook_store_errors_total", "counter",
             "Store operations of the dispatcher that failed (loading due work, retention, lease renewal).",
             (unsigned long long)c->store_errors);
  metric_one(&b, "webhook_dispatcher_start_time_seconds", "gauge",
             "When this dispatcher started, in seconds since the Unix epoch; 0 before it starts.",
             (unsigned long long)(t.started_ms / 1000));
  return take(&b, text_out);
}
