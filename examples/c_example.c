/* strata from C: open an image, write and read synchronously, then a queue of
 * asynchronous reads collected through the queue's file descriptor with poll().
 *
 *   gcc c_example.c $(pkg-config --cflags --libs strata) -o c_example
 *   ./c_example disk.qcow2
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/strata.h>

enum { kRequests = 64, kBlock = 4096 };

static int completed, failed;

static void on_read(void *opaque, int result) {
  const unsigned char *buf = (const unsigned char *)opaque;
  completed++;
  if (result != 0 || buf[0] != 0xa5 || buf[kBlock - 1] != 0xa5) failed++;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s QCOW2_IMAGE\n", argv[0]);
    return 2;
  }
  char options[4096];
  snprintf(options, sizeof options,
           "{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": \"%s\"}}",
           argv[1]);
  strata_image *img;
  int r = strata_open(options, STRATA_OPEN_RDWR, &img);
  if (r < 0) {
    fprintf(stderr, "open: %s\n", strata_last_error(NULL));
    return 1;
  }
  int64_t size = strata_get_size(img);
  static unsigned char block[kBlock];
  memset(block, 0xa5, sizeof block);
  for (int i = 0; i < kRequests; i++) {
    r = strata_pwrite(img, block, kBlock, (uint64_t)i * kBlock, i == kRequests - 1 ? STRATA_REQ_FUA : 0);
    if (r < 0) {
      fprintf(stderr, "write: %s\n", strata_last_error(img));
      return 1;
    }
  }
  strata_queue *q;
  if (strata_queue_create(img, &q) < 0) {
    fprintf(stderr, "queue: %s\n", strata_last_error(img));
    return 1;
  }
  static unsigned char bufs[kRequests][kBlock];
  for (int i = 0; i < kRequests; i++) {
    strata_aio_pread(q, bufs[i], kBlock, (uint64_t)i * kBlock, on_read, bufs[i]);
  }
  while (completed < kRequests) {
    struct pollfd p = {strata_queue_fd(q), POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    strata_queue_complete(q);
  }
  strata_queue_destroy(q);
  /* Past the end: a clean error, not a crash. */
  r = strata_pread(img, block, kBlock, (uint64_t)size);
  printf("size %lld, %d async reads, %d failed, read past the end: %d (%s)\n",
         (long long)size, completed, failed, r, strata_last_error(img));
  if (strata_close(img) < 0) return 1;
  return failed == 0 && completed == kRequests && r < 0 ? 0 : 1;
}
