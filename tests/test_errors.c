/* Error codes, their fixed texts and the thread-local detail message. */
#include <webhook/webhook.h>

#include "support/check.h"

#include <pthread.h>

static void *other_thread(void *p)
{
  (void)p;
  /* A failure here must not show on the main thread. */
  wh_event *ev;
  wh_event_new(&ev, "bad type", "X");
  return (void *)(strstr(wh_error_last(), "resource_type") != NULL ? (void *)1 : NULL);
}

int main(void)
{
  CHECK_STR(wh_version(), "1.1.0");
  CHECK_INT(wh_version_num(), WH_VERSION_NUM);
  CHECK_INT(WH_VERSION_NUM, (WH_VERSION_MAJOR << 16) | (WH_VERSION_MINOR << 8) | WH_VERSION_PATCH);
  /* The numbers are part of the ABI. */
  CHECK_INT(WH_OK, 0);
  CHECK_INT(WH_EINVAL, 1);
  CHECK_INT(WH_ENOMEM, 2);
  CHECK_INT(WH_ENOTFOUND, 3);
  CHECK_INT(WH_EEXIST, 4);
  CHECK_INT(WH_ESTATE, 5);
  CHECK_INT(WH_EFULL, 6);
  CHECK_INT(WH_ESTORE, 7);
  CHECK_INT(WH_ETIMEOUT, 8);
  CHECK_INT(WH_ESIGNATURE, 9);
  CHECK_INT(WH_ETIMESTAMP, 10);
  CHECK_INT(WH_EPOLICY, 11);
  CHECK_INT(WH_ERANGE, 12);
  for (int c = 0; c <= 12; c++) {
    CHECK(wh_strerror(c) != NULL && *wh_strerror(c));
    for (int d = 0; d < c; d++)
      CHECK(strcmp(wh_strerror(c), wh_strerror(d)) != 0);
  }
  CHECK_STR(wh_strerror(-1), "unknown error");
  CHECK_STR(wh_strerror(9999), "unknown error");

  CHECK_STR(wh_error_last(), "");
  wh_event *ev;
  CHECK_ERR(wh_event_new(&ev, "people", "bad type"), WH_EINVAL, "event_type");
  /* Success leaves the message alone. */
  CHECK_OK(wh_event_new(&ev, "people", "CREATE"));
  CHECK(strstr(wh_error_last(), "event_type") != NULL);
  pthread_t t;
  void *seen = NULL;
  pthread_create(&t, NULL, other_thread, NULL);
  pthread_join(t, &seen);
  CHECK(seen != NULL);
  CHECK(strstr(wh_error_last(), "event_type") != NULL);
  CHECK(strstr(wh_error_last(), "resource_type") == NULL);
  wh_event_free(ev);
  wh_free(NULL);
  return check_done("errors");
}
