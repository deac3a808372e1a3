{
  "targets": [
    {
      "target_name": "tcp_relay",
      "sources": ["tcp_relay.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
