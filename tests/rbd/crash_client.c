/* A guest that the crash test kills: random writes through strata's C API queue, with
 * flushes every few writes, announcing on stdout what it does so that the killer knows
 * what the image may hold afterwards.
 *
 *   crash_client JSON_OPTIONS SEED DEPTH
 *
 * Lines (each flushed before the request it announces is submitted, or after the
 * completion it reports):
 *   S i offset length byte   write i is about to be submitted: `length` bytes of `byte`
 *   F i                      every write up to i has completed and a flush after them has
 *                            completed: they are durable
 * Writes in flight never overlap one another, so the writes touching one sector are
 * ordered by their submission. The client runs until it is killed (or a request fails,
 * exit 1). Offsets and lengths are multiples of 512 inside the image.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/strata.h>

enum { kMaxDepth = 64, kMaxLength = 256 * 1024, kWritesPerFlush = 24 };

struct slot {
  int busy;
  uint64_t offset, length;
  unsigned char *buf;
};

static struct slot slots[kMaxDepth];
static int in_flight, failed, flush_done;
static uint64_t rng_state;

static uint64_t next_random(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

static void on_write(void *opaque, int result) {
  struct slot *s = (struct slot *)opaque;
  s->busy = 0;
  in_flight--;
  if (result < 0) failed = result;
}

static void on_flush(void *opaque, int result) {
  (void)opaque;
  if (result < 0) failed = result;
  flush_done = 1;
}

static int overlaps_in_flight(uint64_t offset, uint64_t length) {
  for (int i = 0; i < kMaxDepth; i++) {
    if (slots[i].busy && offset < slots[i].offset + slots[i].length &&
        slots[i].offset < offset + length) {
      return 1;
    }
  }
  return 0;
}

/* Collects completions until `done()` holds. */
static int wait_until(strata_queue *q, int (*done)(void)) {
  while (!done() && !failed) {
    struct pollfd p = {strata_queue_fd(q), POLLIN, 0};
    if (poll(&p, 1, 60000) <= 0) return -1;
    strata_queue_complete(q);
  }
  return failed ? -1 : 0;
}

static int depth;
static int has_free_slot(void) { return in_flight < depth; }
static int idle(void) { return in_flight == 0; }
static int flushed(void) { return flush_done; }

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s JSON_OPTIONS SEED DEPTH\n", argv[0]);
    return 2;
  }
  rng_state = strtoull(argv[2], NULL, 0) * 0x9E3779B97F4A7C15ull + 1;
  depth = atoi(argv[3]);
  if (depth < 1 || depth > kMaxDepth) return 2;
  strata_image *img;
  if (strata_open(argv[1], STRATA_OPEN_RDWR, &img) < 0) {
    fprintf(stderr, "open: %s\n", strata_last_error(NULL));
    return 1;
  }
  uint64_t sectors = (uint64_t)strata_get_size(img) / 512;
  strata_queue *q;
  if (strata_queue_create(img, &q) < 0) return 1;
  for (int i = 0; i < kMaxDepth; i++) slots[i].buf = malloc(kMaxLength);
  for (uint64_t i = 0;; i++) {
    if (wait_until(q, has_free_slot) < 0) break;
    uint64_t length = 512 * (1 + next_random() % (kMaxLength / 512));
    if (next_random() % 4 != 0) length = 512 * (1 + next_random() % 16);
    if (length / 512 > sectors) length = sectors * 512;
    uint64_t offset = 512 * (next_random() % (sectors - length / 512 + 1));
    while (overlaps_in_flight(offset, length)) {
      if (wait_until(q, idle) < 0) goto out;
    }
    struct slot *s = NULL;
    for (int k = 0; k < kMaxDepth && s == NULL; k++) {
      if (!slots[k].busy) s = &slots[k];
    }
    unsigned byte = 1 + (unsigned)(i % 250);
    memset(s->buf, (int)byte, length);
    s->busy = 1;
    s->offset = offset;
    s->length = length;
    printf("S %llu %llu %llu %u\n", (unsigned long long)i, (unsigned long long)offset,
           (unsigned long long)length, byte);
    fflush(stdout);
    in_flight++;
    if (strata_aio_pwrite(q, s->buf, length, offset, 0, on_write, s) < 0) break;
    if ((i + 1) % kWritesPerFlush == 0) {
      if (wait_until(q, idle) < 0) break;
      flush_done = 0;
      if (strata_aio_flush(q, on_flush, NULL) < 0 || wait_until(q, flushed) < 0) break;
      printf("F %llu\n", (unsigned long long)i);
      fflush(stdout);
    }
  }
out:
  fprintf(stderr, "request failed: %d %s\n", failed, strata_last_error(img));
  return 1;
}
