/* strata: the C API (C99, usable from C++).
 *
 * An image is a graph of strata nodes opened from the same options `json:{...}` takes:
 *
 *   strata_image *img;
 *   int r = strata_open("{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
 *                       "\"filename\": \"disk.qcow2\"}}", STRATA_OPEN_RDWR, &img);
 *   if (r < 0) { fprintf(stderr, "%s\n", strata_last_error(NULL)); return 1; }
 *   char buf[4096];
 *   r = strata_pread(img, buf, sizeof buf, 0);        // 0, or a negative errno
 *   r = strata_pwrite(img, buf, sizeof buf, 4096, STRATA_REQ_FUA);
 *   strata_close(img);
 *
 * Asynchronous requests go through a queue: an event loop of strata's own (one thread)
 * runs them, and completions wait until the embedder collects them on its thread:
 *
 *   strata_queue *q;
 *   strata_queue_create(img, &q);
 *   strata_aio_pread(q, buf, 4096, 0, on_done, ctx);  // on_done(ctx, result) later
 *   // poll strata_queue_fd(q) for POLLIN in your event loop, then:
 *   strata_queue_complete(q);                          // runs the ready callbacks here
 *   strata_queue_destroy(q);
 *
 * Results: 0 (or a count) on success, a negative errno on failure; the message of the last
 * failure of the calling thread is strata_last_error(). All functions are thread-safe
 * unless stated; an image may serve synchronous calls and several queues at once.
 */
#ifndef STRATA_STRATA_H_
#define STRATA_STRATA_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_image strata_image;
typedef struct strata_queue strata_queue;

/* strata_open flags. Without STRATA_OPEN_RDWR the image is read-only. */
#define STRATA_OPEN_RDWR (1u << 0)
/* O_DIRECT on file nodes (cache.direct=on). */
#define STRATA_OPEN_DIRECT (1u << 1)
/* Every write is flushed before it completes (cache.writeback=off). */
#define STRATA_OPEN_WRITETHROUGH (1u << 2)

/* Request flags. STRATA_REQ_FUA: the write is stable when it completes. */
#define STRATA_REQ_FUA (1u << 0)

/* Opens the graph described by `json_options` (a JSON object, as after "json:").
 * On success *out owns the image until strata_close. On failure *out is untouched and
 * strata_last_error(NULL) says why. */
int strata_open(const char *json_options, unsigned flags, strata_image **out);

/* The guest-visible size in bytes, or a negative errno. */
int64_t strata_get_size(strata_image *img);

/* Reads or writes `len` bytes at `offset`; blocks the calling thread. Requests must lie
 * inside the image (else -EIO). A failed write leaves the range with old or new data. */
int strata_pread(strata_image *img, void *buf, size_t len, uint64_t offset);
int strata_pwrite(strata_image *img, const void *buf, size_t len, uint64_t offset,
                  unsigned flags);
/* Makes every write that completed before this call stable. */
int strata_flush(strata_image *img);

/* The message of the calling thread's last failure on `img` (or of a failed strata_open
 * with img NULL); "" if none. Valid until the thread's next call into strata. */
const char *strata_last_error(strata_image *img);

/* Flushes and closes; every queue of the image must have been destroyed. Frees `img`
 * even when the final flush fails (the result says so). */
int strata_close(strata_image *img);

/* Messages meant for a person (qcow2 check findings, "Marking image as corrupt", blkdebug
 * breakpoint notices), one line each without the newline. strata never prints them itself:
 * without a callback they are dropped. `kind`: STRATA_DIAG_*. The callback may run on any
 * thread, concurrently; NULL removes it. */
#define STRATA_DIAG_CHECK 0
#define STRATA_DIAG_CORRUPTION 1
#define STRATA_DIAG_BREAKPOINT 2
#define STRATA_DIAG_WARNING 3 /* warnings about an image, errors an operation survived */
#define STRATA_DIAG_NBD 4     /* an NBD client failed to negotiate or was dropped, and why */
typedef void (*strata_diagnostic_fn)(void *opaque, int kind, const char *line);
void strata_set_diagnostic_callback(strata_diagnostic_fn fn, void *opaque);

/* --- Persistent dirty bitmaps (qcow2) --- */

/* Called for each run of a bitmap, in order: `len` bytes from `offset`, dirty (1: written
 * since the bitmap was cleared) or clean (0). */
typedef void (*strata_dirty_run_fn)(void *opaque, uint64_t offset, uint64_t len, int dirty);
/* Walks bitmap `name` of the image over [offset, offset + len) (clamped to the disk),
 * calling `fn` on this thread, for an incremental backup to copy the dirty runs. Returns
 * 0; -ENOENT if the image has no such bitmap; -EINVAL if it is inconsistent (it was in
 * use when the process holding it crashed: it can only be removed). Writes running
 * meanwhile may or may not be seen. */
int strata_bitmap_runs(strata_image *img, const char *name, uint64_t offset, uint64_t len,
                       strata_dirty_run_fn fn, void *opaque);

/* --- Asynchronous requests --- */

/* Called on the thread that runs strata_queue_complete (or strata_queue_destroy), with
 * the request's result (0 or a negative errno). */
typedef void (*strata_completion_fn)(void *opaque, int result);

/* Starts a queue: its own event loop thread (io_uring, or a thread pool where the kernel
 * refuses io_uring). */
int strata_queue_create(strata_image *img, strata_queue **out);

/* A file descriptor that is readable while completions wait to be collected. */
int strata_queue_fd(strata_queue *q);

/* Runs the callbacks of the completed requests on the calling thread; returns how many.
 * Callbacks may submit new requests. Call it from one thread at a time per queue. */
int strata_queue_complete(strata_queue *q);

/* Submits a request; returns 0 if it was queued (its callback will run exactly once) or a
 * negative errno (no callback). `buf` must stay valid until the callback runs. */
int strata_aio_pread(strata_queue *q, void *buf, size_t len, uint64_t offset,
                     strata_completion_fn cb, void *opaque);
int strata_aio_pwrite(strata_queue *q, const void *buf, size_t len, uint64_t offset,
                      unsigned flags, strata_completion_fn cb, void *opaque);
int strata_aio_flush(strata_queue *q, strata_completion_fn cb, void *opaque);

/* Requests submitted and whose callbacks have not run yet. */
int strata_queue_pending(strata_queue *q);

/* Waits for the requests in flight, runs the callbacks not collected yet, stops the
 * loop and frees the queue. */
int strata_queue_destroy(strata_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_STRATA_H_ */
