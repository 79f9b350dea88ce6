/*
 * detached.c -- visits that run by themselves, for programs with no event
 * loop and no thread to spare for waiting.
 *
 * A write visitor holds the buffer while three detached read visitors queue
 * behind it.  Nothing drives them: when the writer finishes -- here, on a
 * worker thread -- the thread that made them runnable runs them, one after
 * the other, and calls each one's done function.  A fourth detached reader
 * is cancelled before its turn; its done function says so.
 */
#include <hyperbuf.h>

#include <pthread.h>
#include <stdio.h>

static pthread_t main_thread;

static const char *who(void) {
  return pthread_equal(pthread_self(), main_thread) ? "main thread"
                                                    : "worker thread";
}

static int append_greeting(hb_view *w, void *ctx) {
  (void)ctx;
  printf("writer   runs on the %s\n", who());
  return hb_view_append_bytes(w, "hello, detached readers", 23);
}

static int print_contents(hb_view *r, void *ctx) {
  size_t n;
  const uint8_t *bytes = hb_view_read_bytes(r, &n);
  printf("reader %d runs on the %s: \"%.*s\"\n", *(int *)ctx, who(), (int)n,
         (const char *)bytes);
  return (int)n;
}

static void on_done(hb_visitor *v, int status, int result, void *arg) {
  (void)v;
  printf("reader %d done: %s, callback returned %d\n", *(int *)arg,
         hb_strerror(status), result);
}

static void *finish_writer(void *writer) {
  int result;
  int rc = hb_block_on(writer, &result);
  printf("writer   finished: %s\n", hb_strerror(rc));
  return NULL;
}

int main(void) {
  main_thread = pthread_self();
  hb_buf *b = hb_new(64);
  if (b == NULL) return 1;

  static int ids[4] = {1, 2, 3, 4};
  hb_visitor writer = HB_VISITOR_INIT;
  hb_visitor readers[4] = {HB_VISITOR_INIT, HB_VISITOR_INIT, HB_VISITOR_INIT,
                           HB_VISITOR_INIT};
  if (HB_CAST_MUT(&writer, b, uint8_t) != HB_OK ||
      hb_visit(&writer, 32, append_greeting, NULL) != HB_OK)
    return 1;
  for (int i = 0; i < 4; i++) {
    if (HB_CAST(&readers[i], b, uint8_t) != HB_OK ||
        hb_visit_detached(&readers[i], 0, print_contents, &ids[i], on_done,
                          &ids[i]) != HB_OK)
      return 1;
  }
  printf("4 detached readers queued behind the writer; cancelling reader 4\n");
  if (hb_cancel(&readers[3]) != HB_OK) return 1;

  pthread_t t;
  pthread_create(&t, NULL, finish_writer, &writer);
  pthread_join(t, NULL); /* the worker ran the readers before it returned */

  int rc = hb_free(b); /* every visitor has finished: done was called */
  printf("buffer freed: %s\n", hb_strerror(rc));
  return rc == HB_OK ? 0 : 1;
}
