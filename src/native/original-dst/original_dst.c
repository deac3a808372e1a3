// getsockopt(SO_ORIGINAL_DST) for legate's original_dst listener filter: the destination a
// connection had before iptables' REDIRECT (or DNAT) rewrote it, which Node's net API cannot read.
// Node-API only, so one build serves every Node version from the one it was built with.

#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

// <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; spelled out so the build
// needs no kernel headers.
#define LEGATE_SO_ORIGINAL_DST 80
#define LEGATE_IP6T_SO_ORIGINAL_DST 80

// originalDst(fd, family): [address, port], or the errno (a number) when the socket has none.
static napi_value OriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, family = 4;
  napi_value out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &family) != napi_ok) {
    napi_throw_type_error(env, NULL, "originalDst(fd: number, family: 4 | 6)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  int rc = family == 6 ? getsockopt(fd, SOL_IPV6, LEGATE_IP6T_SO_ORIGINAL_DST, &ss, &len)
                       : getsockopt(fd, SOL_IP, LEGATE_SO_ORIGINAL_DST, &ss, &len);
  if (rc != 0) {
    napi_create_int32(env, errno, &out);
    return out;
  }
  char text[INET6_ADDRSTRLEN];
  int port;
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    port = ntohs(a->sin6_port);
  } else if (ss.ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)&ss;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    port = ntohs(a->sin_port);
  } else {
    napi_create_int32(env, EAFNOSUPPORT, &out);
    return out;
  }
  napi_value addr, p;
  napi_create_array_with_length(env, 2, &out);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &addr);
  napi_create_int32(env, port, &p);
  napi_set_element(env, out, 0, addr);
  napi_set_element(env, out, 1, p);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, OriginalDst, NULL, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  return exports;
}
