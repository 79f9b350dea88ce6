/*
 * hot.c -- compiled (not linked) by scripts/consumers.sh against a release
 * install, the way most Makefiles compile: -O2, no -DNDEBUG.  The inline
 * calls must follow the library's build (HB_CHECKED 0), so this object
 * must not refer to the misuse check at all.
 */
#include <hyperbuf.h>

#if HB_CHECKED
#error "a release install must say HB_CHECKED 0"
#endif

int hot_put(hb_buf *b, const uint8_t *src, size_t n);

int hot_put(hb_buf *b, const uint8_t *src, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (hb_put_u8(b, src[i]) != HB_OK) return -1;
  uint32_t x;
  return hb_put_u32_le(b, 7) | hb_get_u32_le(b, &x) | hb_reserve(b, 64);
}
