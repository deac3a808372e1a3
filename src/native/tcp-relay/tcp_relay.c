// tcp_proxy's byte relay in C, on the calling thread's libuv loop: once tcp_proxy has both
// sockets and no filter needs to see the bytes, each read from one side is written to the other
// without a trip through JavaScript (nginx's stream module does the same work per read: a read
// and a write system call). The two Node sockets stay open but no longer read; the relay works on
// duplicates of their descriptors and tells JavaScript when it is done, which then closes them.
//
// Semantics follow tcp_proxy's JavaScript path (src/proxy/tcp/pump.ts, tcp-proxy-session.ts):
// a side that does not take bytes stops reads from the other until its queue drains; a FIN read
// becomes a shutdown of the other side once what is queued for it is written; both FINs done is
// a clean end. An error on one side ends the relay, after the other side has taken what was
// queued for it (Envoy's upstream flush). Node-API plus libuv (ABI-stable across libuv 1.x).

#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

enum { DOWN = 0, UP = 1 };

// The Float64Array JavaScript passes in and reads from (src/native/tcp-relay/index.ts).
enum {
  S_READ_DOWN,        // bytes read from the downstream
  S_READ_UP,          // bytes read from the upstream
  S_FWD_UP,           // bytes handed to the upstream
  S_FWD_DOWN,         // bytes handed to the downstream
  S_READS,            // reads either way (the idle timer's sign of life)
  S_PAUSED,           // downstream reads stopped because the upstream was not taking bytes
  S_RESUMED,          // ... and started again
  S_QUEUED_UP,        // bytes written to the upstream and not yet taken by its kernel
  S_QUEUED_DOWN,      // the same, downstream
  S_FIRST_UP_RX_MS,   // uv_hrtime of the first upstream byte, in ms (0: none yet)
  S_LAST_DOWN_TX_MS,  // uv_hrtime of the last write to the downstream, in ms
  S_FLUSHING,         // 1 while the upstream takes what was queued for it after the downstream failed
  S_COUNT
};

enum { OUT_CLOSED = 0, OUT_ERROR = 1, OUT_ABORTED = 2 };

typedef struct relay_s relay_t;

typedef struct {
  uv_tcp_t tcp;
  relay_t* relay;
  int which;
  int inited;     // uv_tcp_init done: the handle must be closed
  int reading;
  int paused;     // not reading because the other side's queue is full
  int read_eof;
  int dead;       // failed: nothing more is read from it or written to it
  int shut_sent;  // uv_shutdown queued (after the queued writes)
  int shut_done;
  size_t queued;  // bytes in uv_write requests not yet completed
} side_t;

typedef struct {
  relay_t* relay;  // NULL once the relay is gone: abort() then does nothing
} token_t;

struct relay_s {
  side_t side[2];
  napi_env env;
  napi_ref on_done;
  napi_ref stats_ref;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  double* stats;
  token_t* token;
  int started;   // both handles open: the relay runs and will report
  int handles;   // handles set up (closed ones are counted in `closed`)
  int finishing;
  int closed;
  int env_gone;
  int failed;
  int outcome;
  int err_side;
  int err_code;
  const char* err_syscall;
  int flushed;
};

typedef struct {
  uv_write_t req;
  side_t* dst;
  size_t len;
  uv_buf_t buf;
} write_t;

// One read buffer per thread (a worker thread has its own loop): every read is written on at
// once, and what the kernel does not take is copied into its write request.
static __thread char read_buf[65536];

static double now_ms(void) { return (double)uv_hrtime() / 1e6; }

static side_t* other(side_t* s) { return &s->relay->side[!s->which]; }

static void on_read(uv_stream_t* h, ssize_t nread, const uv_buf_t* buf);
static void on_close(uv_handle_t* h);
static void finish(relay_t* r, int outcome);

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)h;
  (void)suggested;
  buf->base = read_buf;
  buf->len = sizeof(read_buf);
}

static void read_start(side_t* s) {
  if (s->reading || s->paused || s->read_eof || s->dead || s->relay->finishing) return;
  if (uv_read_start((uv_stream_t*)&s->tcp, on_alloc, on_read) == 0) s->reading = 1;
}

static void read_stop(side_t* s) {
  if (!s->reading) return;
  uv_read_stop((uv_stream_t*)&s->tcp);
  s->reading = 0;
}

static void set_queued(side_t* s) { s->relay->stats[s->which == UP ? S_QUEUED_UP : S_QUEUED_DOWN] = (double)s->queued; }

static void fail(relay_t* r, side_t* x, const char* syscall, int code);

typedef struct {
  uv_shutdown_t req;
  side_t* side;
} shutdown_t;

static void on_shutdown(uv_shutdown_t* req, int status) {
  side_t* s = ((shutdown_t*)req)->side;
  free(req);
  relay_t* r = s->relay;
  if (r->finishing) return;
  if (status < 0) {
    fail(r, s, "shutdown", status);
    return;
  }
  s->shut_done = 1;
  if (r->failed) {
    finish(r, OUT_ERROR);
    return;
  }
  if (r->side[DOWN].read_eof && r->side[UP].read_eof && r->side[DOWN].shut_done && r->side[UP].shut_done) finish(r, OUT_CLOSED);
}

// FIN to `s` once what is queued for it is written (libuv orders the shutdown after the writes).
static void shutdown_side(side_t* s) {
  if (s->shut_sent || s->dead) return;
  s->shut_sent = 1;
  shutdown_t* req = malloc(sizeof(shutdown_t));
  if (!req) {
    fail(s->relay, s, "shutdown", UV_ENOMEM);
    return;
  }
  req->side = s;
  int rc = uv_shutdown(&req->req, (uv_stream_t*)&s->tcp, on_shutdown);
  if (rc < 0) {
    free(req);
    fail(s->relay, s, "shutdown", rc);
  }
}

// `x` failed: it is done. The other side gets what is still queued for it, then the relay ends.
static void fail(relay_t* r, side_t* x, const char* syscall, int code) {
  if (r->finishing) return;
  if (!r->failed) {
    r->failed = 1;
    r->err_side = x->which;
    r->err_syscall = syscall;
    r->err_code = code;
  }
  x->dead = 1;
  read_stop(x);
  side_t* y = other(x);
  read_stop(y);
  y->paused = 1;
  if (y->dead || y->queued == 0 || y->shut_done) {
    finish(r, OUT_ERROR);
    return;
  }
  if (y->which == UP) {
    r->flushed = 1;
    r->stats[S_FLUSHING] = 1;
  }
  shutdown_side(y);
}

static void on_write(uv_write_t* req, int status) {
  write_t* w = (write_t*)req;
  side_t* dst = w->dst;
  dst->queued -= w->len;
  free(w);
  relay_t* r = dst->relay;
  if (r->finishing) return;
  set_queued(dst);
  if (status < 0) {
    fail(r, dst, "write", status);
    return;
  }
  side_t* src = other(dst);
  if (dst->queued == 0 && src->paused && !r->failed) {
    src->paused = 0;
    if (src->which == DOWN) r->stats[S_RESUMED] += 1;
    read_start(src);
  }
}

// Hands `len` bytes to `dst`: written now if its kernel takes them, else copied and queued, and
// `src` (when given) stops reading until the queue drains.
static void forward(relay_t* r, side_t* dst, const char* data, size_t len, side_t* src) {
  r->stats[dst->which == UP ? S_FWD_UP : S_FWD_DOWN] += (double)len;
  if (dst->which == DOWN) r->stats[S_LAST_DOWN_TX_MS] = now_ms();
  size_t done = 0;
  if (dst->queued == 0) {
    uv_buf_t b = uv_buf_init((char*)data, (unsigned int)len);
    int n = uv_try_write((uv_stream_t*)&dst->tcp, &b, 1);
    if (n >= 0) {
      done = (size_t)n;
    } else if (n != UV_EAGAIN) {
      fail(r, dst, "write", n);
      return;
    }
  }
  if (done == len) return;
  size_t rest = len - done;
  write_t* w = malloc(sizeof(write_t) + rest);
  if (!w) {
    fail(r, dst, "write", UV_ENOMEM);
    return;
  }
  memcpy(w + 1, data + done, rest);
  w->dst = dst;
  w->len = rest;
  w->buf = uv_buf_init((char*)(w + 1), (unsigned int)rest);
  int rc = uv_write(&w->req, (uv_stream_t*)&dst->tcp, &w->buf, 1, on_write);
  if (rc < 0) {
    free(w);
    fail(r, dst, "write", rc);
    return;
  }
  dst->queued += rest;
  set_queued(dst);
  if (src && !src->paused) {
    src->paused = 1;
    read_stop(src);
    if (src->which == DOWN) r->stats[S_PAUSED] += 1;
  }
}

static void on_read(uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) {
  side_t* s = h->data;
  relay_t* r = s->relay;
  if (r->finishing || nread == 0) return;
  side_t* o = other(s);
  if (nread > 0) {
    r->stats[s->which == DOWN ? S_READ_DOWN : S_READ_UP] += (double)nread;
    r->stats[S_READS] += 1;
    if (s->which == UP && r->stats[S_FIRST_UP_RX_MS] == 0) r->stats[S_FIRST_UP_RX_MS] = now_ms();
    // Nowhere to go once the other side failed or was shut (as tcp_proxy's JavaScript path drops them).
    if (o->dead || o->shut_sent) return;
    forward(r, o, buf->base, (size_t)nread, s);
    return;
  }
  if (nread == UV_EOF) {
    s->read_eof = 1;
    read_stop(s);
    shutdown_side(o);
    return;
  }
  fail(r, s, "read", (int)nread);
}

static void free_relay(relay_t* r) {
  if (r->token) r->token->relay = NULL;
  free(r);
}

static void notify(relay_t* r) {
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[5], result;
  napi_get_reference_value(env, r->on_done, &fn);
  napi_get_global(env, &recv);  // napi_make_callback wants an object as `this`
  napi_create_int32(env, r->outcome, &argv[0]);
  napi_create_int32(env, r->err_side, &argv[1]);
  napi_create_string_utf8(env, r->err_syscall ? r->err_syscall : "", NAPI_AUTO_LENGTH, &argv[2]);
  napi_create_string_utf8(env, r->failed ? uv_err_name(r->err_code) : "", NAPI_AUTO_LENGTH, &argv[3]);
  napi_get_boolean(env, r->flushed != 0, &argv[4]);
  napi_delete_reference(env, r->stats_ref);
  napi_status st = fn ? napi_make_callback(env, r->async, recv, fn, 5, argv, &result) : napi_ok;
  napi_delete_reference(env, r->on_done);
  napi_async_destroy(env, r->async);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

// Frees the relay once every handle it set up is closed; a started relay reports first.
static void on_close(uv_handle_t* h) {
  side_t* s = h->data;
  relay_t* r = s->relay;
  if (++r->closed < r->handles) return;
  if (r->started) {
    napi_remove_async_cleanup_hook(r->cleanup);
    if (!r->env_gone) notify(r);
  }
  free_relay(r);
}

static void finish(relay_t* r, int outcome) {
  if (r->finishing) return;
  r->finishing = 1;
  r->outcome = outcome;
  r->stats[S_FLUSHING] = 0;
  for (int i = 0; i < 2; i++) {
    side_t* s = &r->side[i];
    read_stop(s);
    r->stats[i == UP ? S_QUEUED_UP : S_QUEUED_DOWN] = 0;
    uv_close((uv_handle_t*)&s->tcp, on_close);
  }
}

// The thread's environment is going away (a worker thread ending) with the relay still running:
// its handles are closed and JavaScript is not called.
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  (void)handle;
  relay_t* r = arg;
  r->env_gone = 1;
  finish(r, OUT_ABORTED);
}

static void token_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  token_t* t = data;
  if (t->relay) t->relay->token = NULL;
  free(t);
}

static int throw_usage(napi_env env) {
  napi_throw_type_error(env, NULL,
      "relay(fdDown: number, fdUp: number, stats: Float64Array, onDone: Function, toUp?: Buffer, toDown?: Buffer)");
  return 0;
}

static int buffer_arg(napi_env env, napi_value v, void** data, size_t* len) {
  napi_valuetype t;
  *data = NULL;
  *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_undefined || t == napi_null) return 1;
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  return napi_get_buffer_info(env, v, data, len) == napi_ok;
}

// relay(fdDown, fdUp, stats, onDone, toUp?, toDown?): an opaque handle for abort(). The fds are
// duplicated; the callers' sockets must not read or write meanwhile. onDone(outcome, errSide,
// syscall, errName, flushed) runs once, after the relay has closed its duplicates.
static napi_value Relay(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int32_t fd[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd[DOWN]) != napi_ok || napi_get_value_int32(env, argv[1], &fd[UP]) != napi_ok) {
    throw_usage(env);
    return NULL;
  }
  bool is_typed;
  napi_typedarray_type ttype;
  size_t tlen;
  void* tdata;
  napi_valuetype fn_type;
  if (napi_is_typedarray(env, argv[2], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[2], &ttype, &tlen, &tdata, NULL, NULL) != napi_ok ||
      ttype != napi_float64_array || tlen < S_COUNT || napi_typeof(env, argv[3], &fn_type) != napi_ok ||
      fn_type != napi_function) {
    throw_usage(env);
    return NULL;
  }
  void* initial[2] = {NULL, NULL};  // [0]: to the upstream, [1]: to the downstream
  size_t initial_len[2] = {0, 0};
  if ((argc > 4 && !buffer_arg(env, argv[4], &initial[0], &initial_len[0])) ||
      (argc > 5 && !buffer_arg(env, argv[5], &initial[1], &initial_len[1]))) {
    throw_usage(env);
    return NULL;
  }
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "no libuv loop");
    return NULL;
  }

  relay_t* r = calloc(1, sizeof(relay_t));
  token_t* t = calloc(1, sizeof(token_t));
  if (!r || !t) {
    free(r);
    free(t);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  r->env = env;
  r->stats = tdata;
  for (int i = 0; i < 2; i++) {
    side_t* s = &r->side[i];
    s->relay = r;
    s->which = i;
    s->tcp.data = s;
  }
  // Descriptors first: on a failure, what was set up is closed and nothing is reported (the
  // caller carries on in JavaScript).
  int err = 0;
  for (int i = 0; i < 2 && !err; i++) {
    side_t* s = &r->side[i];
    int dup_fd = dup(fd[i]);
    if (dup_fd < 0 || uv_tcp_init(loop, &s->tcp) != 0) {
      if (dup_fd >= 0) close(dup_fd);
      err = 1;
      break;
    }
    s->inited = 1;
    r->handles++;
    s->tcp.data = s;
    if (uv_tcp_open(&s->tcp, dup_fd) != 0) {
      close(dup_fd);
      err = 1;
    }
  }
  if (err) {
    free(t);
    if (r->handles == 0) {
      free(r);
    } else {
      for (int i = 0; i < 2; i++) {
        if (r->side[i].inited) uv_close((uv_handle_t*)&r->side[i].tcp, on_close);
      }
    }
    napi_value undef;
    napi_get_undefined(env, &undef);
    return undef;
  }
  r->started = 1;
  napi_value name;
  napi_create_string_utf8(env, "legate.tcp_relay", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->async);
  napi_create_reference(env, argv[2], 1, &r->stats_ref);
  napi_create_reference(env, argv[3], 1, &r->on_done);
  napi_add_async_cleanup_hook(env, on_env_cleanup, r, &r->cleanup);
  t->relay = r;
  r->token = t;

  // What the Node sockets had already read goes first; a side whose peer has a queue waits.
  r->stats[S_READ_DOWN] += (double)initial_len[0];
  r->stats[S_READ_UP] += (double)initial_len[1];
  if (initial_len[1] > 0 && r->stats[S_FIRST_UP_RX_MS] == 0) r->stats[S_FIRST_UP_RX_MS] = now_ms();
  if (initial_len[0] > 0) forward(r, &r->side[UP], initial[0], initial_len[0], &r->side[DOWN]);
  if (initial_len[1] > 0 && !r->finishing) forward(r, &r->side[DOWN], initial[1], initial_len[1], &r->side[UP]);
  if (!r->finishing) {
    read_start(&r->side[DOWN]);
    read_start(&r->side[UP]);
  }

  napi_value handle;
  if (napi_create_external(env, t, token_finalize, NULL, &handle) != napi_ok) {
    r->token = NULL;
    free(t);
    napi_get_undefined(env, &handle);
  }
  return handle;
}

// abort(handle): ends the relay now, without flushing; onDone follows with outcome 2.
static napi_value Abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "abort(handle)");
    return NULL;
  }
  token_t* t = data;
  if (t && t->relay) finish(t->relay, OUT_ABORTED);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "relay", NAPI_AUTO_LENGTH, Relay, NULL, &fn);
  napi_set_named_property(env, exports, "relay", fn);
  napi_create_function(env, "abort", NAPI_AUTO_LENGTH, Abort, NULL, &fn);
  napi_set_named_property(env, exports, "abort", fn);
  return exports;
}
