/*
 * frames.c -- length-prefixed frames in direct mode.
 *
 * A frame on the wire is a big-endian header, then the payload:
 *
 *     u32 length   payload bytes that follow
 *     u16 type     what the payload means
 *     payload      `length` bytes
 *
 * We encode a few frames into one buffer, read some back through the
 * cursor, drop what was read with hb_compact, append more, and read the
 * rest.  One frame's payload is produced in place, as a codec produces
 * formatted or compressed data: into the buffer's spare room, its length
 * prefix written afterwards (hb_spare, then hb_commit).  Every call's
 * status is checked; any failure exits non-zero.
 */
#include <hyperbuf.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_SIZE 6 /* u32 length + u16 type */

/* Stop with a message if a call did not return HB_OK. */
#define CHECK(call)                                                          \
  do {                                                                       \
    int rc_ = (call);                                                        \
    if (rc_ != HB_OK) {                                                      \
      fprintf(stderr, "%s failed: %s (%s)\n", #call, hb_err_name(rc_),       \
              hb_strerror(rc_));                                             \
      exit(EXIT_FAILURE);                                                    \
    }                                                                        \
  } while (0)

static void put_frame(hb_buf *b, uint16_t type, const char *text) {
  size_t n = strlen(text);
  CHECK(hb_put_u32_be(b, (uint32_t)n));
  CHECK(hb_put_u16_be(b, type));
  CHECK(hb_put(b, text, n));
}

/*
 * A frame whose payload length is known only once it is made: ask for room
 * for the header and the largest payload, let vsnprintf write the payload
 * after the header, then write the header with the length it produced and
 * commit both.  No bounce buffer and no second copy -- and nothing is
 * stored unless the commit runs, so a payload that does not fit leaves the
 * buffer as it was.  A compressor or a TLS record layer fits the same mould.
 * @return 0, or -1 (nothing stored) if the payload would exceed max bytes.
 */
static int put_formatted_frame(hb_buf *b, uint16_t type, size_t max,
                               const char *fmt, ...) {
  uint8_t *room;
  CHECK(hb_spare(b, HEADER_SIZE + max + 1, &room)); /* +1: vsnprintf's NUL */
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf((char *)room + HEADER_SIZE, max + 1, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n > max) return -1; /* not committed: not stored */
  uint32_t len = (uint32_t)n;
  room[0] = (uint8_t)(len >> 24), room[1] = (uint8_t)(len >> 16);
  room[2] = (uint8_t)(len >> 8), room[3] = (uint8_t)len;
  room[4] = (uint8_t)(type >> 8), room[5] = (uint8_t)type;
  CHECK(hb_commit(b, HEADER_SIZE + len));
  return 0;
}

/* Read one frame at the cursor and print it.  The caller has checked that
 * a header is there; a payload longer than our scratch space is an error. */
static void get_frame(hb_buf *b) {
  uint32_t len;
  uint16_t type;
  char payload[64];
  CHECK(hb_get_u32_be(b, &len));
  CHECK(hb_get_u16_be(b, &type));
  if (len >= sizeof payload) {
    fprintf(stderr, "frame of %u bytes is too long\n", (unsigned)len);
    exit(EXIT_FAILURE);
  }
  CHECK(hb_get(b, payload, len)); /* HB_ERANGE if the frame is cut short */
  payload[len] = '\0';
  printf("  frame type=%u len=%2u  \"%s\"\n", (unsigned)type, (unsigned)len,
         payload);
}

static void dump(const char *what, hb_buf *b) {
  printf("%s: %zu bytes stored, %zu unread:", what, hb_len(b),
         hb_remaining(b));
  for (size_t i = 0; i < hb_len(b) && i < 16; i++)
    printf(" %02x", hb_data(b)[i]);
  printf("%s\n", hb_len(b) > 16 ? " ..." : "");
}

int main(void) {
  hb_buf *b = hb_new(16); /* small on purpose: the puts grow it */
  if (b == NULL) {
    fprintf(stderr, "hb_new failed\n");
    return EXIT_FAILURE;
  }

  put_frame(b, 1, "hello");
  put_frame(b, 2, "length-prefixed");
  put_frame(b, 7, "big-endian");
  dump("encoded", b);

  printf("read one:\n");
  get_frame(b);
  hb_compact(b); /* drop the frame we read; the rest moves to the front */
  dump("compacted", b);

  put_frame(b, 3, "bye");
  if (put_formatted_frame(b, 4, 40, "made in place after %zu bytes",
                          hb_len(b)) != 0)
    return EXIT_FAILURE;
  /* Too long for its 8-byte limit: refused, and nothing was stored. */
  size_t stored = hb_len(b);
  if (put_formatted_frame(b, 5, 8, "%s", "far more than eight bytes") != -1 ||
      hb_len(b) != stored)
    return EXIT_FAILURE;
  dump("with a frame made in place", b);
  printf("read the rest:\n");
  while (hb_remaining(b) >= HEADER_SIZE) get_frame(b);

  /* Reading past the end is an error, and consumes nothing. */
  uint32_t extra;
  int rc = hb_get_u32_be(b, &extra);
  printf("one more read: %s (%s)\n", hb_err_name(rc), hb_strerror(rc));
  if (rc != HB_ERANGE || hb_remaining(b) != 0) return EXIT_FAILURE;

  CHECK(hb_free(b));
  return EXIT_SUCCESS;
}
