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
 * rest.  Every call's status is checked; any failure exits non-zero.
 */
#include <hyperbuf.h>

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
