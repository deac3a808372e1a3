// glibc's malloc_trim(0) for legate: gives the kernel back the free pages inside malloc's arenas.
// V8's background compiler threads allocate their zones with malloc while the JIT warms up; freed,
// that memory stays in glibc's arenas (resident) until something trims them. Node-API only.

#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// trim(minFree): when malloc holds at least minFree free bytes, malloc_trim(0). Returns the free
// bytes malloc held before ([before, after]), or undefined where there is no glibc.
static napi_value Trim(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double min_free = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_double(env, argv[0], &min_free) != napi_ok) {
    napi_throw_type_error(env, NULL, "trim(minFree: number)");
    return NULL;
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 before = mallinfo2();
  double after = (double)before.fordblks;
  if ((double)before.fordblks >= min_free) {
    malloc_trim(0);
    after = (double)mallinfo2().fordblks;
  }
  napi_value out, a, b;
  napi_create_array_with_length(env, 2, &out);
  napi_create_double(env, (double)before.fordblks, &a);
  napi_create_double(env, after, &b);
  napi_set_element(env, out, 0, a);
  napi_set_element(env, out, 1, b);
  return out;
#else
  (void)min_free;
  napi_value undef;
  napi_get_undefined(env, &undef);
  return undef;
#endif
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
