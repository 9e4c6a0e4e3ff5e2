/*
 * Which addresses a webhook may not reach unless private networks are allowed
 * (REFERENCE.md, "Network policy"). The dispatcher applies this to the address
 * a socket is about to connect to, after DNS, so rebinding cannot get around it.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
  uint32_t net;
  int bits;
  const char *why;
} v4range;

static const v4range v4[] = {
  {0x00000000, 8, "this-network (0.0.0.0/8)"},
  {0x0A000000, 8, "private (10.0.0.0/8)"},
  {0x64400000, 10, "carrier-grade NAT (100.64.0.0/10)"},
  {0x7F000000, 8, "loopback (127.0.0.0/8)"},
  {0xA9FE0000, 16, "link-local (169.254.0.0/16)"},
  {0xAC100000, 12, "private (172.16.0.0/12)"},
  {0xC0000000, 24, "IETF protocol assignments (192.0.0.0/24)"},
  {0xC0000200, 24, "documentation (192.0.2.0/24)"},
  {0xC0586300, 24, "6to4 relay anycast (192.88.99.0/24)"},
  {0xC0A80000, 16, "private (192.168.0.0/16)"},
  {0xC6120000, 15, "benchmarking (198.18.0.0/15)"},
  {0xC6336400, 24, "documentation (198.51.100.0/24)"},
  {0xCB007100, 24, "documentation (203.0.113.0/24)"},
  {0xE0000000, 4, "multicast (224.0.0.0/4)"},
  {0xF0000000, 4, "reserved (240.0.0.0/4)"},
  {0xFFFFFFFF, 32, "broadcast (255.255.255.255)"},
};

static const char *v4_forbidden(uint32_t a)
{
  for (size_t i = 0; i < WH__COUNT(v4); i++) {
    uint32_t mask = v4[i].bits == 0 ? 0 : 0xFFFFFFFFu << (32 - v4[i].bits);
    if ((a & mask) == v4[i].net)
      return v4[i].why;
  }
  return NULL;
}

static int prefix_eq(const unsigned char *a, const unsigned char *p, int bits)
{
  int bytes = bits / 8, rem = bits % 8;
  if (memcmp(a, p, (size_t)bytes) != 0)
    return 0;
  if (rem == 0)
    return 1;
  unsigned char mask = (unsigned char)(0xFF << (8 - rem));
  return (a[bytes] & mask) == (p[bytes] & mask);
}

static uint32_t v4_at(const unsigned char *b)
{
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static const char *v6_forbidden(const unsigned char a[16])
{
  static const unsigned char zero[16] = {0};
  static const unsigned char loop[16] = {[15] = 1};
  static const unsigned char mapped[12] = {[10] = 0xFF, [11] = 0xFF};
  static const unsigned char nat64[12] = {0x00, 0x64, 0xFF, 0x9B};
  static const unsigned char ula[1] = {0xFC};
  static const unsigned char ll[2] = {0xFE, 0x80};
  static const unsigned char mc[1] = {0xFF};
  static const unsigned char doc[4] = {0x20, 0x01, 0x0D, 0xB8};
  static const unsigned char sixto4[2] = {0x20, 0x02};

  if (memcmp(a, zero, 16) == 0)
    return "unspecified (::)";
  if (memcmp(a, loop, 16) == 0)
    return "loopback (::1)";
  /* IPv4-mapped: judge the IPv4 address inside. */
  if (memcmp(a, mapped, 12) == 0) {
    const char *why = v4_forbidden(v4_at(a + 12));
    return why ? why : NULL;
  }
  /* IPv4-compatible (deprecated, ::a.b.c.d) reaches IPv4 space too. */
  if (memcmp(a, zero, 12) == 0)
    return "IPv4-compatible (::/96)";
  if (prefix_eq(a, nat64, 96))
    return "NAT64 (64:ff9b::/96)";
  if (prefix_eq(a, ula, 7))
    return "unique local (fc00::/7)";
  if (prefix_eq(a, ll, 10))
    return "link-local (fe80::/10)";
  if (prefix_eq(a, mc, 8))
    return "multicast (ff00::/8)";
  if (prefix_eq(a, doc, 32))
    return "documentation (2001:db8::/32)";
  if (prefix_eq(a, sixto4, 16))
    return "6to4 (2002::/16)";
  return NULL;
}

const char *wh__addr_forbidden(const struct sockaddr *sa)
{
  if (!sa)
    return "no address";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    return v4_forbidden(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    return v6_forbidden(in6->sin6_addr.s6_addr);
  }
  return "not an internet address";
}

const char *wh__ip_text_forbidden(const char *text)
{
  struct in_addr a4;
  struct in6_addr a6;
  const char *why;
  if (inet_pton(AF_INET, text, &a4) == 1)
    why = v4_forbidden(ntohl(a4.s_addr));
  else if (inet_pton(AF_INET6, text, &a6) == 1)
    why = v6_forbidden(a6.s6_addr);
  else
    return NULL;
  return why ? why : "";
}
