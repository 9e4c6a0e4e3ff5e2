/*
 * whctl: the outgoing webhooks of a libwebhook store, from the command line,
 * for operators. Every command is a request of the admin API
 * (docs/openapi.yaml) answered by wh_admin_handle, so it checks and refuses
 * exactly what the admin page does. See whctl(1) (tools/whctl.1).
 *
 *   whctl --store sqlite:app.db endpoints list
 *   whctl --store sqlite:app.db --tenant acme endpoints add "CRM" https://crm.example.com/hooks
 *   whctl --store sqlite:app.db --json messages show msg_...
 *
 * A SQLite store is one process's: while an application has it open, whctl
 * cannot open it (the store's lock) and says which process holds it. While
 * whctl has it, it is that process: what it queues (a test event, a replay,
 * a recovery) it delivers itself, with a dispatcher, and waits for. With
 * PostgreSQL the applications' dispatchers deliver, and whctl waits on the
 * attempt log.
 */
#include <webhook/webhook.h>

#include <cjson/cJSON.h>

#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Exit codes (whctl(1), EXIT STATUS). */
enum {
  EXIT_DONE = 0,
  EXIT_FAILED = 1,    /* the delivery asked for failed */
  EXIT_USAGE = 2,
  EXIT_NOT_FOUND = 3,
  EXIT_REFUSED = 4,   /* a bad argument: 400, 413, 422 */
  EXIT_CONFLICT = 5,  /* 409: name taken, tenant full, nothing to deliver */
  EXIT_STORE = 6,     /* the store cannot be opened (held by another process) or failed */
  EXIT_PENDING = 7    /* still not delivered when the wait ran out */
};

typedef struct {
  const char *store, *tenant;
  int json, allow_private;
  long wait_s;
  /* command options */
  const char *description, *endpoint, *since, *limit, *grace;
  const char *filters[64];
  int nfilters, rotate, help;
  const char *words[8];
  int nwords;
  /* opened */
  wh_registry *root, *reg;
  wh_dispatcher *d;
} ctl;

static int usage_to(FILE *f, int code)
{
  fputs("usage: whctl [--store STORE] [--tenant T] [--json] [--wait SECONDS] [--allow-private] COMMAND\n"
        "commands:\n"
        "  endpoints list\n"
        "  endpoints add NAME URL [--description D] [--filter PATTERN]...\n"
        "  endpoints show|enable|disable|remove ID\n"
        "  endpoints secret ID [--rotate [--grace SECONDS]]\n"
        "  endpoints test ID\n"
        "  messages show ID\n"
        "  replay MSG_ID [--endpoint ID]\n"
        "  failed EP_ID [--since TIME] [--limit N]\n"
        "  recover EP_ID [--since TIME]\n"
        "STORE: sqlite:PATH, postgresql://... or memory: (default: $WEBHOOK_STORE). See whctl(1).\n",
        f);
  return code;
}

static int usage(void) { return usage_to(stderr, EXIT_USAGE); }

static void fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("whctl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- the request -------------------------------------------------------------------- */

typedef struct {
  int status;
  char *text;
  cJSON *doc;
} answer;

static void answer_free(answer *a)
{
  wh_free(a->text);
  cJSON_Delete(a->doc);
  memset(a, 0, sizeof *a);
}

/* One request of the admin API; body (taken) may be NULL. */
static int request(ctl *c, const char *method, const char *path, cJSON *body, answer *out)
{
  char *text = body ? cJSON_PrintUnformatted(body) : NULL;
  cJSON_Delete(body);
  memset(out, 0, sizeof *out);
  int rc = wh_admin_handle(c->reg, c->d, method, path, text, text ? strlen(text) : 0, &out->status, &out->text);
  free(text);
  if (rc != WH_OK) {
    fail("%s", wh_error_last());
    return EXIT_STORE;
  }
  out->doc = *out->text ? cJSON_Parse(out->text) : NULL;
  return EXIT_DONE;
}

/* An error answer: its message, and the exit code that says what happened. */
static int refused(const answer *a)
{
  const cJSON *err = cJSON_GetObjectItem(a->doc, "error");
  const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(err, "message"));
  fail("%s", msg ? msg : a->text);
  switch (a->status) {
  case 404: return EXIT_NOT_FOUND;
  case 409: return EXIT_CONFLICT;
  case 503: return EXIT_STORE;
  default: return EXIT_REFUSED;
  }
}

/* Ids go into the path: anything but an id's characters is percent-encoded. */
static void path_of(char *out, size_t len, const char *fmt, const char *id)
{
  char enc[3 * 256 + 1];
  size_t k = 0;
  for (const unsigned char *p = (const unsigned char *)id; *p && k + 4 < sizeof enc; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
      enc[k++] = (char)*p;
    else
      k += (size_t)snprintf(enc + k, sizeof enc - k, "%%%02X", *p);
  }
  enc[k] = '\0';
  snprintf(out, len, fmt, enc);
}

/* ---- printing ---------------------------------------------------------------------------- */

static const char *str(const cJSON *o, const char *key)
{
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
  return s ? s : "";
}

static void print_json(const answer *a)
{
  if (a->text && *a->text)
    printf("%s\n", a->text);
}

/* Columns as wide as their widest cell. */
static void table(const char *const *heads, int ncols, cJSON *rows, const char *const *keys)
{
  size_t w[8] = {0};
  for (int k = 0; k < ncols; k++)
    w[k] = strlen(heads[k]);
  for (cJSON *r = rows ? rows->child : NULL; r; r = r->next)
    for (int k = 0; k < ncols; k++)
      if (strlen(str(r, keys[k])) > w[k])
        w[k] = strlen(str(r, keys[k]));
  for (int k = 0; k < ncols; k++)
    printf("%-*s%s", k + 1 < ncols ? (int)w[k] : 0, heads[k], k + 1 < ncols ? "  " : "\n");
  for (cJSON *r = rows ? rows->child : NULL; r; r = r->next)
    for (int k = 0; k < ncols; k++)
      printf("%-*s%s", k + 1 < ncols ? (int)w[k] : 0, str(r, keys[k]), k + 1 < ncols ? "  " : "\n");
}

/* Text cells for the tables: "state", "last". */
static void add_text(cJSON *o, const char *key, const char *text)
{
  cJSON_DeleteItemFromObject(o, key);
  cJSON_AddStringToObject(o, key, text);
}

static const char *state_of(const cJSON *ep, char *buf, size_t len)
{
  if (cJSON_IsTrue(cJSON_GetObjectItem(ep, "enabled")))
    return "enabled";
  const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(ep, "disabled_reason"));
  if (!why)
    return "disabled";
  snprintf(buf, len, "disabled (%s)", why);
  return buf;
}

static void print_endpoint(const cJSON *ep)
{
  char buf[300], *s;
  printf("id:          %s\n", str(ep, "id"));
  printf("name:        %s\n", str(ep, "name"));
  printf("url:         %s\n", str(ep, "url"));
  printf("description: %s\n", str(ep, "description"));
  printf("state:       %s\n", state_of(ep, buf, sizeof buf));
  const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItem(ep, "tenant_id"));
  printf("tenant:      %s\n", tenant ? tenant : "(platform)");
  printf("created:     %s\n", str(ep, "created_at"));
  printf("filters:    ");
  const cJSON *f = cJSON_GetObjectItem(ep, "filters");
  if (!cJSON_GetArraySize(f))
    printf(" (every event)");
  for (const cJSON *it = f ? f->child : NULL; it; it = it->next)
    printf(" %s", it->valuestring);
  printf("\n");
  for (const cJSON *h = cJSON_GetObjectItem(ep, "headers")->child; h; h = h->next)
    printf("header:      %s: %s\n", h->string, cJSON_GetStringValue(h));
  s = cJSON_PrintUnformatted(cJSON_GetObjectItem(ep, "settings"));
  printf("settings:    %s\n", s ? s : "{}");
  free(s);
}

static void print_attempt(const cJSON *a)
{
  const cJSON *st = cJSON_GetObjectItem(a, "http_status");
  char status[32] = "-";
  if (cJSON_IsNumber(st))
    snprintf(status, sizeof status, "HTTP %d", st->valueint);
  printf("    attempt %d  %s  %s  %d ms  %s\n", cJSON_GetObjectItem(a, "attempt")->valueint, str(a, "at"), status,
         (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "duration_ms")), str(a, "error"));
}

static void print_message(const cJSON *m)
{
  printf("message:  %s\n", str(m, "id"));
  printf("event:    %s\n", str(m, "event_type"));
  printf("created:  %s\n", str(m, "created_at"));
  const char *tenant = str(cJSON_GetObjectItem(m, "payload"), "tenant_id");
  printf("tenant:   %s\n", *tenant ? tenant : "(none)");
  for (const cJSON *d = cJSON_GetObjectItem(m, "deliveries")->child; d; d = d->next) {
    printf("delivery to %s: %s, %d attempt(s)", str(d, "endpoint_id"), str(d, "state"),
           (int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "attempts_made")));
    if (*str(d, "next_attempt_at"))
      printf(", next at %s", str(d, "next_attempt_at"));
    printf("\n");
    for (const cJSON *a = cJSON_GetObjectItem(d, "attempts")->child; a; a = a->next)
      print_attempt(a);
  }
}

/* ---- waiting for deliveries ------------------------------------------------------------------ */

static void nap_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Wait until every delivery of msg (to ep, or all) is done: its JSON in *out
   (the last answer). EXIT_DONE when all were delivered, EXIT_FAILED when one
   failed, EXIT_PENDING when the wait ran out. */
static int wait_message(ctl *c, const char *msg, const char *ep, answer *out)
{
  char path[1024];
  path_of(path, sizeof path, "/messages/%s", msg);
  for (long waited = 0;; waited += 100) {
    int rc = request(c, "GET", path, NULL, out);
    if (rc)
      return rc;
    if (out->status != 200)
      return refused(out);
    int pending = 0, failed = 0;
    for (const cJSON *d = cJSON_GetObjectItem(out->doc, "deliveries")->child; d; d = d->next) {
      if (ep && strcmp(str(d, "endpoint_id"), ep) != 0)
        continue;
      pending += strcmp(str(d, "state"), "pending") == 0;
      failed += strcmp(str(d, "state"), "failed") == 0;
    }
    if (!pending)
      return failed ? EXIT_FAILED : EXIT_DONE;
    if (waited >= c->wait_s * 1000)
      return EXIT_PENDING;
    answer_free(out);
    nap_ms(100);
  }
}

/* The outcome of a delivery to ep, for people: "delivered (HTTP 200)". */
static void print_outcome(const cJSON *m, const char *ep, const char *what)
{
  for (const cJSON *d = cJSON_GetObjectItem(m, "deliveries")->child; d; d = d->next) {
    if (ep && strcmp(str(d, "endpoint_id"), ep) != 0)
      continue;
    const cJSON *atts = cJSON_GetObjectItem(d, "attempts");
    const cJSON *last = cJSON_GetArrayItem(atts, cJSON_GetArraySize(atts) - 1);
    const cJSON *st = cJSON_GetObjectItem(last, "http_status");
    printf("%s to %s: %s", what, str(d, "endpoint_id"), str(d, "state"));
    if (cJSON_IsNumber(st))
      printf(" (HTTP %d)", st->valueint);
    else if (last && *str(last, "error"))
      printf(" (%s)", str(last, "error"));
    printf("\n");
  }
}

/* ---- the commands ------------------------------------------------------------------------- */

/* A request whose answer is printed as it is (--json) or by show(). */
static int simple(ctl *c, const char *method, const char *path, cJSON *body, int ok_status,
                  void (*show)(ctl *c, const answer *a))
{
  answer a;
  int rc = request(c, method, path, body, &a);
  if (!rc && a.status != ok_status)
    rc = refused(&a);
  else if (!rc && c->json)
    print_json(&a);
  else if (!rc)
    show(c, &a);
  answer_free(&a);
  return rc;
}

static void show_list(ctl *c, const answer *a)
{
  static const char *const heads[] = {"ID", "NAME", "STATE", "TENANT", "URL"};
  static const char *const keys[] = {"id", "name", "state", "tenant", "url"};
  char buf[300];
  for (cJSON *ep = a->doc->child; ep; ep = ep->next) {
    add_text(ep, "state", state_of(ep, buf, sizeof buf));
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(ep, "tenant_id"));
    add_text(ep, "tenant", t ? t : "-");
  }
  table(heads, 5, a->doc, keys);
}

static void show_endpoint(ctl *c, const answer *a) { print_endpoint(a->doc); }

static void show_added(ctl *c, const answer *a)
{
  printf("%s\n", str(a->doc, "id"));
}

static void show_state(ctl *c, const answer *a)
{
  char buf[300];
  printf("%s: %s\n", str(a->doc, "id"), state_of(a->doc, buf, sizeof buf));
}

static void show_removed(ctl *c, const answer *a) { printf("removed %s\n", c->words[2]); }
static void show_secret(ctl *c, const answer *a) { printf("%s\n", str(a->doc, "secret")); }
static void show_message(ctl *c, const answer *a) { print_message(a->doc); }

static void show_failed(ctl *c, const answer *a)
{
  static const char *const heads[] = {"MESSAGE", "EVENT", "FINISHED", "ATTEMPTS", "LAST"};
  static const char *const keys[] = {"message_id", "event_type", "finished_at", "attempts", "last"};
  for (cJSON *f = a->doc->child; f; f = f->next) {
    char buf[300];
    snprintf(buf, sizeof buf, "%d", (int)cJSON_GetNumberValue(cJSON_GetObjectItem(f, "attempts_made")));
    add_text(f, "attempts", buf);
    const cJSON *st = cJSON_GetObjectItem(f, "last_http_status");
    if (cJSON_IsNumber(st))
      snprintf(buf, sizeof buf, "HTTP %d", st->valueint);
    else
      snprintf(buf, sizeof buf, "%s", str(f, "last_error"));
    add_text(f, "last", buf);
  }
  table(heads, 5, a->doc, keys);
}

static int cmd_add(ctl *c)
{
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "name", c->words[2]);
  cJSON_AddStringToObject(b, "url", c->words[3]);
  if (c->description)
    cJSON_AddStringToObject(b, "description", c->description);
  if (c->nfilters) {
    cJSON *f = cJSON_AddArrayToObject(b, "filters");
    for (int i = 0; i < c->nfilters; i++)
      cJSON_AddItemToArray(f, cJSON_CreateString(c->filters[i]));
  }
  return simple(c, "POST", "/endpoints", b, 201, show_added);
}

static int cmd_secret(ctl *c, const char *id)
{
  char path[1024];
  if (!c->rotate) {
    path_of(path, sizeof path, "/endpoints/%s/secret", id);
    return simple(c, "GET", path, NULL, 200, show_secret);
  }
  cJSON *b = cJSON_CreateObject();
  if (c->grace) {
    char *end;
    long g = strtol(c->grace, &end, 10);
    if (*end || !*c->grace) {
      cJSON_Delete(b);
      fail("--grace: a number of seconds");
      return EXIT_USAGE;
    }
    cJSON_AddNumberToObject(b, "grace_seconds", (double)g);
  }
  path_of(path, sizeof path, "/endpoints/%s/secret/rotate", id);
  return simple(c, "POST", path, b, 200, show_secret);
}

/* Send a test event, then wait for its outcome. */
static int cmd_test(ctl *c, const char *id)
{
  char path[1024];
  path_of(path, sizeof path, "/endpoints/%s/test", id);
  answer a, m;
  int rc = request(c, "POST", path, NULL, &a);
  if (!rc && a.status != 202)
    rc = refused(&a);
  if (rc) {
    answer_free(&a);
    return rc;
  }
  const char *msg = str(a.doc, "message_id");
  rc = wait_message(c, msg, id, &m);
  if (rc == EXIT_DONE || rc == EXIT_FAILED || rc == EXIT_PENDING) {
    if (c->json)
      print_json(&m);
    else if (rc == EXIT_PENDING)
      printf("test event %s to %s: not answered within %ld s\n", msg, id, c->wait_s);
    else {
      char what[128];
      snprintf(what, sizeof what, "test event %s", msg);
      print_outcome(m.doc, id, what);
    }
  }
  answer_free(&a);
  answer_free(&m);
  return rc;
}

static int cmd_replay(ctl *c, const char *msg)
{
  char path[1024];
  path_of(path, sizeof path, "/messages/%s/replay", msg);
  cJSON *b = cJSON_CreateObject();
  if (c->endpoint)
    cJSON_AddStringToObject(b, "endpoint_id", c->endpoint);
  answer a, m = {0};
  int rc = request(c, "POST", path, b, &a);
  if (!rc && a.status != 202)
    rc = refused(&a);
  int queued = rc ? 0 : (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a.doc, "queued"));
  if (!rc && queued)
    rc = wait_message(c, msg, c->endpoint, &m);
  if (rc == EXIT_DONE || rc == EXIT_FAILED || rc == EXIT_PENDING) {
    if (c->json)
      print_json(queued ? &m : &a);
    else if (!queued)
      printf("nothing to replay: every delivery of %s is still pending\n", msg);
    else if (rc == EXIT_PENDING)
      printf("replayed %s (%d deliveries): not all answered within %ld s\n", msg, queued, c->wait_s);
    else
      print_outcome(m.doc, c->endpoint, "replay");
  }
  answer_free(&a);
  answer_free(&m);
  return rc;
}

static int cmd_failed(ctl *c, const char *id)
{
  char path[4096], query[2200] = "";
  path_of(path, sizeof path, "/endpoints/%s/failed", id);
  /* The values go into the query string: percent-encoded (an offset's '+'). */
  const char *names[2] = {"since", "limit"}, *values[2] = {c->since, c->limit};
  for (int i = 0; i < 2; i++) {
    if (!values[i])
      continue;
    char enc[1024];
    path_of(enc, sizeof enc, "%s", values[i]);
    size_t used = strlen(query);
    snprintf(query + used, sizeof query - used, "%s%s=%s", used ? "&" : "?", names[i], enc);
  }
  strncat(path, query, sizeof path - strlen(path) - 1);
  return simple(c, "GET", path, NULL, 200, show_failed);
}

static int cmd_recover(ctl *c, const char *id)
{
  char path[1024];
  path_of(path, sizeof path, "/endpoints/%s/recover", id);
  cJSON *b = cJSON_CreateObject();
  if (c->since)
    cJSON_AddStringToObject(b, "since", c->since);
  answer a;
  int rc = request(c, "POST", path, b, &a);
  if (!rc && a.status != 202)
    rc = refused(&a);
  int queued = rc ? 0 : (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a.doc, "queued"));
  /* Our own dispatcher (SQLite, memory): give the queued work the wait to go out. */
  if (!rc && queued && c->d)
    wh_dispatcher_drain(c->d, (int)(c->wait_s * 1000));
  if (!rc && c->json)
    print_json(&a);
  else if (!rc)
    printf("queued %d failed deliveries of %s again\n", queued, id);
  answer_free(&a);
  return rc;
}

static int run(ctl *c)
{
  const char *const *w = c->words;
  int n = c->nwords;
  char path[1024];
  if (n == 2 && strcmp(w[0], "endpoints") == 0 && strcmp(w[1], "list") == 0)
    return simple(c, "GET", "/endpoints", NULL, 200, show_list);
  if (n == 4 && strcmp(w[0], "endpoints") == 0 && strcmp(w[1], "add") == 0)
    return cmd_add(c);
  if (n == 3 && strcmp(w[0], "endpoints") == 0) {
    path_of(path, sizeof path, "/endpoints/%s", w[2]);
    if (strcmp(w[1], "show") == 0)
      return simple(c, "GET", path, NULL, 200, show_endpoint);
    if (strcmp(w[1], "enable") == 0 || strcmp(w[1], "disable") == 0) {
      cJSON *b = cJSON_CreateObject();
      cJSON_AddBoolToObject(b, "enabled", w[1][0] == 'e');
      return simple(c, "PATCH", path, b, 200, show_state);
    }
    if (strcmp(w[1], "remove") == 0)
      return simple(c, "DELETE", path, NULL, 204, show_removed);
    if (strcmp(w[1], "secret") == 0)
      return cmd_secret(c, w[2]);
    if (strcmp(w[1], "test") == 0)
      return cmd_test(c, w[2]);
  }
  if (n == 3 && strcmp(w[0], "messages") == 0 && strcmp(w[1], "show") == 0) {
    path_of(path, sizeof path, "/messages/%s", w[2]);
    return simple(c, "GET", path, NULL, 200, show_message);
  }
  if (n == 2 && strcmp(w[0], "replay") == 0)
    return cmd_replay(c, w[1]);
  if (n == 2 && strcmp(w[0], "failed") == 0)
    return cmd_failed(c, w[1]);
  if (n == 2 && strcmp(w[0], "recover") == 0)
    return cmd_recover(c, w[1]);
  return usage();
}

/* ---- options, opening ------------------------------------------------------------------------- */

static int parse(ctl *c, int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **slot = NULL;
    if (strcmp(a, "--json") == 0)
      c->json = 1;
    else if (strcmp(a, "--allow-private") == 0)
      c->allow_private = 1;
    else if (strcmp(a, "--rotate") == 0)
      c->rotate = 1;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
      c->help = 1;
    else if (strcmp(a, "--store") == 0)
      slot = &c->store;
    else if (strcmp(a, "--tenant") == 0)
      slot = &c->tenant;
    else if (strcmp(a, "--description") == 0)
      slot = &c->description;
    else if (strcmp(a, "--endpoint") == 0)
      slot = &c->endpoint;
    else if (strcmp(a, "--since") == 0)
      slot = &c->since;
    else if (strcmp(a, "--limit") == 0)
      slot = &c->limit;
    else if (strcmp(a, "--grace") == 0)
      slot = &c->grace;
    else if (strcmp(a, "--filter") == 0 && v && c->nfilters < 64)
      c->filters[c->nfilters++] = argv[++i];
    else if (strcmp(a, "--wait") == 0 && v) {
      char *end;
      c->wait_s = strtol(argv[++i], &end, 10);
      if (*end || c->wait_s < 0 || c->wait_s > 86400)
        return 0;
    } else if (strncmp(a, "--", 2) == 0 || c->nwords == 8)
      return 0;
    else
      c->words[c->nwords++] = a;
    if (slot) {
      if (!v)
        return 0;
      *slot = argv[++i];
    }
  }
  return c->nwords > 0;
}

/* Does this command queue deliveries (so that, on a store only we hold, we deliver them)? */
static int queues_work(const ctl *c)
{
  const char *w0 = c->words[0];
  return strcmp(w0, "replay") == 0 || strcmp(w0, "recover") == 0 ||
         (c->nwords == 3 && strcmp(w0, "endpoints") == 0 && strcmp(c->words[1], "test") == 0);
}

/* Does this command change the store? (Reading one that an application has
   open is fine; changing it is not: see open_store.) */
static int changes_store(const ctl *c)
{
  const char *w0 = c->words[0], *w1 = c->nwords > 1 ? c->words[1] : "";
  if (strcmp(w0, "messages") == 0 || strcmp(w0, "failed") == 0)
    return 0;
  if (strcmp(w0, "endpoints") == 0)
    return !(strcmp(w1, "list") == 0 || strcmp(w1, "show") == 0 || (strcmp(w1, "secret") == 0 && !c->rotate));
  return 1;
}

/* The process id of an application that has the SQLite store open, 0 when none
   does (-1: one does, its id unknown). The library holds PATH.lock shared while
   a store is open (lib/stores/filelock.c); nobody else does when we can hold
   it exclusively. */
static long sqlite_holder(const char *path)
{
  char lock[4200];
  snprintf(lock, sizeof lock, "%s.lock", path);
  int fd = open(lock, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  long pid = 0;
  int fd2 = open(lock, O_RDWR | O_CLOEXEC);
  if (fd2 >= 0 && fcntl(fd2, F_OFD_SETLK, &fl) != 0 && (errno == EAGAIN || errno == EACCES)) {
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid <= 0)
      pid = -1;
  }
  if (fd2 >= 0)
    close(fd2);
  close(fd);
  return pid;
}

static int open_store(ctl *c)
{
  /* A SQLite store is one application's while it runs: it holds its endpoints
     in memory (it would not see ours) and delivers from the file. Reading is
     fine; a change waits until it stops. */
  long holder = strncmp(c->store, "sqlite:", 7) == 0 && changes_store(c) ? sqlite_holder(c->store + 7) : 0;
  if (holder) {
    char who[48] = "another process";
    if (holder > 0)
      snprintf(who, sizeof who, "process %ld", holder);
    fail("%s: held by %s, which has it open", c->store, who);
    fprintf(stderr, "whctl: a SQLite store is one application's while it runs: stop the application that has it "
                    "open, or use its admin page (nothing was changed)\n");
    return EXIT_STORE;
  }
  if (wh_registry_open(&c->root, c->store) != WH_OK) {
    fail("cannot open the store: %s", wh_error_last());
    return EXIT_STORE;
  }
  c->reg = c->root;
  if (c->tenant && wh_registry_open_tenant(&c->reg, c->root, c->tenant) != WH_OK) {
    fail("--tenant: %s", wh_error_last());
    return EXIT_USAGE;
  }
  /* With PostgreSQL the applications deliver; elsewhere whctl is the one process. */
  int shared = strncmp(c->store, "postgres", 8) == 0;
  if (!shared && queues_work(c) &&
      (wh_dispatcher_new(&c->d, c->root) != WH_OK ||
       wh_dispatcher_set_int(c->d, WH_OPT_ALLOW_PRIVATE_NETWORKS, c->allow_private) != WH_OK ||
       wh_dispatcher_start(c->d) != WH_OK)) {
    fail("cannot start delivering: %s", wh_error_last());
    return EXIT_STORE;
  }
  return EXIT_DONE;
}

int main(int argc, char **argv)
{
  ctl c = {.wait_s = 30};
  int parsed = parse(&c, argc, argv);
  if (c.help)
    return usage_to(stdout, EXIT_DONE);
  if (!parsed)
    return usage();
  if (!c.store)
    c.store = getenv("WEBHOOK_STORE");
  if (!c.store || !*c.store) {
    fail("no store: give --store STORE (sqlite:PATH, postgresql://...) or set WEBHOOK_STORE");
    return EXIT_USAGE;
  }
  int rc = open_store(&c);
  if (!rc)
    rc = run(&c);
  if (c.d)
    wh_dispatcher_stop(c.d, 5000);
  wh_dispatcher_free(c.d);
  if (c.reg != c.root)
    wh_registry_free(c.reg);
  wh_registry_free(c.root);
  return rc;
}
