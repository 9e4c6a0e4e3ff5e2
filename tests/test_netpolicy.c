/* The private-address classifier as a pure function: no packet leaves. */
#include "internal.h"

#include "support/check.h"

static void expect(const char *ip, int forbidden)
{
  const char *why = wh__ip_text_forbidden(ip);
  check_count++;
  if (!why || (forbidden ? *why == '\0' : *why != '\0')) {
    check_failures++;
    fprintf(stderr, "%s: expected %s, got %s\n", ip, forbidden ? "forbidden" : "allowed",
            !why ? "not an address" : *why ? why : "allowed");
  }
}

int main(void)
{
  static const char *const refused[] = {
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255", "127.0.0.1",
    "127.1.2.3", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1",
    "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "ff02::1", "2001:db8::1",
    "64:ff9b::a00:1", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "2002::1",
    "::127.0.0.1",
  };
  static const char *const allowed[] = {
    "1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
    "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0", "192.0.1.0",
    "192.0.3.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0", "203.0.112.255",
    "223.255.255.255", "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8", "fec0::1", "2001:db9::1",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    expect(refused[i], 1);
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    expect(allowed[i], 0);
  CHECK(wh__ip_text_forbidden("example.com") == NULL);
  CHECK(wh__ip_text_forbidden("") == NULL);
  CHECK(strstr(wh__ip_text_forbidden("127.0.0.1"), "loopback") != NULL);
  CHECK(strstr(wh__ip_text_forbidden("169.254.169.254"), "link-local") != NULL);
  return check_done("netpolicy");
}
