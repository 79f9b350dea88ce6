// test_hpp.cpp -- the C++ header, hyperbuf.hpp: RAII ownership, visits
// that take lambdas, and (C++20) co_await on a visit.
//
// Built in the test suite (with -std=c++20 where the compiler has it, and
// again with clang++ when the suite's compiler is g++) and by
// scripts/consumers.sh against an installed library with g++ and clang++.
// No cmocka: it must build wherever the header is installed.
#include <hyperbuf.hpp>

#include "cxx_expect.h"

#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

static void buffers_are_owned() {
  hb::buffer none;
  EXPECT_EQ(static_cast<bool>(none), false);

  hb::buffer a = hb::buffer::create(16);
  EXPECT_EQ(static_cast<bool>(a), true);
  EXPECT_EQ(a.put("abc", 3), HB_OK);
  EXPECT_EQ(a.size(), 3u);
  hb_buf *raw = a.get();

  hb::buffer b(std::move(a)); // moved: one owner, the same buffer
  EXPECT_EQ(static_cast<bool>(a), false);
  EXPECT_EQ(b.get() == raw, true);
  a = std::move(b);
  EXPECT_EQ(a.get() == raw, true);
  EXPECT_EQ(static_cast<bool>(b), false);

  char out[3] = {0, 0, 0};
  EXPECT_EQ(a.get(out, 3), HB_OK);
  EXPECT_EQ(out[2], 'c');
  EXPECT_EQ(a.remaining(), 0u);

  hb_buf *mine = a.release(); // the caller frees it now
  EXPECT_EQ(static_cast<bool>(a), false);
  EXPECT_EQ(hb_free(mine), HB_OK);

  hb::buffer w = hb::buffer::wrap("xy", 2);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.data()[1], 'y');
}

static void *fail_malloc(std::size_t) { return nullptr; }
static void *fail_realloc(void *, std::size_t) { return nullptr; }

static void a_failed_create_is_empty() {
  EXPECT_EQ(hb_set_allocator(fail_malloc, fail_realloc, std::free), HB_OK);
  hb::buffer b = hb::buffer::create(1 << 20);
  EXPECT_EQ(hb_set_allocator(std::malloc, std::realloc, std::free), HB_OK);
  EXPECT_EQ(static_cast<bool>(b), false);
}

static void visits_take_lambdas() {
  hb::buffer buf = hb::buffer::create();
  std::vector<std::uint32_t> items = {1, 2, 3};
  std::uint32_t sum = 0;
  std::size_t seen = 0;

  // Tickets in the order the visits are made: the write, then the read.
  auto w = hb::write<std::uint32_t>(
      buf,
      [&](hb::write_view<std::uint32_t> v) {
        return v.append(items.data(), items.size());
      },
      3 * sizeof(std::uint32_t));
  auto r = hb::read<std::uint32_t>(buf, [&](hb::read_view<std::uint32_t> v) {
    seen = v.size();
    for (std::uint32_t x : v) sum += x; // captures, not a void *ctx
  });
  EXPECT_EQ(w.status(), HB_OK);
  EXPECT_EQ(r.status(), HB_OK);
  EXPECT_EQ(r.try_visit(), HB_EAGAIN); // the write comes first
  int result = -1;
  EXPECT_EQ(w.block_on(&result), HB_OK);
  EXPECT_EQ(result, HB_OK);
  EXPECT_EQ(r.try_visit(&result), HB_OK);
  EXPECT_EQ(result, 0); // a void lambda commits
  EXPECT_EQ(seen, 3u);
  EXPECT_EQ(sum, 6u);

  // A negative return rolls the appends back.
  auto undo = hb::write<std::uint32_t>(buf, [&](auto v) {
    v.append(7u);
    return v.bytes_written() == 4 ? -1 : 0;
  });
  EXPECT_EQ(undo.block_on(&result), HB_OK);
  EXPECT_EQ(result, -1);
  int n = 0;
  EXPECT_EQ(hb::read_now<std::uint32_t>(
                buf, [](hb::read_view<std::uint32_t> v) {
                  return static_cast<int>(v.size());
                },
                &n),
            HB_OK);
  EXPECT_EQ(n, 3);

  // The one-call forms, with a write view's element access.
  EXPECT_EQ(hb::write_now<std::uint32_t>(
                buf, 0, [](hb::write_view<std::uint32_t> v) { v[0] = 10; }),
            HB_OK);
  EXPECT_EQ(hb::read_now<std::uint32_t>(
                buf, [](hb::read_view<std::uint32_t> v) { return v[0]; }, &n),
            HB_OK);
  EXPECT_EQ(n, 10);
}

static void a_dropped_visit_gives_its_ticket_up() {
  hb::buffer buf = hb::buffer::wrap("abc", 3);
  bool ran = false;
  {
    auto w = hb::write<std::uint8_t>(buf, [&](auto) { ran = true; });
    EXPECT_EQ(w.status(), HB_OK);
  } // never driven: the destructor cancels it
  auto r = hb::read<std::uint8_t>(buf, [](auto v) {
    return static_cast<int>(v.size());
  });
  int result = 0;
  EXPECT_EQ(r.try_visit(&result), HB_OK); // not held up by the writer
  EXPECT_EQ(result, 3);
  EXPECT_EQ(ran, false);
  // A visit of no buffer fails at construction, and its drivers say so.
  hb::buffer empty;
  auto gone = hb::read<std::uint8_t>(empty, [](auto) {});
  EXPECT_EQ(gone.status(), HB_EINVAL);
  EXPECT_EQ(gone.block_on(), HB_EINVAL);
}

#if HB_HPP_COROUTINES
#include <coroutine>

// The smallest coroutine type: starts at once, frees itself at the end.
struct task {
  struct promise_type {
    task get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::abort(); }
  };
};

template <class Visit>
static task await_visit(Visit &v, hb::run_queue &q, hb::visit_result &out,
                        bool &done) {
  out = co_await v.async(q);
  done = true;
}

// The turn has come already: co_await runs the visit without suspending.
static void co_await_when_ready() {
  hb::buffer buf = hb::buffer::wrap("abcd", 4);
  hb::run_queue q;
  auto r = hb::read<std::uint8_t>(buf, [](auto v) {
    return static_cast<int>(v.size());
  });
  hb::visit_result res{-1, -1};
  bool done = false;
  await_visit(r, q, res, done);
  EXPECT_EQ(done, true);
  EXPECT_EQ(res.status, HB_OK);
  EXPECT_EQ(res.result, 4);
  EXPECT_EQ(q.run_one(), false); // nothing was queued
}

// Behind a writer: the coroutine suspends, no thread blocks, and the
// writer's release on another thread wakes it through the queue; the
// callback then runs on the queue's thread.
static void co_await_suspends_until_the_turn() {
  hb::buffer buf = hb::buffer::create();
  hb::run_queue q;
  auto w = hb::write<std::uint32_t>(
      buf, [](auto v) { return v.append(42u); }, 4);
  std::thread::id ran_on;
  auto r = hb::read<std::uint32_t>(buf, [&](hb::read_view<std::uint32_t> v) {
    ran_on = std::this_thread::get_id();
    return v.size() == 1 ? static_cast<int>(v[0]) : -1;
  });
  hb::visit_result res{-1, -1};
  bool done = false;
  await_visit(r, q, res, done);
  EXPECT_EQ(done, false); // suspended, and this thread goes on
  EXPECT_EQ(q.run_one(), false);

  std::thread writer([&] { EXPECT_EQ(w.block_on(), HB_OK); });
  std::size_t resumed = q.run_until([&] { return done; });
  writer.join();
  EXPECT_EQ(resumed, 1u);
  EXPECT_EQ(res.status, HB_OK);
  EXPECT_EQ(res.result, 42);
  EXPECT_EQ(ran_on == std::this_thread::get_id(), true);
}

// Cancelled while suspended: the waker still resumes it, with
// HB_ECANCELED, and the callback never runs.
static void co_await_sees_a_cancel() {
  hb::buffer buf = hb::buffer::create();
  hb::run_queue q;
  auto w = hb::write<std::uint8_t>(buf, [](auto) {});
  bool ran = false;
  auto r = hb::read<std::uint8_t>(buf, [&](auto) { ran = true; });
  hb::visit_result res{-1, -1};
  bool done = false;
  await_visit(r, q, res, done);
  EXPECT_EQ(done, false);
  std::thread canceller([&] { EXPECT_EQ(r.cancel(), HB_OK); });
  q.run_until([&] { return done; });
  canceller.join();
  EXPECT_EQ(res.status, HB_ECANCELED);
  EXPECT_EQ(res.result, 0);
  EXPECT_EQ(ran, false);
  EXPECT_EQ(w.cancel(), HB_OK);
}
#endif

int main() {
  buffers_are_owned();
  a_failed_create_is_empty();
  visits_take_lambdas();
  a_dropped_visit_gives_its_ticket_up();
#if HB_HPP_COROUTINES
  co_await_when_ready();
  co_await_suspends_until_the_turn();
  co_await_sees_a_cancel();
  std::printf("test_hpp: coroutines tested\n");
#else
  std::printf("test_hpp: no C++20 coroutines here; not tested\n");
#endif
  if (failures != 0) {
    std::fprintf(stderr, "test_hpp: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_hpp: ok\n");
  return 0;
}
