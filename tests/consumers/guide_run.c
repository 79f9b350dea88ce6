/*
 * guide_run.c -- runs the README's "One buffer per connection" code
 * (scripts/consumers.sh extracts it to guide.c): two frames and the start
 * of a third go in through a socketpair, on_readable takes the two whole
 * frames off, on_writable echoes them, and the rest of the third frame
 * then completes it; a last frame and the peer's close arrive together,
 * and the frame is still handled before HB_EOF.
 */
#include "guide.c"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int expect_echo(int fd, const char *want, size_t n) {
  char got[64];
  size_t have = 0;
  while (have < n) {
    ssize_t k = read(fd, got + have, sizeof got - have);
    if (k <= 0) return -1;
    have += (size_t)k;
  }
  return have == n && memcmp(got, want, n) == 0 ? 0 : -1;
}

int main(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return 1;
  conn c = {sv[0], hb_new(0), hb_new(0)};
  if (c.in == NULL || c.out == NULL) return 2;
  static const char first[] = "\0\0\0\3abc\0\0\0\2de\0\0\0\4fg";
  if (write(sv[1], first, sizeof first - 1) != (ssize_t)sizeof first - 1)
    return 3;
  if (on_readable(&c) != HB_OK || on_writable(&c) != HB_OK) return 4;
  if (expect_echo(sv[1], "\0\0\0\3abc\0\0\0\2de", 13) != 0) return 5;
  if (hb_len(c.in) != 6 || hb_len(c.out) != 0) return 6; /* "fg" waits */
  if (write(sv[1], "hi", 2) != 2) return 7;
  if (on_readable(&c) != HB_OK || on_writable(&c) != HB_OK) return 8;
  if (expect_echo(sv[1], "\0\0\0\4fghi", 8) != 0) return 9;
  if (write(sv[1], "\0\0\0\1z", 5) != 5) return 10;
  shutdown(sv[1], SHUT_WR); /* the frame and the end, in one readiness */
  if (on_readable(&c) != HB_EOF || on_writable(&c) != HB_OK) return 11;
  if (expect_echo(sv[1], "\0\0\0\1z", 5) != 0) return 12;
  close(sv[1]);
  printf("guide: frames decoded and echoed; HB_EOF at the end\n");
  close(sv[0]);
  return hb_free(c.in) == HB_OK && hb_free(c.out) == HB_OK ? 0 : 13;
}
