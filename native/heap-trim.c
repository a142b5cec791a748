// Gives the memory that glibc's malloc holds free back to the kernel: malloc_trim(0), which Node
// does not expose. A Node process that moved a burst of bulk data keeps the burst's high-water
// mark: socket, TLS and frame buffers come and go by the thousand, and the free space they leave
// in malloc's heap stays resident because only the top of the heap is ever handed back on free().
// Measured on a server after the bench's bulk rows: RSS 132 MiB, glibc [heap] 68 MiB resident;
// after malloc_trim(0), 66 MiB and 5 MiB (docs/benchmarks.md). src/cli/native-heap.ts loads this,
// and the idle collector calls trim() when the process is quiet (src/cli/idle-gc.ts).
//
// Built by scripts/build-dist.mjs into build/heap-trim.node with the system's C compiler. Machines
// without one load native/prebuilt/linux-x64/heap-trim.node, built from this file by
// scripts/build-prebuilt.mjs; elsewhere processes simply keep that memory. Both carry the SHA-256
// of this file (`source`), so a test can tell a prebuilt that no longer matches it.
#ifndef HEAP_TRIM_SOURCE_SHA256
#define HEAP_TRIM_SOURCE_SHA256 "unknown"
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// The few Node-API declarations used here (node_api.h; the Node-API ABI is stable), so that the
// build needs a C compiler and nothing else: no Node headers, no node-gyp, no download.
typedef struct napi_env__* napi_env;
typedef struct napi_value__* napi_value;
typedef struct napi_callback_info__* napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
extern napi_status napi_create_function(napi_env env, const char* name, size_t length, napi_callback cb, void* data, napi_value* result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char* name, napi_value value);
extern napi_status napi_get_boolean(napi_env env, bool value, napi_value* result);
extern napi_status napi_create_string_utf8(napi_env env, const char* str, size_t length, napi_value* result);

// trim(): true when memory was given back. Only glibc has malloc_trim; elsewhere (musl) it does nothing.
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
#if defined(__GLIBC__)
  bool released = malloc_trim(0) == 1;
#else
  bool released = false;
#endif
  napi_value result = NULL;
  napi_get_boolean(env, released, &result);
  return result;
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn = NULL;
  napi_value supported = NULL;
  napi_value source = NULL;
#if defined(__GLIBC__)
  napi_get_boolean(env, true, &supported);
#else
  napi_get_boolean(env, false, &supported);
#endif
  if (napi_create_function(env, "trim", (size_t)-1, trim, NULL, &fn) != 0) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != 0) return NULL;
  if (napi_set_named_property(env, exports, "supported", supported) != 0) return NULL;
  if (napi_create_string_utf8(env, HEAP_TRIM_SOURCE_SHA256, (size_t)-1, &source) != 0) return NULL;
  if (napi_set_named_property(env, exports, "source", source) != 0) return NULL;
  return exports;
}
