/*
 * test_fuzz_replay.c -- replay the fuzzer's corpus and crash inputs.
 *
 * Runs the fuzzer's interpreter (tests/fuzz/fz_*.c, with its
 * reference model and hb__check after every operation) over every file in
 * tests/fuzz/corpus and tests/fuzz/crashes, so each input that ever found a
 * bug stays a regression test in every build (plain, ASan+UBSan, TSan,
 * valgrind).  Inputs in every version of the operation language replay:
 * v1 (every input from before the one-call visits, with its meaning
 * unchanged), v2 (beginning with FZ_V2_MAGIC: hb_read_now/hb_write_now,
 * hb_view_drain, counters from inside callbacks) and v3 (FZ_V3_MAGIC: v2
 * plus spare room + commit, the writer session, hb_peek_iov), v4
 * (FZ_V4_MAGIC: leftover visitor bytes, wakers that call back) and v5
 * (FZ_V5_MAGIC: the read bias armed); see fuzz_ops.h.  The
 * folders are found next to this source file; HB_FUZZ_DIR
 * overrides that.  Given file arguments, it replays just those (for
 * debugging: HB_FUZZ_TRACE=1 prints every call); any other argument is a
 * test-name filter (hb_test.h).
 */
#include "hb_test.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include "fuzz/fz.h"

static int replayed_v2; /* inputs in the v2 language or later */

static size_t replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("%s: %s", path, strerror(errno));
  static uint8_t data[1 << 16];
  size_t n = fread(data, 1, sizeof data, f);
  fclose(f);
  fz_run(data, n);
  replayed_v2 += fz.v2;
  return n;
}

static const char *fuzz_dir(void) {
  static char dir[4096];
  const char *env = getenv("HB_FUZZ_DIR");
  if (env != NULL) return env;
  snprintf(dir, sizeof dir, "%s", __FILE__);
  char *slash = strrchr(dir, '/');
  if (slash == NULL) return "fuzz";
  snprintf(slash + 1, sizeof dir - (size_t)(slash + 1 - dir), "fuzz");
  return dir;
}

static int replay_dir(const char *sub, int required) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", fuzz_dir(), sub);
  DIR *d = opendir(path);
  if (d == NULL) {
    if (required) fail_msg("cannot open %s: %s", path, strerror(errno));
    return 0;
  }
  int files = 0;
  size_t bytes = 0;
  replayed_v2 = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "README") == 0) continue;
    char file[8192];
    snprintf(file, sizeof file, "%s/%s", path, e->d_name);
    bytes += replay_file(file);
    files++;
  }
  closedir(d);
  print_message("replayed %d inputs (%d of them v2 or later, %zu bytes) "
                "from %s\n",
                files, replayed_v2, bytes, path);
  return files;
}

static void test_corpus(void **state) {
  (void)state;
  assert_true(replay_dir("corpus", 1) > 0);
}

static void test_crashes(void **state) {
  (void)state;
  replay_dir("crashes", 0);
}

int main(int argc, char **argv) {
  if (argc > 1 && access(argv[1], R_OK) == 0) { /* files, not a filter */
    for (int i = 1; i < argc; i++) {
      replay_file(argv[i]);
      printf("%s: ok\n", argv[i]);
    }
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_corpus),
      cmocka_unit_test(test_crashes),
  };
  return hb_test_main("fuzz_replay", tests);
}
