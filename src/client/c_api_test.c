/* The C API against a running cluster: SYNOD_TEST_CLUSTER=H:P,H:P,... names its
 * nodes (serving the kv backend). Without it the test is skipped (exit 77).
 * With SYNOD_TEST_LOCKS=1 the nodes also serve the lock backend and the
 * synod_lock_* calls are tested too (tests/cluster/test_lock_client.py).
 * Written in C99 on purpose: it proves include/synod/client.h is C and that
 * libsynod_client.so is usable from a C program. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "synod/client.h"

static int failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

/* Checks rc == want; on a mismatch prints the error message. Frees *err. */
static void expect(synod_code rc, synod_code want, char** err, const char* what, int line) {
  if (rc != want) {
    fprintf(stderr, "%s:%d: FAILED: %s returned %s (%s), want %s\n", __FILE__, line, what,
            synod_code_name(rc), *err ? *err : "no message", synod_code_name(want));
    ++failures;
  } else if (want != SYNOD_OK && *err == NULL) {
    fprintf(stderr, "%s:%d: FAILED: %s: no error message with %s\n", __FILE__, line, what,
            synod_code_name(rc));
    ++failures;
  } else if (want == SYNOD_OK && *err != NULL) {
    fprintf(stderr, "%s:%d: FAILED: %s: an error message on success\n", __FILE__, line, what);
    ++failures;
  }
  synod_free(*err);
  *err = NULL;
}
#define EXPECT(call, want) expect((call), (want), &err, #call, __LINE__)

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char prefix[64];

static const char* key(const char* name) {
  static char buf[8][128];
  static int next = 0;
  char* k = buf[next];
  next = (next + 1) % 8;
  snprintf(k, 128, "%s%s", prefix, name);
  return k;
}

struct incr_args {
  synod_client* client;
  const char* key;
  int rounds;
  int failed;
};

static void* incr_thread(void* p) {
  struct incr_args* a = (struct incr_args*)p;
  int i;
  for (i = 0; i < a->rounds; ++i) {
    char* err = NULL;
    if (synod_incr(a->client, a->key, strlen(a->key), 1, 0, NULL, &err) != SYNOD_OK) {
      fprintf(stderr, "incr in a thread failed: %s\n", err ? err : "?");
      ++a->failed;
    }
    synod_free(err);
  }
  return NULL;
}

static int lost_calls = 0;
static void on_lost(void* arg, const char* reason) {
  CHECK(arg == &lost_calls && reason != NULL && reason[0] != '\0');
  ++lost_calls;
}

/* The synod_lock_* calls (the cluster serves the lock backend). */
static void lock_tests(synod_client* c) {
  char* err = NULL;
  char* json = NULL;
  char* reason = NULL;
  char name[96];
  uint64_t t1 = 0, t2 = 0, again = 0, newest = 0;
  int current = -1;
  synod_lock_session* a = NULL;
  synod_lock_session* b = NULL;
  synod_lock_session* short_lived = NULL;
  synod_lock_options o;
  double t0;
  snprintf(name, sizeof(name), "%slock", prefix);

  EXPECT(synod_lock_session_open(c, NULL, &a, &err), SYNOD_OK);
  synod_lock_options_init(&o);
  o.ttl_ms = 2000;
  EXPECT(synod_lock_session_open(c, &o, &b, &err), SYNOD_OK);
  if (a == NULL || b == NULL) {
    synod_lock_session_close(a);
    synod_lock_session_close(b);
    return;
  }
  CHECK(synod_lock_session_id(a) != 0 && synod_lock_session_id(b) != 0);
  CHECK(synod_lock_session_id(a) != synod_lock_session_id(b));
  CHECK(synod_lock_session_lost(a, &reason) == 0 && reason == NULL);

  /* A grant, idempotent; a try by another session is busy. */
  EXPECT(synod_lock_acquire(a, name, 0, 0, &t1, &err), SYNOD_OK);
  CHECK(t1 != 0);
  EXPECT(synod_lock_acquire(a, name, 0, -1, &again, &err), SYNOD_OK);
  CHECK(again == t1);
  EXPECT(synod_lock_acquire(b, name, 0, 0, &t2, &err), SYNOD_LOCK_BUSY);
  CHECK(t2 == 0);
  /* A bounded wait runs out. */
  t0 = now_seconds();
  EXPECT(synod_lock_acquire(b, name, 0, 500, &t2, &err), SYNOD_LOCK_BUSY);
  CHECK(now_seconds() - t0 >= 0.5 && now_seconds() - t0 < 5.0);

  /* show, list and check. */
  EXPECT(synod_lock_show(c, name, SYNOD_LINEARIZABLE, 0, &json, &err), SYNOD_OK);
  CHECK(json != NULL && strstr(json, "\"holders\"") != NULL);
  synod_free(json);
  json = NULL;
  EXPECT(synod_lock_list(c, SYNOD_LINEARIZABLE, 0, &json, &err), SYNOD_OK);
  CHECK(json != NULL && strstr(json, "\"sessions\"") != NULL);
  synod_free(json);
  json = NULL;
  EXPECT(synod_lock_check(c, name, t1, SYNOD_LINEARIZABLE, 0, &current, &newest, &err), SYNOD_OK);
  CHECK(current == 1 && newest == t1);

  /* Released, the other session gets it with a newer token; the old one is stale. */
  EXPECT(synod_lock_release(a, name, &err), SYNOD_OK);
  EXPECT(synod_lock_release(a, name, &err), SYNOD_NOT_FOUND);
  EXPECT(synod_lock_acquire(b, name, 0, 5000, &t2, &err), SYNOD_OK);
  CHECK(t2 > t1);
  EXPECT(synod_lock_check(c, name, t1, SYNOD_LINEARIZABLE, 0, &current, &newest, &err), SYNOD_OK);
  CHECK(current == 0 && newest == t2);
  /* b is kept alive past its TTL of 2 s. */
  sleep(3);
  CHECK(synod_lock_session_lost(b, NULL) == 0);
  EXPECT(synod_lock_check(c, name, t2, SYNOD_LINEARIZABLE, 0, &current, NULL, &err), SYNOD_OK);
  CHECK(current == 1);
  /* Broken by an administrator: released for b, whose own release then finds nothing. */
  EXPECT(synod_lock_release_for(c, name, synod_lock_session_id(b), 0, &err), SYNOD_OK);
  EXPECT(synod_lock_release(b, name, &err), SYNOD_NOT_FOUND);

  /* A session whose keep-alives come too late expires: reported once, and calls say so. */
  synod_lock_options_init(&o);
  o.ttl_ms = 1000;
  o.keepalive_ms = 2500;
  o.on_lost = on_lost;
  o.on_lost_arg = &lost_calls;
  EXPECT(synod_lock_session_open(c, &o, &short_lived, &err), SYNOD_OK);
  if (short_lived != NULL) {
    sleep(4);
    CHECK(lost_calls == 1);
    CHECK(synod_lock_session_lost(short_lived, &reason) == 1 && reason != NULL);
    synod_free(reason);
    EXPECT(synod_lock_acquire(short_lived, name, 0, 0, NULL, &err), SYNOD_SESSION_LOST);
    synod_lock_session_close(short_lived);
  }

  /* Bad arguments. */
  EXPECT(synod_lock_acquire(NULL, name, 0, 0, NULL, &err), SYNOD_BAD_REQUEST);
  EXPECT(synod_lock_acquire(a, NULL, 0, 0, NULL, &err), SYNOD_BAD_REQUEST);
  synod_lock_options_init(&o);
  o.ttl_ms = 10;
  EXPECT(synod_lock_session_open(c, &o, &short_lived, &err), SYNOD_BAD_REQUEST);
  CHECK(short_lived == NULL);
  CHECK(strcmp(synod_code_name(SYNOD_LOCK_BUSY), "lock_busy") == 0);
  CHECK(strcmp(synod_code_name(SYNOD_SESSION_LOST), "session_lost") == 0);

  synod_lock_session_close(a);
  synod_lock_session_close(b);
  synod_lock_session_close(NULL);
}

/* Options structs of an older, smaller layout (as a program built against an
 * older header has them) are never written past their end; the fields they
 * lack keep the library's defaults. The init function itself (for bindings and
 * function pointers) and a NULL argument work too. */
static void options_abi_tests(void) {
  unsigned char buf[sizeof(synod_lock_options) + 16];
  const size_t v1 = offsetof(synod_lock_options, lock_delay_ms);
  synod_lock_options full;
  synod_options kv;
  void (*init)(synod_lock_options*) = synod_lock_options_init; /* the function */
  memset(buf, 0xab, sizeof(buf));
  synod_lock_options_init_sized((synod_lock_options*)buf, v1);
  CHECK(((synod_lock_options*)buf)->struct_size == v1);
  CHECK(((synod_lock_options*)buf)->ttl_ms == 10000);
  CHECK(buf[v1] == 0xab && buf[sizeof(buf) - 1] == 0xab);
  memset(&full, 0, sizeof(full));
  synod_lock_options_init(&full);
  CHECK(full.struct_size == sizeof(full) && full.lock_delay_ms == 5000 && full.ttl_ms == 10000);
  memset(buf, 0xab, sizeof(buf));
  init((synod_lock_options*)buf); /* the function: the first version's size */
  CHECK(((synod_lock_options*)buf)->struct_size == v1 && buf[v1] == 0xab);
  synod_lock_options_init(NULL);
  synod_options_init(&kv);
  CHECK(kv.struct_size == sizeof(kv) && kv.timeout_ms == 5000);
  synod_options_init(NULL);
}

int main(void) {
  const char* cluster = getenv("SYNOD_TEST_CLUSTER");
  char* err = NULL;
  char* value = NULL;
  size_t len = 0;
  int64_t n = 0;
  synod_client* c;
  options_abi_tests();
  if (cluster == NULL || cluster[0] == '\0') {
    printf("SYNOD_TEST_CLUSTER is not set: only the options tests ran\n");
    return failures == 0 ? 77 : 1;
  }
  snprintf(prefix, sizeof(prefix), "capi:%ld:%ld:", (long)getpid(), (long)time(NULL));

  /* Opening: a malformed address is refused with a reason. */
  CHECK(synod_client_open("not an address", 1000, &err) == NULL);
  CHECK(err != NULL && strlen(err) > 0);
  synod_free(err);
  err = NULL;
  CHECK(synod_client_open(cluster, 0, &err) == NULL);
  synod_free(err);
  err = NULL;

  c = synod_client_open(cluster, 5000, &err);
  if (c == NULL) {
    fprintf(stderr, "cannot open %s: %s\n", cluster, err ? err : "?");
    synod_free(err);
    return 1;
  }
  CHECK(err == NULL);

  /* put / get, local and linearizable. */
  EXPECT(synod_put(c, key("a"), strlen(key("a")), "alpha", 5, 0, &err), SYNOD_OK);
  EXPECT(synod_get(c, key("a"), strlen(key("a")), SYNOD_LINEARIZABLE, 0, &value, &len, &err),
         SYNOD_OK);
  CHECK(value != NULL && len == 5 && memcmp(value, "alpha", 5) == 0 && value[5] == '\0');
  synod_free(value);
  value = NULL;
  EXPECT(
      synod_get(c, key("a"), strlen(key("a")), SYNOD_DEFAULT_CONSISTENCY, 2000, &value, NULL, &err),
      SYNOD_OK);
  CHECK(value != NULL && strcmp(value, "alpha") == 0);
  synod_free(value);
  value = NULL;

  /* A missing key. */
  EXPECT(synod_get(c, key("missing"), strlen(key("missing")), SYNOD_LINEARIZABLE, 0, &value, &len,
                   &err),
         SYNOD_NOT_FOUND);
  CHECK(value == NULL && len == 0);

  /* Binary keys and values (embedded NULs) survive. */
  {
    char bkey[80];
    const char bval[6] = {'x', '\0', 'y', '\n', '\0', 'z'};
    size_t bkey_len = (size_t)snprintf(bkey, sizeof(bkey), "%sbin", prefix);
    bkey[bkey_len] = '\0';
    bkey_len += 1; /* the key ends with its NUL */
    EXPECT(synod_put(c, bkey, bkey_len, bval, sizeof(bval), 0, &err), SYNOD_OK);
    EXPECT(synod_get(c, bkey, bkey_len, SYNOD_LINEARIZABLE, 0, &value, &len, &err), SYNOD_OK);
    CHECK(value != NULL && len == sizeof(bval) && memcmp(value, bval, sizeof(bval)) == 0);
    synod_free(value);
    value = NULL;
  }

  /* Compare-and-set. */
  EXPECT(synod_cas(c, key("a"), strlen(key("a")), "wrong", 5, "beta", 4, 0, &err),
         SYNOD_CAS_FAILED);
  EXPECT(synod_cas(c, key("a"), strlen(key("a")), "alpha", 5, "beta", 4, 0, &err), SYNOD_OK);
  EXPECT(synod_cas(c, key("a"), strlen(key("a")), NULL, 0, "gamma", 5, 0, &err), SYNOD_CAS_FAILED);
  EXPECT(synod_cas(c, key("b"), strlen(key("b")), NULL, 0, "new", 3, 0, &err), SYNOD_OK);
  EXPECT(synod_get(c, key("a"), strlen(key("a")), SYNOD_LINEARIZABLE, 0, &value, &len, &err),
         SYNOD_OK);
  CHECK(value != NULL && strcmp(value, "beta") == 0);
  synod_free(value);
  value = NULL;

  /* Increment. */
  EXPECT(synod_incr(c, key("n"), strlen(key("n")), 5, 0, &n, &err), SYNOD_OK);
  CHECK(n == 5);
  EXPECT(synod_incr(c, key("n"), strlen(key("n")), -7, 0, &n, &err), SYNOD_OK);
  CHECK(n == -2);
  EXPECT(synod_incr(c, key("a"), strlen(key("a")), 1, 0, &n, &err), SYNOD_NOT_A_NUMBER);

  /* Keys by prefix: a, b, bin\0, n in order; the limit holds. */
  {
    synod_bytes* keys = NULL;
    size_t count = 0;
    size_t i;
    EXPECT(synod_keys(c, prefix, strlen(prefix), 0, SYNOD_LINEARIZABLE, 0, &keys, &count, &err),
           SYNOD_OK);
    CHECK(count == 4 && keys != NULL);
    if (keys != NULL && count == 4) {
      CHECK(strcmp(keys[0].data, key("a")) == 0);
      CHECK(strcmp(keys[1].data, key("b")) == 0);
      CHECK(keys[2].len == strlen(key("bin")) + 1);
      CHECK(strcmp(keys[3].data, key("n")) == 0);
      for (i = 1; i < count; ++i) CHECK(strcmp(keys[i - 1].data, keys[i].data) <= 0);
    }
    synod_free(keys);
    keys = NULL;
    EXPECT(
        synod_keys(c, prefix, strlen(prefix), 2, SYNOD_DEFAULT_CONSISTENCY, 0, &keys, &count, &err),
        SYNOD_OK);
    CHECK(count == 2);
    synod_free(keys);
    keys = NULL;
    EXPECT(synod_keys(c, "no such prefix:", 15, 0, SYNOD_LINEARIZABLE, 0, &keys, &count, &err),
           SYNOD_OK);
    CHECK(count == 0 && keys == NULL);
  }

  /* Delete. */
  EXPECT(synod_del(c, key("b"), strlen(key("b")), 0, &err), SYNOD_OK);
  EXPECT(synod_get(c, key("b"), strlen(key("b")), SYNOD_LINEARIZABLE, 0, &value, &len, &err),
         SYNOD_NOT_FOUND);

  /* Generic calls: a GET encoded by hand (KvCommand{key=...}: field 2, bytes). */
  {
    unsigned char payload[130];
    const char* k = key("a");
    size_t klen = strlen(k);
    char* result = NULL;
    size_t result_len = 0;
    payload[0] = 0x12;
    payload[1] = (unsigned char)klen;
    memcpy(payload + 2, k, klen);
    EXPECT(synod_read(c, "kv", (const char*)payload, klen + 2, SYNOD_LINEARIZABLE, 0, &result,
                      &result_len, &err),
           SYNOD_OK);
    CHECK(result != NULL && result_len >= 4);
    if (result != NULL) {
      size_t i;
      int seen = 0;
      for (i = 0; i + 4 <= result_len; ++i) seen |= memcmp(result + i, "beta", 4) == 0;
      CHECK(seen);
    }
    synod_free(result);
    result = NULL;
    EXPECT(synod_write(c, "no-such-backend", (const char*)payload, klen + 2, 0, &result,
                       &result_len, &err),
           SYNOD_BAD_REQUEST);
    CHECK(result == NULL);
  }

  /* Bad arguments are refused, not crashed on. */
  EXPECT(synod_put(NULL, "k", 1, "v", 1, 0, &err), SYNOD_BAD_REQUEST);
  EXPECT(synod_put(c, NULL, 3, "v", 1, 0, &err), SYNOD_BAD_REQUEST);
  EXPECT(synod_get(c, "k", 1, SYNOD_LOCAL, 0, NULL, NULL, &err), SYNOD_BAD_REQUEST);
  CHECK(synod_put(NULL, "k", 1, "v", 1, 0, NULL) == SYNOD_BAD_REQUEST); /* error may be NULL */

  /* One client, many threads: every increment counts exactly once. */
  {
    enum { kThreads = 4, kRounds = 25 };
    pthread_t threads[kThreads];
    struct incr_args args[kThreads];
    int i;
    for (i = 0; i < kThreads; ++i) {
      args[i].client = c;
      args[i].key = key("counter");
      args[i].rounds = kRounds;
      args[i].failed = 0;
      CHECK(pthread_create(&threads[i], NULL, incr_thread, &args[i]) == 0);
    }
    for (i = 0; i < kThreads; ++i) {
      pthread_join(threads[i], NULL);
      CHECK(args[i].failed == 0);
    }
    EXPECT(synod_incr(c, key("counter"), strlen(key("counter")), 0, 0, &n, &err), SYNOD_OK);
    CHECK(n == kThreads * kRounds);
  }
  if (getenv("SYNOD_TEST_LOCKS") != NULL) lock_tests(c);
  synod_client_close(c);
  synod_client_close(NULL);

  /* An unreachable cluster fails within the timeout, with a reason. */
  {
    double t0;
    synod_client* dead = synod_client_open("127.0.0.1:1", 400, &err);
    CHECK(dead != NULL);
    if (dead != NULL) {
      t0 = now_seconds();
      EXPECT(synod_put(dead, "k", 1, "v", 1, 0, &err), SYNOD_UNAVAILABLE);
      CHECK(now_seconds() - t0 < 2.0);
      synod_client_close(dead);
    }
  }

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C API: all checks passed against %s\n", cluster);
  return 0;
}
