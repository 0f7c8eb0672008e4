/* A tiny backend for the host's tests, written in C99 so that building it also
 * checks that synod/backend.h is valid C.
 *
 * By default it is "echo": apply returns the command bytes, query returns
 * "query:" + the request, snapshot writes "state:<last applied>", restore reads
 * a number. Compile-time switches make the broken variants the host must refuse:
 *   TEST_ABI_VERSION  the table's abi_version
 *   TEST_SMALL_TABLE  a struct_size that ends before close and free_buffer
 *   TEST_BASE_TABLE   the table of the first ABI 1 header (no apply_batch): valid
 * echo implements apply_batch as "batch:" + each command (so a test can tell
 * which path the host took); "fail_apply" fails a batch as a whole.
 *   TEST_NAME         the table's name
 *   TEST_NO_ENTRY     export something else instead of synod_backend_entry
 *   TEST_NO_APPLY     leave apply NULL
 *   TEST_NO_SNAPSHOT  leave snapshot and restore NULL
 * Options: "fail_open" = message (open fails with it), "fail_apply" = message
 * (every apply fails with it); anything else is refused. */
#include <stdlib.h>
#include <string.h>

#include "synod/backend.h"

/* The broken variants leave some functions out of the table. */
#pragma GCC diagnostic ignored "-Wunused-function"

#ifndef TEST_ABI_VERSION
#define TEST_ABI_VERSION SYNOD_BACKEND_ABI_VERSION
#endif
#ifdef TEST_SMALL_TABLE
#define TEST_STRUCT_SIZE offsetof(synod_backend_api, close)
#elif defined(TEST_BASE_TABLE)
#define TEST_STRUCT_SIZE offsetof(synod_backend_api, apply_batch)
#else
#define TEST_STRUCT_SIZE sizeof(synod_backend_api)
#endif
#ifndef TEST_NAME
#define TEST_NAME "echo"
#endif

typedef struct echo_backend {
  uint64_t last_applied;
  char* fail_apply;
} echo_backend;

static char* copy_string(const char* s) {
  size_t n = strlen(s) + 1;
  char* p = (char*)malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

static int copy_bytes(const char* prefix, const uint8_t* data, size_t len, uint8_t** out,
                      size_t* out_len) {
  size_t plen = strlen(prefix);
  uint8_t* p = (uint8_t*)malloc(plen + len + 1);
  if (p == NULL) return 1;
  memcpy(p, prefix, plen);
  if (len > 0) memcpy(p + plen, data, len);
  *out = p;
  *out_len = plen + len;
  return 0;
}

static void* echo_open(const char* const* keys, const char* const* values, size_t n, char** error) {
  size_t i;
  echo_backend* b = (echo_backend*)calloc(1, sizeof(echo_backend));
  if (b == NULL) return NULL;
  for (i = 0; i < n; i++) {
    if (strcmp(keys[i], "fail_open") == 0) {
      *error = copy_string(values[i]);
      free(b->fail_apply);
      free(b);
      return NULL;
    } else if (strcmp(keys[i], "fail_apply") == 0) {
      free(b->fail_apply);
      b->fail_apply = copy_string(values[i]);
    } else {
      *error = copy_string("unknown option");
      free(b->fail_apply);
      free(b);
      return NULL;
    }
  }
  return b;
}

static int echo_apply(void* self, const synod_apply_context* ctx, const uint8_t* cmd, size_t len,
                      uint8_t** out, size_t* out_len, char** error) {
  echo_backend* b = (echo_backend*)self;
  if (b->fail_apply != NULL) {
    *error = copy_string(b->fail_apply);
    return 1;
  }
  if (ctx->slot <= b->last_applied) return copy_bytes("already applied", NULL, 0, out, out_len);
  b->last_applied = ctx->slot;
  return copy_bytes("", cmd, len, out, out_len);
}

static int echo_apply_batch(void* self, size_t n, const synod_apply_context* ctxs,
                            const uint8_t* const* cmds, const size_t* lens, uint8_t** results,
                            size_t* result_lens, char** error) {
  echo_backend* b = (echo_backend*)self;
  size_t i;
  if (b->fail_apply != NULL) {
    *error = copy_string(b->fail_apply);
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (copy_bytes(ctxs[i].slot <= b->last_applied ? "already applied" : "batch:", cmds[i],
                   ctxs[i].slot <= b->last_applied ? 0 : lens[i], &results[i],
                   &result_lens[i]) != 0) {
      size_t j;
      for (j = 0; j < i; j++) {
        free(results[j]);
        results[j] = NULL;
      }
      *error = copy_string("out of memory");
      return 1;
    }
    if (ctxs[i].slot > b->last_applied) b->last_applied = ctxs[i].slot;
  }
  return 0;
}

static int echo_query(void* self, const uint8_t* req, size_t len, uint8_t** out, size_t* out_len,
                      char** error) {
  (void)self;
  if (len == 4 && memcmp(req, "fail", 4) == 0) {
    *error = copy_string("query refused");
    return 1;
  }
  return copy_bytes("query:", req, len, out, out_len);
}

static uint64_t echo_last_applied(void* self) { return ((echo_backend*)self)->last_applied; }

static int echo_snapshot(void* self, synod_snapshot_write_fn write, void* arg, char** error) {
  echo_backend* b = (echo_backend*)self;
  char text[32];
  size_t n = 0;
  uint64_t v = b->last_applied;
  char digits[24];
  size_t d = 0;
  do {
    digits[d++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  memcpy(text, "state:", 6);
  n = 6;
  while (d > 0) text[n++] = digits[--d];
  /* Two chunks, to exercise streaming. */
  if (write(arg, (const uint8_t*)text, 6) != 0 ||
      write(arg, (const uint8_t*)text + 6, n - 6) != 0) {
    *error = copy_string("snapshot aborted by the host");
    return 1;
  }
  return 0;
}

static int echo_restore(void* self, synod_snapshot_read_fn read, void* arg, char** error) {
  echo_backend* b = (echo_backend*)self;
  uint8_t buf[4];
  uint64_t v = 0;
  for (;;) {
    size_t got = 0;
    size_t i;
    if (read(arg, buf, sizeof buf, &got) != 0) {
      *error = copy_string("restore aborted by the host");
      return 1;
    }
    if (got == 0) break;
    for (i = 0; i < got; i++) {
      if (buf[i] < '0' || buf[i] > '9') {
        *error = copy_string("not a number");
        return 1;
      }
      v = v * 10 + (uint64_t)(buf[i] - '0');
    }
  }
  b->last_applied = v;
  return 0;
}

static void echo_close(void* self) {
  echo_backend* b = (echo_backend*)self;
  free(b->fail_apply);
  free(b);
}

static void echo_free_buffer(void* p) { free(p); }

/* Refuses commands that start with "refuse" (host_test: Backend::validate). */
static int echo_validate(void* self, const uint8_t* cmd, size_t len, char** error) {
  (void)self;
  if (len >= 6 && memcmp(cmd, "refuse", 6) == 0) {
    *error = copy_string("echo refuses this command");
    return 1;
  }
  return 0;
}

static const synod_backend_api kApi = {
    TEST_ABI_VERSION,
    (uint32_t)(TEST_STRUCT_SIZE),
    TEST_NAME,
    echo_open,
#ifdef TEST_NO_APPLY
    NULL,
#else
    echo_apply,
#endif
    echo_query,
    echo_last_applied,
#ifdef TEST_NO_SNAPSHOT
    NULL,
    NULL,
#else
    echo_snapshot,    echo_restore,
#endif
    echo_close,
    echo_free_buffer,
    NULL, /* sync: applies are durable already */
    echo_apply_batch,
    echo_validate,
};

#ifdef TEST_NO_ENTRY
SYNOD_BACKEND_EXPORT const synod_backend_api* not_the_entry_point(void) { return &kApi; }
#else
const synod_backend_api* synod_backend_entry(void) { return &kApi; }
#endif
