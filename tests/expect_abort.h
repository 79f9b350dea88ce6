/*
 * expect_abort.h -- run a piece of code in a child process and check that
 * it aborts with a message naming the call that broke a rule (the debug
 * builds' direct-mode checks).  For cmocka tests: include after cmocka.h.
 */
#ifndef HB_TEST_EXPECT_ABORT_H
#define HB_TEST_EXPECT_ABORT_H

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run body(arg) in a child with its stderr captured; the child must die of
 * a signal and have written `name`. */
static void expect_abort(void (*body)(void *), void *arg, const char *name) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    body(arg);
    _exit(0); /* not reached if the check works */
  }
  close(fds[1]);
  char out[1024] = {0};
  size_t got = 0;
  ssize_t k;
  while (got < sizeof out - 1 &&
         (k = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
    got += (size_t)k;
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_non_null(strstr(out, name));
}

#endif
