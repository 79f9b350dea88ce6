/*
 * guide_stream_run.c -- runs the README's "With the stream calls" code
 * (scripts/consumers.sh extracts it to guide_stream.c): a decoder thread
 * consumes the stream while this thread, the loop, appends what a
 * socketpair delivers -- three frames cut at awkward places, the last one
 * arriving together with the peer's close -- and closes the stream.
 */
#include "guide_stream.c"

#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static int frames, bytes;

static int on_frame(const uint8_t *payload, uint32_t len, void *arg) {
  (void)arg;
  frames++;
  bytes += (int)len;
  return payload[0] >= 'a' ? 0 : -1;
}

static void *decoder_thread(void *arg) {
  static int rc;
  rc = decode_all(arg);
  return &rc;
}

int main(void) {
  int sv[2], rc = 0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return 1;
  hb_buf *in = hb_new(0);
  decoder d = {HB_CONSUMER_INIT, 4, on_frame, NULL};
  if (in == NULL || hb_stream_open(in, 1 << 20) != HB_OK ||
      hb_consumer_add(in, &d.c) != HB_OK)
    return 2;
  pthread_t t;
  if (pthread_create(&t, NULL, decoder_thread, &d) != 0) return 3;
  static const char *const parts[] = {"\0\0\0\3ab", "c\0\0\0\2de\0",
                                      "\0\0\4fghi"};
  static const size_t lens[] = {6, 8, 7};
  for (int i = 0; i < 3; i++) {
    if (write(sv[1], parts[i], lens[i]) != (ssize_t)lens[i]) return 4;
    if (i == 2) close(sv[1]); /* the last frame and the close together */
    if (hb_write_now(in, HB_TYPE(uint8_t), 0, fill, &sv[0], &rc) != HB_OK)
      return 5;
    if (rc != (i == 2 ? 1 : 0)) return 6; /* 1: the peer closed */
  }
  if (hb_stream_close(in) != HB_OK) return 7;
  void *drc;
  pthread_join(t, &drc);
  printf("guide-stream: decode_all %s, %d frames, %d payload bytes\n",
         hb_err_name(*(int *)drc), frames, bytes);
  if (*(int *)drc != HB_OK || frames != 3 || bytes != 9) return 8;
  close(sv[0]);
  return hb_consumer_remove(&d.c) == HB_OK && hb_free(in) == HB_OK ? 0 : 9;
}
