/*
 * isolate.h -- run one scenario in a child process under a watchdog, so
 * that a hang or a crash fails that scenario (and names it) instead of
 * hanging CI or taking the rest of the test program down.  For cmocka
 * tests: include after cmocka.h.  A child checks with CHILD_CHECK (cmocka's
 * asserts would jump back into the runner inside the child) and ends with
 * _exit: 0 passed, anything else failed.
 */
#ifndef HB_TEST_ISOLATE_H
#define HB_TEST_ISOLATE_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define ISOLATE_HANG 124 /* the child's exit code when the watchdog fired */

static const char *isolate_what = "?";

static void isolate_fire(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: hang in ";
  ssize_t k = write(2, msg, sizeof msg - 1);
  k = write(2, isolate_what, strlen(isolate_what));
  k = write(2, "\n", 1);
  (void)k;
  _exit(ISOLATE_HANG);
}

/* Seconds a scenario may take: generous, and more under valgrind, which
 * runs everything some 50 times slower.  Nothing here measures speed: a
 * scenario that needs the watchdog is hung, not slow. */
static unsigned isolate_seconds(unsigned s) {
  return RUNNING_ON_VALGRIND ? s * 20 : s;
}

/* Arm the watchdog in this process: after `seconds`, print what hung and
 * _exit(ISOLATE_HANG). */
static void watchdog_arm(const char *what, unsigned seconds) {
  isolate_what = what;
  signal(SIGALRM, isolate_fire);
  alarm(isolate_seconds(seconds));
}

static void watchdog_disarm(void) { alarm(0); }

#define CHILD_CHECK(cond)                                                    \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,   \
              isolate_what, #cond);                                          \
      fflush(stderr);                                                        \
      _exit(1);                                                              \
    }                                                                        \
  } while (0)

#define CHILD_CHECK_INT(a, b)                                                \
  do {                                                                       \
    long long a_ = (long long)(a), b_ = (long long)(b);                      \
    if (a_ != b_) {                                                          \
      fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n",        \
              __FILE__, __LINE__, isolate_what, #a, a_, #b, b_);             \
      fflush(stderr);                                                        \
      _exit(1);                                                              \
    }                                                                        \
  } while (0)

/* Run body(arg) in a child with the watchdog armed.  @return 0 if it
 * passed, its exit code if it failed, ISOLATE_HANG if it hung, or 128 +
 * the signal that killed it (a crash). */
static int isolate(const char *what, void (*body)(void *), void *arg,
                   unsigned seconds) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    watchdog_arm(what, seconds);
    body(arg);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

/* What isolate's answer means, for messages. */
static const char *isolate_verdict(int rc) {
  if (rc == 0) return "passed";
  if (rc == ISOLATE_HANG) return "HUNG";
  if (rc > 128) return "CRASHED";
  return "failed";
}

#endif /* HB_TEST_ISOLATE_H */
