/* synod/backend.h: the C ABI between a Synod node (the host) and a backend.
 *
 * A backend is a shared library (libsynod_backend_NAME.so) that turns the
 * commands of the replicated log into state: a key-value store, an SQL
 * database, a lock table. It exports exactly one symbol, synod_backend_entry(),
 * which returns a static table of functions. The host loads the library with
 * dlopen(), checks the table's version and size, and calls open() once per
 * instance. This header is plain C (C99 and C++) so that a backend may be
 * written in any language that can export a C function, and so that the host
 * and the backend share no C++ types, allocators or exceptions.
 *
 * Versioning. SYNOD_BACKEND_ABI_VERSION changes whenever a change would break a
 * backend built against an older header (a field moved, retyped or removed, a
 * contract changed). The host refuses a table whose abi_version differs from
 * its own. The first three fields (abi_version, struct_size, name) keep their
 * place and type in every version, so a host can always say which backend, and
 * which version, it refused. New functions are only ever appended: struct_size
 * tells the host which of them a backend has.
 *
 * Memory. Every buffer a backend hands back (*out, *error) is allocated by the
 * backend and released by the host through the same backend's free_buffer(),
 * never with the host's free(). Buffers the host passes in (options, commands,
 * requests) are owned by the host and valid only for the duration of the call.
 * Byte buffers are not NUL-terminated; *error strings are.
 *
 * Errors. Functions that can fail return 0 on success and non-zero on failure;
 * on failure they set *error to a human-readable, NUL-terminated message (or
 * leave it NULL when not even that could be allocated) and leave *out NULL.
 * The host initialises *out to NULL, *out_len to 0 and *error to NULL before
 * each call. No function may let a C++ exception (or a longjmp) escape.
 *
 * Threads. The host calls open() and close() with no other call in flight on
 * that instance. apply() calls on one instance are serialised (one at a time,
 * in log order). query() and last_applied() may run on other threads
 * concurrently with apply() and with each other. Instances are independent.
 *
 * Determinism. apply() must compute its effect and its result only from the
 * instance's current state, the command bytes and the apply context: no clock,
 * no randomness, no environment. Every node applies the same log and must reach
 * the same state and return the same results.
 */
#ifndef SYNOD_BACKEND_H_
#define SYNOD_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYNOD_BACKEND_ABI_VERSION 1

/* The one symbol a backend library exports (for dlsym). */
#define SYNOD_BACKEND_ENTRY_SYMBOL "synod_backend_entry"

/* Marks synod_backend_entry for export even when the library is built with
 * -fvisibility=hidden (which every backend should be). */
#if defined(__GNUC__) || defined(__clang__)
#define SYNOD_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define SYNOD_BACKEND_EXPORT
#endif

/* Where one command sits in the log, and the values its proposer stamped on it.
 *
 * Positions. A Paxos slot holds a batch of commands, possibly for several
 * backends. The host numbers every command of every chosen slot consecutively
 * from 1, in log order (the same numbering on every node); that number is the
 * command's position, passed in `slot`. A backend sees only the positions of
 * the commands addressed to it: always increasing, with gaps where other
 * backends' commands (or no-ops, or deduplicated retries) sit. */
typedef struct synod_apply_context {
  /* The command's position (>= 1; see above). Named "slot" in ABI version 1. */
  uint64_t slot;
  /* The proposer's wall clock (ms since the Unix epoch) when it proposed. */
  int64_t timestamp_ms;
  /* Chosen by the proposer: use it instead of any source of randomness. */
  uint64_t random_seed;
} synod_apply_context;

/* Snapshot streams (used by snapshot() and restore(); a later issue defines
 * them fully). write() consumes len bytes and returns 0, or non-zero to abort.
 * read() fills up to cap bytes, sets *got (0 = end of stream) and returns 0,
 * or returns non-zero to abort. */
typedef int (*synod_snapshot_write_fn)(void* arg, const uint8_t* data, size_t len);
typedef int (*synod_snapshot_read_fn)(void* arg, uint8_t* data, size_t cap, size_t* got);

typedef struct synod_backend_api {
  /* SYNOD_BACKEND_ABI_VERSION of the header the backend was built with. */
  uint32_t abi_version;

  /* sizeof(synod_backend_api) as the backend was built. The host refuses a
   * table smaller than the one it knows for this ABI version. */
  uint32_t struct_size;

  /* The backend's name, e.g. "kv": lowercase letters, digits and '_'. It is
   * the NAME in libsynod_backend_NAME.so and in proto Command.backend. Static
   * storage; never NULL. */
  const char* name;

  /* Opens an instance. `keys` and `values` are n NUL-terminated strings each
   * (option i is keys[i] = values[i]; n may be 0, and then both may be NULL).
   * A backend should refuse options it does not know, so a typo is an error
   * instead of a silent default. Returns an opaque handle, or NULL with *error
   * set (the option that is wrong, the file that could not be opened, ...).
   * An instance owns its resources (files, connections) until close(). */
  void* (*open)(const char* const* keys, const char* const* values, size_t n, char** error);

  /* Applies one chosen command, at position ctx->slot.
   *
   * The backend records ctx->slot as its last applied position atomically with
   * the command's effect (same database transaction / write batch): after a
   * crash either both are there or neither is.
   *
   * - ctx->slot <= last_applied(): a no-op (the command was applied before a
   *   crash). Returns 0 with a result that says so; nothing changes. The host
   *   normally skips these itself.
   * - Otherwise returns 0 when applied, with the result bytes in *out /
   *   *out_len (*out may be NULL when *out_len is 0). Failures the command
   *   itself causes (malformed bytes, a key not found, a failed
   *   compare-and-set, a constraint violated) are results, not errors: the
   *   position advances and every node returns the same result.
   * - Returns non-zero, with *error, when it could not apply for a reason
   *   outside the log (I/O error, lost database connection, out of memory).
   *   Nothing was applied and last_applied() did not move: the host stops
   *   applying, reports the error, and retries the same command later.
   *
   * `cmd` holds `len` bytes (cmd may be NULL when len is 0). */
  int (*apply)(void* self, const synod_apply_context* ctx, const uint8_t* cmd, size_t len,
               uint8_t** out, size_t* out_len, char** error);

  /* Serves a read-only request from the instance's current state; never
   * changes it. Returns 0 with the result bytes in *out / *out_len; a bad
   * request may be a result (like a bad command in apply) or an error.
   * Non-zero with *error when it could not answer. */
  int (*query)(void* self, const uint8_t* req, size_t len, uint8_t** out, size_t* out_len,
               char** error);

  /* The position of the last applied command (ctx->slot of the last apply
   * that returned 0 and was not a no-op), durable with its effect; 0 before
   * the first. After a crash the host replays the log's commands above it.
   * Cheap: no I/O. */
  uint64_t (*last_applied)(void* self);

  /* Writes a snapshot of the whole state (with its last applied position)
   * through write(arg, ...). 0 on success; non-zero with *error. May be NULL:
   * the backend cannot snapshot. (Contract completed by a later issue.) */
  int (*snapshot)(void* self, synod_snapshot_write_fn write, void* arg, char** error);

  /* Replaces the whole state with a snapshot read through read(arg, ...). 0 on
   * success; non-zero with *error, and then the previous state must still be
   * intact. May be NULL; must be NULL exactly when snapshot is. */
  int (*restore)(void* self, synod_snapshot_read_fn read, void* arg, char** error);

  /* Closes the instance and releases everything it owns. `self` is invalid
   * afterwards. Buffers it returned earlier stay valid until free_buffer(). */
  void (*close)(void* self);

  /* Frees a buffer this backend returned in *out or *error. NULL is a no-op.
   * Safe from any thread, before and after close(). */
  void (*free_buffer)(void* p);

  /* Makes the effect of every apply() that returned so far durable (fsync).
   * The host calls it after a batch of applies and before it records its own
   * applied point, so that point never runs ahead of the backend's data after
   * a power loss. 0 on success; non-zero with *error (the host stops applying
   * and retries, as for apply()). May be NULL when apply() is durable already. */
  int (*sync)(void* self, char** error);

  /* ---- Appended later; struct_size says whether a backend has them. ---- */

  /* Optional (NULL, or absent from a smaller table: the host calls apply() once
   * per command). Applies n >= 1 commands in order, exactly as n apply() calls
   * would — same effects, same results, each command seeing the effects of the
   * ones before it — but may write them together (one transaction, one write
   * batch). ctxs[i], cmds[i] and lens[i] describe command i; positions ascend.
   * Returns 0 when all were applied: results[i] / result_lens[i] hold command
   * i's result (each a buffer for free_buffer, or NULL when its length is 0).
   * Returns non-zero with *error when none was applied (all or nothing; the
   * host stops applying and retries), leaving every results[i] NULL. */
  int (*apply_batch)(void* self, size_t n, const synod_apply_context* ctxs,
                     const uint8_t* const* cmds, const size_t* lens, uint8_t** results,
                     size_t* result_lens, char** error);

  /* Optional (NULL or absent: every command is accepted). Checks a command
   * before the node proposes it, so that a command the backend would refuse
   * (a non-deterministic SQL function, say) never enters the log: 0 when it
   * may be proposed; non-zero with *error (a buffer for free_buffer) saying
   * why. Must depend on the command's bytes alone (no state, no I/O), and is
   * safe from any thread, concurrently with anything but close(). */
  int (*validate)(void* self, const uint8_t* cmd, size_t len, char** error);
} synod_backend_api;

/* The entry point: returns the backend's static table (never NULL for a
 * working backend). Called once per load, from any thread; it must not
 * allocate or fail. */
typedef const synod_backend_api* (*synod_backend_entry_fn)(void);
SYNOD_BACKEND_EXPORT const synod_backend_api* synod_backend_entry(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SYNOD_BACKEND_H_ */
