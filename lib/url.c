/* Endpoint URL rules, checked with libcurl's own URL parser so that what we
   accept is exactly what the transfer will later use. */
#include "internal.h"

#include <curl/curl.h>
#include <string.h>

static int ascii_prefix_eq(const char *s, const char *lower, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + 32);
    if (c != lower[i])
      return 0;
  }
  return 1;
}

int wh__url_validate(const char *what, const char *url)
{
  if (!url)
    return wh__fail(WH_EINVAL, "%s: must not be NULL", what);
  size_t n = strnlen(url, WH__URL_MAX + 1);
  if (n == 0)
    return wh__fail(WH_EINVAL, "%s: must not be empty", what);
  if (n > WH__URL_MAX)
    return wh__fail(WH_EINVAL, "%s: longer than %d bytes", what, WH__URL_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= 0x20 || c == 0x7f)
      return wh__fail(WH_EINVAL, "%s: control character or space at byte %zu", what, i);
  }
  /* It goes into JSON and onto the wire: valid UTF-8 only (an IDN host in
     UTF-8 is fine; curl converts it when it has IDN support). */
  if (!wh__utf8_valid(url, n))
    return wh__fail(WH_EINVAL, "%s: not valid UTF-8", what);
  const char *colon = strchr(url, ':');
  if (!colon || strncmp(colon, "://", 3) != 0)
    return wh__fail(WH_EINVAL, "%s: scheme must be http or https", what);
  size_t slen = (size_t)(colon - url);
  if (!((slen == 4 && ascii_prefix_eq(url, "http", 4)) || (slen == 5 && ascii_prefix_eq(url, "https", 5))))
    return wh__fail(WH_EINVAL, "%s: scheme must be http or https", what);

  /* libcurl forgives "http:///path" by taking "path" as the host; we do not. */
  char first = url[slen + 3];
  if (first == '\0' || first == '/' || first == '?' || first == '#')
    return wh__fail(WH_EINVAL, "%s: a host is required after \"%.*s://\"", what, (int)slen, url);

  CURLU *h = curl_url();
  if (!h)
    return wh__oom();
  int rc = WH_OK;
  CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, 0);
  char *part = NULL;
  if (uc != CURLUE_OK) {
    rc = wh__fail(WH_EINVAL, "%s: %s", what, curl_url_strerror(uc));
    goto out;
  }
  if (curl_url_get(h, CURLUPART_HOST, &part, 0) != CURLUE_OK || !part || !*part) {
    rc = wh__fail(WH_EINVAL, "%s: a host is required", what);
    goto out;
  }
  curl_free(part);
  part = NULL;
  if (curl_url_get(h, CURLUPART_USER, &part, 0) == CURLUE_OK ||
      curl_url_get(h, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
    rc = wh__fail(WH_EINVAL, "%s: must not contain credentials (user:password@); use a custom header",
                  what);
    goto out;
  }
out:
  curl_free(part);
  curl_url_cleanup(h);
  return rc;
}

int wh__proxy_validate(const char *what, const char *url, char **shown)
{
  if (shown)
    *shown = NULL;
  if (!url)
    return wh__fail(WH_EINVAL, "%s: must not be NULL", what);
  size_t n = strnlen(url, 4097);
  if (n == 0 || n > 4096)
    return wh__fail(WH_EINVAL, "%s: 1 to 4096 bytes", what);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
      return wh__fail(WH_EINVAL, "%s: control character or space at byte %zu", what, i);
  const char *colon = strchr(url, ':');
  size_t slen = colon ? (size_t)(colon - url) : 0;
  if (!colon || strncmp(colon, "://", 3) != 0 ||
      !((slen == 4 && ascii_prefix_eq(url, "http", 4)) || (slen == 5 && ascii_prefix_eq(url, "https", 5))))
    return wh__fail(WH_EINVAL, "%s: expected \"http://host:port\" (or https://)", what);
  CURLU *h = curl_url();
  if (!h)
    return wh__oom();
  int rc = WH_OK;
  char *host = NULL, *port = NULL, *path = NULL, *query = NULL, *password = NULL;
  CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK)
    rc = wh__fail(WH_EINVAL, "%s: %s", what, curl_url_strerror(uc));
  else if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
    rc = wh__fail(WH_EINVAL, "%s: a host is required", what);
  else if (curl_url_get(h, CURLUPART_PORT, &port, 0) != CURLUE_OK)
    rc = wh__fail(WH_EINVAL, "%s: a port is required (\"http://host:port\")", what);
  else if ((curl_url_get(h, CURLUPART_PATH, &path, 0) == CURLUE_OK && path && strcmp(path, "/") != 0) ||
           curl_url_get(h, CURLUPART_QUERY, &query, 0) == CURLUE_OK)
    rc = wh__fail(WH_EINVAL, "%s: no path or query: \"http://host:port\"", what);
  if (!rc && shown) {
    /* For JSON and messages: the password never leaves the registry. */
    if (curl_url_get(h, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK)
      curl_url_set(h, CURLUPART_PASSWORD, "***", 0);
    char *text = NULL;
    if (curl_url_get(h, CURLUPART_URL, &text, 0) != CURLUE_OK || !(*shown = wh__strdup(text)))
      rc = wh__oom();
    curl_free(text);
  }
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_free(query);
  curl_free(password);
  curl_url_cleanup(h);
  return rc;
}
