/* The Synod client library's C API (libsynod_client.so). C99; usable from C++.
 *
 *   char* err = NULL;
 *   synod_client* c = synod_client_open("127.0.0.1:7001,127.0.0.1:7002", 5000, &err);
 *   if (!c) { fprintf(stderr, "%s\n", err); synod_free(err); return 1; }
 *   synod_code rc = synod_put(c, "k", 1, "v", 1, 0, &err);
 *   ...
 *   synod_client_close(c);
 *
 * It wraps the C++ client (synod/client.hpp): it finds the leader, follows
 * redirects, retries a write with the same exactly-once identity after a timeout
 * or a lost connection until the call's deadline, and reconnects by itself.
 *
 * Conventions of every function:
 * - Keys and values are bytes: a pointer and a length (a pointer may be NULL
 *   when its length is 0). They need not be NUL-terminated.
 * - timeout_ms: this call's timeout; 0 (or negative) means the client's default
 *   given to synod_client_open.
 * - error: when not NULL, receives on failure (any code but SYNOD_OK) a
 *   NUL-terminated message the caller frees with synod_free; set to NULL on
 *   success. Pass NULL to ignore messages.
 * - Every buffer or array the library returns through an out-parameter is owned
 *   by the caller and freed with synod_free, exactly once. Returned byte
 *   buffers carry an extra NUL after their length, so text can be used as a
 *   C string.
 * - A synod_client may be used from many threads at once. Calls block until
 *   they finish (at most about their timeout). synod_client_close must be
 *   called once, when no other thread uses the client any more.
 * - Invalid arguments (a NULL client, a NULL pointer with a nonzero length, a
 *   NULL out-parameter that is required) return SYNOD_BAD_REQUEST.
 */
#ifndef SYNOD_CLIENT_H_
#define SYNOD_CLIENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SYNOD_CLIENT_API __attribute__((visibility("default")))
#else
#define SYNOD_CLIENT_API
#endif

/* What a call ended with (the same as synod::client::Code). */
typedef enum synod_code {
  SYNOD_OK = 0,
  SYNOD_NOT_FOUND = 1,      /* get, del: the key does not exist */
  SYNOD_CAS_FAILED = 2,     /* cas: the value was not the expected one */
  SYNOD_NOT_A_NUMBER = 3,   /* incr: the value is not an integer */
  SYNOD_TIMEOUT = 4,        /* no answer before the deadline; a write's outcome is unknown */
  SYNOD_UNAVAILABLE = 5,    /* no node reachable / no leader until the deadline */
  SYNOD_BAD_REQUEST = 6,    /* refused, not retried: bad argument, unknown backend, ... */
  SYNOD_BACKEND_ERROR = 7,  /* the backend refused the command */
  SYNOD_PROTOCOL_ERROR = 8, /* an answer could not be decoded */
  SYNOD_RESULT_LOST = 9,    /* applied, but the node lost the result in a restart */
  SYNOD_LOCK_BUSY = 10,     /* lock held by another session (try), or not granted in time */
  SYNOD_SESSION_LOST = 11   /* the lock session expired: every lock it held is released */
} synod_code;

typedef enum synod_consistency {
  SYNOD_DEFAULT_CONSISTENCY = 0, /* the client's default (local unless set otherwise) */
  SYNOD_LOCAL = 1,               /* the answering node's state, maybe stale */
  SYNOD_LINEARIZABLE = 2         /* the leader's, confirmed by lease or quorum */
} synod_consistency;

typedef struct synod_client synod_client;

/* A byte string inside an array returned by synod_keys. */
typedef struct synod_bytes {
  char* data; /* NUL-terminated after len bytes */
  size_t len;
} synod_bytes;

/* Settings for synod_client_open_with. Initialize with synod_options_init, then
 * change what you need: later versions may add fields at the end. */
typedef struct synod_options {
  size_t struct_size;     /* set by synod_options_init */
  int timeout_ms;         /* default call timeout; default 5000 */
  int attempt_timeout_ms; /* per node before trying another; default 1000 */
  int linearizable_reads; /* nonzero: reads default to linearizable; default 0 */
  int prefer_redirect;    /* nonzero: followers redirect instead of forwarding */
  uint64_t client_id;     /* exactly-once session id; 0: random (default) */
  const char* cluster;    /* cluster name; NULL: "synod" */
  const char* kv_backend; /* key-value backend name; NULL: "kv" */
} synod_options;

/* synod_options_init(&o) fills o with the defaults. Called directly it is a
 * macro passing sizeof(synod_options) as this header has it, so a program
 * built against this header is never written past its struct's end by a
 * later library with a larger one. Bindings (ctypes, cgo) call the _sized
 * function with the struct's size as they define it. */
SYNOD_CLIENT_API void synod_options_init(synod_options* options);
SYNOD_CLIENT_API void synod_options_init_sized(synod_options* options, size_t size);
#define synod_options_init(options) synod_options_init_sized((options), sizeof(synod_options))

/* Opens a client for the nodes in nodes_csv ("HOST:PORT,HOST:PORT,..."). Does
 * not wait for any node; an unreachable cluster shows in the calls. NULL (and
 * *error) when an address is malformed or timeout_ms <= 0. */
SYNOD_CLIENT_API synod_client* synod_client_open(const char* nodes_csv, int timeout_ms,
                                                 char** error);
SYNOD_CLIENT_API synod_client* synod_client_open_with(const char* nodes_csv,
                                                      const synod_options* options, char** error);
/* Ends calls in progress (SYNOD_UNAVAILABLE), closes connections, frees the
 * client. NULL is ignored. */
SYNOD_CLIENT_API void synod_client_close(synod_client* client);

/* Frees what the library returned (messages, values, key arrays). NULL is ignored. */
SYNOD_CLIENT_API void synod_free(void* p);

/* "ok", "not_found", ... ; a static string, never NULL. */
SYNOD_CLIENT_API const char* synod_code_name(synod_code code);

SYNOD_CLIENT_API synod_code synod_put(synod_client* client, const char* key, size_t key_len,
                                      const char* value, size_t value_len, int timeout_ms,
                                      char** error);

/* On SYNOD_OK, *value (required) receives the value (free with synod_free) and
 * *value_len (may be NULL) its length. On any other code *value is NULL. */
SYNOD_CLIENT_API synod_code synod_get(synod_client* client, const char* key, size_t key_len,
                                      synod_consistency consistency, int timeout_ms, char** value,
                                      size_t* value_len, char** error);

SYNOD_CLIENT_API synod_code synod_del(synod_client* client, const char* key, size_t key_len,
                                      int timeout_ms, char** error);

/* Sets key to value if its value equals expected, or, when expected is NULL,
 * if the key is absent (use a non-NULL pointer with expected_len 0 for "the
 * empty value"). SYNOD_CAS_FAILED otherwise. */
SYNOD_CLIENT_API synod_code synod_cas(synod_client* client, const char* key, size_t key_len,
                                      const char* expected, size_t expected_len, const char* value,
                                      size_t value_len, int timeout_ms, char** error);

/* Adds delta; on SYNOD_OK *result (may be NULL) receives the new value. */
SYNOD_CLIENT_API synod_code synod_incr(synod_client* client, const char* key, size_t key_len,
                                       int64_t delta, int timeout_ms, int64_t* result,
                                       char** error);

/* The keys starting with prefix, in order, at most limit (0: no limit). On
 * SYNOD_OK, *keys (required) receives an array of *count (required) entries in
 * ONE allocation (the array and every key's bytes): free it with one
 * synod_free(*keys). *keys is NULL when there are none or on failure. */
SYNOD_CLIENT_API synod_code synod_keys(synod_client* client, const char* prefix, size_t prefix_len,
                                       uint32_t limit, synod_consistency consistency,
                                       int timeout_ms, synod_bytes** keys, size_t* count,
                                       char** error);

/* Any backend: payload is the backend's own command encoding. On SYNOD_OK,
 * *result (may be NULL to ignore it) receives the backend's result bytes (free
 * with synod_free) and *result_len (may be NULL) their length. */
SYNOD_CLIENT_API synod_code synod_write(synod_client* client, const char* backend,
                                        const char* payload, size_t payload_len, int timeout_ms,
                                        char** result, size_t* result_len, char** error);
SYNOD_CLIENT_API synod_code synod_read(synod_client* client, const char* backend,
                                       const char* payload, size_t payload_len,
                                       synod_consistency consistency, int timeout_ms, char** result,
                                       size_t* result_len, char** error);

/* ---- Locks: sessions, leases and fencing tokens (the "lock" backend; docs/LOCKS.md).
 *
 *   synod_lock_session* s = NULL;
 *   if (synod_lock_session_open(c, NULL, &s, &err) != SYNOD_OK) { ... }
 *   uint64_t token;
 *   if (synod_lock_acquire(s, "backup", 0, 30000, &token, &err) == SYNOD_OK) {
 *     write_to_storage(data, token);   (the storage refuses tokens older than its newest)
 *     synod_lock_release(s, "backup", &err);
 *   }
 *   synod_lock_session_close(s);     (releases whatever the session still holds)
 *
 * A session is kept alive by a background thread. A lock is a lease: when the
 * session misses its keep-alives for its TTL the cluster releases its locks,
 * maybe while the holder still works, so protect the resource with the token. */

typedef struct synod_lock_session synod_lock_session;

/* Called once when the session is lost, with the reason (valid during the
 * call), from the library's keep-alive thread or the thread of a call that
 * noticed. It must return quickly and must not close the session. */
typedef void (*synod_lock_lost_fn)(void* arg, const char* reason);

/* Initialize with synod_lock_options_init, then change what you need. */
typedef struct synod_lock_options {
  size_t struct_size;        /* set by synod_lock_options_init */
  int ttl_ms;                /* session TTL, 1000..600000; default 10000 */
  int keepalive_ms;          /* keep-alive period; 0 (default): ttl_ms / 3 */
  int timeout_ms;            /* each call's timeout; 0 (default): the client's */
  const char* backend;       /* the lock backend's name; NULL: "lock" */
  synod_lock_lost_fn on_lost; /* may be NULL */
  void* on_lost_arg;
  int lock_delay_ms;         /* how long a lock of the session stays unavailable
                                after the session EXPIRES, 0..300000; default 5000 */
} synod_lock_options;

/* synod_lock_options_init(&o) fills o with the defaults (called directly, a
 * macro passing sizeof(synod_lock_options), as synod_options_init). The
 * function of that name fills only the first version's fields (through
 * on_lost_arg; programs built against that header call it): bindings and
 * function pointers should use synod_lock_options_init_sized. */
SYNOD_CLIENT_API void synod_lock_options_init(synod_lock_options* options);
SYNOD_CLIENT_API void synod_lock_options_init_sized(synod_lock_options* options, size_t size);
#define synod_lock_options_init(options) \
  synod_lock_options_init_sized((options), sizeof(synod_lock_options))

/* Opens a session (options may be NULL for the defaults). On SYNOD_OK,
 * *session receives it; the client must stay open until the session is closed. */
SYNOD_CLIENT_API synod_code synod_lock_session_open(synod_client* client,
                                                    const synod_lock_options* options,
                                                    synod_lock_session** session, char** error);
/* Stops the keep-alives, closes the session on the cluster (releasing its
 * locks, with no lock-delay) and frees it. NULL is ignored. */
SYNOD_CLIENT_API void synod_lock_session_close(synod_lock_session* session);
/* The session's id (0 for NULL). */
SYNOD_CLIENT_API uint64_t synod_lock_session_id(const synod_lock_session* session);
/* 1 when the session is lost (then *reason, if reason is not NULL, receives
 * why, to free with synod_free), else 0 (and *reason is NULL). */
SYNOD_CLIENT_API int synod_lock_session_lost(const synod_lock_session* session, char** reason);

/* Acquires the lock `name` (a NUL-terminated UTF-8 string), shared when
 * `shared` is nonzero. wait_ms: 0 tries once; negative waits without limit;
 * else at most that long (then the wait is cancelled). SYNOD_OK with *token
 * (may be NULL) = the fencing token; SYNOD_LOCK_BUSY; SYNOD_SESSION_LOST; or
 * why the cluster did not answer (SYNOD_TIMEOUT: not granted; the session
 * cancels the request in the background, so it holds nothing it was not
 * granted). Idempotent for a held lock. */
SYNOD_CLIENT_API synod_code synod_lock_acquire(synod_lock_session* session, const char* name,
                                               int shared, int wait_ms, uint64_t* token,
                                               char** error);
/* SYNOD_OK, or SYNOD_NOT_FOUND when the session does not hold it. */
SYNOD_CLIENT_API synod_code synod_lock_release(synod_lock_session* session, const char* name,
                                               char** error);
/* Releases `name` for any session (breaking the lock of a process that is gone). */
SYNOD_CLIENT_API synod_code synod_lock_release_for(synod_client* client, const char* name,
                                                   uint64_t session_id, int timeout_ms,
                                                   char** error);
/* The lock's holders, waiters and newest token (show) or every lock and
 * session (list) as the backend's JSON text (free with synod_free). */
SYNOD_CLIENT_API synod_code synod_lock_show(synod_client* client, const char* name,
                                            synod_consistency consistency, int timeout_ms,
                                            char** json, char** error);
SYNOD_CLIENT_API synod_code synod_lock_list(synod_client* client, synod_consistency consistency,
                                            int timeout_ms, char** json, char** error);
/* The fencing helper: *current (required) = 1 when token is the current
 * holder's token, else 0; *newest (may be NULL) = the newest token granted. */
SYNOD_CLIENT_API synod_code synod_lock_check(synod_client* client, const char* name,
                                             uint64_t token, synod_consistency consistency,
                                             int timeout_ms, int* current, uint64_t* newest,
                                             char** error);

#ifdef __cplusplus
}
#endif

#endif /* SYNOD_CLIENT_H_ */
