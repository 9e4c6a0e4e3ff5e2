/* The event builder: the exact Casebook envelope, byte for byte. */
#include <webhook/webhook.h>

#include "support/check.h"

static const char *seed_resource =
  "{\n  \"marital_status\": {\n    \"name\": \"Single adult\",\n"
  "    \"id\": \"6120b81e-221c-11ea-978f-2e728ce88125\"\n  },\n"
  "  \"date_of_birth\": \"02/13/2023\",\n"
  "  \"sex\": {\"name\": \"Male\", \"id\": \"b149d056-6a9f-46ee-afde-1aec972dbe9f\"},\n"
  "  \"last_name\": \"Doe\", \"hispanic_or_latino\": \"no\",\n"
  "  \"id\": \"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\", \"first_name\": \"John\"\n}";

static char *to_json(const wh_event *ev)
{
  char *s = NULL;
  CHECK_OK(wh_event_to_json(ev, &s));
  return s;
}

static void seed_event(void)
{
  wh_event *ev;
  CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
  CHECK_OK(wh_event_set_resource_json(ev, seed_resource));
  CHECK_OK(wh_event_set_tenant_id(ev, "be461bd7-2d91-41c6-ab29-4389066bcc71"));
  CHECK_OK(wh_event_set_user_id(ev, "f9762deb-a115-412d-adf7-cf772807734a"));
  CHECK_OK(wh_event_set_resource_id(ev, "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543"));
  /* 2024-03-26T18:53:16.818049Z */
  CHECK_OK(wh_event_set_time(ev, 1711479196818049LL));
  char *s = to_json(ev);
  CHECK_STR(s,
            "{\"resource\":{\"marital_status\":{\"name\":\"Single adult\",\"id\":\"6120b81e-221c-11ea-978f-"
            "2e728ce88125\"},\"date_of_birth\":\"02/13/2023\",\"sex\":{\"name\":\"Male\",\"id\":\"b149d056-"
            "6a9f-46ee-afde-1aec972dbe9f\"},\"last_name\":\"Doe\",\"hispanic_or_latino\":\"no\",\"id\":"
            "\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\",\"first_name\":\"John\"},"
            "\"tenant_id\":\"be461bd7-2d91-41c6-ab29-4389066bcc71\","
            "\"user_id\":\"f9762deb-a115-412d-adf7-cf772807734a\","
            "\"resource_id\":\"eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543\","
            "\"resource_type\":\"people\",\"event_type\":\"CREATE\","
            "\"event_time\":\"2024-03-26T18:53:16.818049Z\"}");
  wh_free(s);
  wh_event_free(ev);
}

static void defaults_and_nulls(void)
{
  wh_event *ev;
  CHECK_OK(wh_event_new(&ev, "cases", "UPDATE"));
  CHECK_OK(wh_event_set_time(ev, 0));
  char *s = to_json(ev);
  CHECK_STR(s, "{\"resource\":{},\"tenant_id\":null,\"user_id\":null,\"resource_id\":null,"
               "\"resource_type\":\"cases\",\"event_type\":\"UPDATE\","
               "\"event_time\":\"1970-01-01T00:00:00.000000Z\"}");
  wh_free(s);
  /* Setting an id and clearing it again gives null back. */
  CHECK_OK(wh_event_set_user_id(ev, "u1"));
  CHECK_OK(wh_event_set_user_id(ev, NULL));
  s = to_json(ev);
  CHECK(strstr(s, "\"user_id\":null") != NULL);
  wh_free(s);
  wh_event_free(ev);

  /* The default time is now, with microseconds, in UTC. */
  CHECK_OK(wh_event_new(&ev, "people", "DELETE"));
  s = to_json(ev);
  const char *t = strstr(s, "\"event_time\":\"");
  CHECK(t != NULL);
  if (t) {
    t += 14;
    CHECK(strlen(t) == 29); /* 2024-03-26T18:53:16.818049Z"} */
    CHECK(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[26] == 'Z');
    CHECK(strncmp(t, "20", 2) == 0);
  }
  wh_free(s);
  wh_event_free(ev);
}

static void resource_carried_through(void)
{
  wh_event *ev;
  CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
  CHECK_OK(wh_event_set_time(ev, 1711479196818049LL));
  /* Key order, big and precise numbers, escapes, raw unicode, nesting, empties. */
  const char *in = "{ \"z\" : 1.10, \"a\":18446744073709551617, \"e\": -0.0e+10, \"s\":\"caf\\u00e9 \xc3\xa9 "
                   "\xf0\x9f\x98\x80 \\ud83d\\ude00 \\\"q\\\" \\n\", \"n\": [ [], {}, [null, true, false] ],"
                   " \"dup\": 1, \"dup\": 2 }";
  CHECK_OK(wh_event_set_resource_json(ev, in));
  char *s = to_json(ev);
  CHECK(strncmp(s,
                "{\"resource\":{\"z\":1.10,\"a\":18446744073709551617,\"e\":-0.0e+10,\"s\":\"caf\\u00e9 \xc3\xa9 "
                "\xf0\x9f\x98\x80 \\ud83d\\ude00 \\\"q\\\" \\n\",\"n\":[[],{},[null,true,false]],\"dup\":1,"
                "\"dup\":2},",
                strlen("{\"resource\":{\"z\":1.10,\"a\":18446744073709551617,\"e\":-0.0e+10,\"s\":\"caf\\u00e9 "
                       "\xc3\xa9 \xf0\x9f\x98\x80 \\ud83d\\ude00 \\\"q\\\" \\n\",\"n\":[[],{},[null,true,false]],"
                       "\"dup\":1,\"dup\":2},")) == 0);
  wh_free(s);

  /* Ids are escaped as JSON strings. */
  CHECK_OK(wh_event_set_tenant_id(ev, "t\"1\\\n\x01\xc3\xa9"));
  s = to_json(ev);
  CHECK(strstr(s, "\"tenant_id\":\"t\\\"1\\\\\\n\\u0001\xc3\xa9\"") != NULL);
  wh_free(s);
  wh_event_free(ev);
}

static void refusals(void)
{
  wh_event *ev = (wh_event *)1;
  CHECK_ERR(wh_event_new(&ev, "people.x", "CREATE"), WH_EINVAL, "resource_type");
  CHECK(ev == NULL);
  CHECK_ERR(wh_event_new(&ev, "", "CREATE"), WH_EINVAL, "resource_type");
  CHECK_ERR(wh_event_new(&ev, "people", ""), WH_EINVAL, "event_type");
  CHECK_ERR(wh_event_new(&ev, "people", NULL), WH_EINVAL, "event_type");
  CHECK_ERR(wh_event_new(&ev, "people", "CRE ATE"), WH_EINVAL, "event_type");
  CHECK_ERR(wh_event_new(&ev, "people", "*"), WH_EINVAL, "event_type");
  CHECK_ERR(wh_event_new(NULL, "people", "CREATE"), WH_EINVAL, NULL);
  char long_name[70];
  memset(long_name, 'a', 65);
  long_name[65] = '\0';
  CHECK_ERR(wh_event_new(&ev, long_name, "CREATE"), WH_EINVAL, "64");
  long_name[64] = '\0';
  CHECK_OK(wh_event_new(&ev, long_name, "A-b_9"));
  wh_event_free(ev);

  CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
  static const char *bad[] = {
    "[]", "\"x\"", "42", "null", "", "   ", "{", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":01}",
    "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":\"\\x\"}",
    "{\"a\":\"\\u12\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800x\"}", "{\"a\":\"tab\there\"}",
    "{\"a\":1} {}", "{\"a\":1}x", "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":[1,]}", "{\"a\":NaN}", "{'a':1}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = wh_event_set_resource_json(ev, bad[i]);
    if (rc != WH_EINVAL)
      fprintf(stderr, "accepted bad resource #%zu: %s\n", i, bad[i]);
    CHECK_INT(rc, WH_EINVAL);
    CHECK(strstr(wh_error_last(), "resource") != NULL);
  }
  CHECK_ERR(wh_event_set_resource_json(ev, "[1,2]"), WH_EINVAL, "must be a JSON object");
  CHECK_ERR(wh_event_set_resource_json(ev, NULL), WH_EINVAL, "resource");
  /* The refused values left the last good resource in place. */
  CHECK_OK(wh_event_set_resource_json(ev, "{\"ok\":true}"));
  CHECK_ERR(wh_event_set_resource_json(ev, "{\"ok\":"), WH_EINVAL, NULL);
  char *s = to_json(ev);
  CHECK(strncmp(s, "{\"resource\":{\"ok\":true},", 24) == 0);
  wh_free(s);

  /* Deep nesting is refused cleanly, without recursion. */
  size_t depth = 100000;
  char *deep = malloc(depth * 2 + 3);
  deep[0] = '{';
  deep[1] = '"';
  deep[2] = 'a';
  deep[3] = '"';
  deep[4] = ':';
  size_t k = 5;
  for (size_t i = 0; i < depth; i++)
    deep[k++] = '[';
  deep[k] = '\0';
  CHECK_ERR(wh_event_set_resource_json(ev, deep), WH_EINVAL, "nested");
  free(deep);

  CHECK_ERR(wh_event_set_time(ev, -1), WH_EINVAL, "event_time");
  CHECK_ERR(wh_event_set_time(ev, 253402300800000000LL), WH_EINVAL, "event_time");
  CHECK_ERR(wh_event_set_tenant_id(ev, "\xff"), WH_EINVAL, "tenant_id");
  CHECK_ERR(wh_event_set_user_id(NULL, "x"), WH_EINVAL, NULL);
  CHECK_ERR(wh_event_to_json(ev, NULL), WH_EINVAL, NULL);
  CHECK_ERR(wh_event_to_json(NULL, &s), WH_EINVAL, NULL);
  wh_event_free(ev);
  wh_event_free(NULL);
}

int main(void)
{
  seed_event();
  defaults_and_nulls();
  resource_carried_through();
  refusals();
  return check_done("event");
}
