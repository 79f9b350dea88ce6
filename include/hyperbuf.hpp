/*
 * hyperbuf.hpp -- C++ over the C library, header-only: RAII ownership of
 * buffers and visits, visits that take lambdas (captures instead of
 * `void *ctx`), and, in C++20, an awaitable so that `co_await` runs a visit
 * without blocking a thread.
 *
 *     hb::buffer buf = hb::buffer::create();
 *     auto w = hb::write<packet>(buf, [&](hb::write_view<packet> v) {
 *       return v.append(packet{7, 0});          // the ticket is taken here
 *     }, sizeof(packet));
 *     auto r = hb::read<packet>(buf, [&](hb::read_view<packet> v) {
 *       for (const packet &p : v) seen += p.len; // after the writer
 *     });
 *     w.block_on();                 // or poll, try_visit, or on a thread
 *     hb::visit_result x = co_await r.async(queue);     // in a coroutine
 *
 * Nothing here allocates or throws: the callables are stored in the visit
 * objects, a failed create gives an empty buffer, and a callback that
 * throws terminates (it runs inside the C library's frames).  Every call
 * keeps the C contract of <hyperbuf.h>: the status codes, the order of
 * tickets, who may call what concurrently.  C++17; the awaitable needs
 * C++20 coroutines (HB_HPP_COROUTINES is then 1).
 */
/** @file hyperbuf.hpp
 *  C++ over the C library: RAII, lambda visits, a C++20 awaitable. */
#ifndef HYPERBUF_HPP
#define HYPERBUF_HPP

#if __cplusplus < 201703L
#error "hyperbuf.hpp needs C++17 (-std=c++17; -std=c++20 for co_await)"
#endif

#include "hyperbuf.h"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

/** @def HB_HPP_COROUTINES
 *  1 when hb::visit::async and hb::run_queue (C++20 coroutines) exist. */
#if defined(__cpp_impl_coroutine) && __has_include(<coroutine>)
#include <coroutine>
#define HB_HPP_COROUTINES 1
#else
#define HB_HPP_COROUTINES 0
#endif

/** The C++ interface: RAII types and lambda visits over <hyperbuf.h>. */
namespace hb {

/**
 * Owns one hb_buf; move-only.  The destructor frees it, so every visit of
 * it must be over first (destroy the hb::visit objects first): freeing a
 * buffer with live visitors is a bug, and terminates the program.
 */
class buffer {
 public:
  /** An empty handle, owning nothing. */
  buffer() noexcept = default;
  /** Adopt b (may be NULL), freeing it on destruction. */
  explicit buffer(hb_buf *b) noexcept : b_(b) {}
  /** @return a new buffer (hb_new); empty if memory ran out. */
  static buffer create(std::size_t capacity = 0) noexcept {
    return buffer(hb_new(capacity));
  }
  /** @return a buffer holding a copy of n bytes (hb_wrap); empty on
   *  failure. */
  static buffer wrap(const void *src, std::size_t n) noexcept {
    return buffer(hb_wrap(src, n));
  }
  /** Take o's buffer; o is left empty. */
  buffer(buffer &&o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  /** Free this buffer (reset), then take o's.  @return *this. */
  buffer &operator=(buffer &&o) noexcept {
    if (this != &o) {
      reset();
      b_ = std::exchange(o.b_, nullptr);
    }
    return *this;
  }
  buffer(const buffer &) = delete;
  buffer &operator=(const buffer &) = delete;
  ~buffer() { reset(); }

  /** Free the buffer now (hb_free); terminates if a visitor is live. */
  void reset() noexcept {
    if (b_ != nullptr && hb_free(b_) != HB_OK) std::terminate();
    b_ = nullptr;
  }
  /** @return the buffer, still owned by this handle. */
  hb_buf *get() const noexcept { return b_; }
  /** @return the buffer, no longer owned: the caller frees it. */
  hb_buf *release() noexcept { return std::exchange(b_, nullptr); }
  /** @return whether the handle owns a buffer. */
  explicit operator bool() const noexcept { return b_ != nullptr; }

  /** @return hb_len. */
  std::size_t size() const noexcept { return hb_len(b_); }
  /** @return hb_capacity. */
  std::size_t capacity() const noexcept { return hb_capacity(b_); }
  /** @return hb_remaining: the bytes after the cursor. */
  std::size_t remaining() const noexcept { return hb_remaining(b_); }
  /** @return hb_data: stale after anything that may grow the buffer. */
  std::uint8_t *data() noexcept { return hb_data(b_); }
  /** Append n bytes (hb_put).  @return as hb_put. */
  int put(const void *src, std::size_t n) noexcept {
    return hb_put(b_, src, n);
  }
  /** Copy n bytes at the cursor out (hb_get).  @return as hb_get. */
  int get(void *dst, std::size_t n) noexcept { return hb_get(b_, dst, n); }

 private:
  hb_buf *b_ = nullptr;
};

/**
 * What a read visit's callback sees: the buffer as `const T[size()]`.
 * Valid only inside the callback.
 */
template <class T>
class read_view {
 public:
  /** Wrap the C view a callback was given. */
  explicit read_view(hb_view *v) noexcept : v_(v) {}
  /** @return the number of whole elements. */
  std::size_t size() const noexcept { return hb_view_len(v_); }
  /** @return the elements (fetched afresh: appends may move them). */
  const T *data() const noexcept {
    return static_cast<const T *>(hb_view_read_array(v_, nullptr));
  }
  /** @return the first element. */
  const T *begin() const noexcept { return data(); }
  /** @return one past the last element. */
  const T *end() const noexcept { return data() + size(); }
  /** @return element i (unchecked). */
  const T &operator[](std::size_t i) const noexcept { return data()[i]; }
  /** @return the C view, for the hb_view_* calls. */
  hb_view *get() const noexcept { return v_; }

 protected:
  hb_view *v_; /**< the C view */
};

/** What a write visit's callback sees: a read_view that can also change,
 *  append and drain. */
template <class T>
class write_view : public read_view<T> {
 public:
  using read_view<T>::read_view;
  /** @return the elements, writable (fetched afresh). */
  T *data() const noexcept {
    return static_cast<T *>(hb_view_write_array(this->v_, nullptr));
  }
  /** @return the first element. */
  T *begin() const noexcept { return data(); }
  /** @return one past the last element. */
  T *end() const noexcept { return data() + this->size(); }
  /** @return element i (unchecked). */
  T &operator[](std::size_t i) const noexcept { return data()[i]; }
  /** Append one element.  @return as hb_view_append. */
  int append(const T &x) noexcept { return hb_view_append(this->v_, &x); }
  /** Append n elements, all or nothing.  @return as hb_view_append_all. */
  int append(const T *p, std::size_t n) noexcept {
    return hb_view_append_all(this->v_, p, n);
  }
  /** Append raw bytes.  @return as hb_view_append_bytes. */
  int append_bytes(const void *src, std::size_t n) noexcept {
    return hb_view_append_bytes(this->v_, src, n);
  }
  /** Drop the first n bytes.  @return as hb_view_drain. */
  int drain(std::size_t n) noexcept { return hb_view_drain(this->v_, n); }
  /** @return the bytes appended so far in this visit. */
  std::size_t bytes_written() const noexcept {
    return hb_view_bytes_written(this->v_);
  }
};

/** A read ticket (hb_cast) or a write ticket (hb_cast_mut). */
enum class access { read, write };

/** What `co_await visit.async(q)` gives: a driver's status and, if it is
 *  HB_OK, what the callback returned. */
struct visit_result {
  int status; /**< HB_OK, HB_ECANCELED, or a driver's other errors */
  int result; /**< the callback's return value when status is HB_OK */
};

namespace detail {
/* Call f with the view; a void callable commits (0). */
template <class F, class V>
int call_visit(F &f, V view) noexcept {
  if constexpr (std::is_void_v<std::invoke_result_t<F &, V>>) {
    f(view);
    return 0;
  } else {
    return static_cast<int>(f(view));
  }
}

template <access A, class T>
using view_t = std::conditional_t<A == access::read, read_view<T>,
                                  write_view<T>>;

template <access A, class T, class F>
int trampoline(hb_view *v, void *ctx) noexcept {
  return call_visit(*static_cast<F *>(ctx), view_t<A, T>(v));
}

inline int cast(access a, hb_visitor *v, hb_buf *b, hb_type t) noexcept {
  return a == access::read ? hb_cast(v, b, t) : hb_cast_mut(v, b, t);
}
} // namespace detail

#if HB_HPP_COROUTINES
template <class Visit, class Queue>
class visit_awaitable;
#endif

/**
 * One visit of a buffer, with its callable stored inside: the ticket is
 * taken when the object is made (so tickets follow the order in which
 * visits are made), and the destructor gives it up if it has not run
 * (hb_cancel; waiting out a callback still running on another thread).
 * Neither copyable nor movable: the library holds its address.  Made by
 * hb::read and hb::write.  The buffer must outlive it.
 */
template <class T, access A, class F>
class visit {
 public:
  /** Take the ticket and arm it; status() says whether that worked. */
  visit(buffer &b, F f, std::size_t reserve = 0) noexcept
      : f_(std::move(f)) {
    st_ = detail::cast(A, &v_, b.get(), HB_TYPE(T));
    if (st_ == HB_OK) {
      st_ = hb_visit(&v_, reserve, &detail::trampoline<A, T, F>, &f_);
      if (st_ != HB_OK) hb_cancel(&v_);
    }
  }
  visit(const visit &) = delete;
  visit &operator=(const visit &) = delete;
  ~visit() {
    if (st_ != HB_OK) return;
    while (hb_cancel(&v_) == HB_EBUSY) std::this_thread::yield();
  }

  /** @return HB_OK if the ticket was taken and armed, else the error of
   *  hb_cast / hb_visit (the drivers then return it too). */
  int status() const noexcept { return st_; }
  /** Park until it has run (hb_block_on).  @return as hb_block_on. */
  int block_on(int *result = nullptr) noexcept {
    return st_ != HB_OK ? st_ : hb_block_on(&v_, result);
  }
  /** Run now if its turn has come (hb_try_visit).  @return as
   *  hb_try_visit. */
  int try_visit(int *result = nullptr) noexcept {
    return st_ != HB_OK ? st_ : hb_try_visit(&v_, result);
  }
  /** Poll as a future (hb_poll).  @return as hb_poll. */
  int poll(hb_waker w, int *result = nullptr) noexcept {
    return st_ != HB_OK ? st_ : hb_poll(&v_, w, result);
  }
  /** Give the ticket up (hb_cancel).  @return as hb_cancel. */
  int cancel() noexcept { return st_ != HB_OK ? st_ : hb_cancel(&v_); }
  /** @return the C visitor, for the hb_* calls. */
  hb_visitor *get() noexcept { return &v_; }

#if HB_HPP_COROUTINES
  /**
   * `co_await v.async(q)`: run the visit when its turn comes without
   * blocking a thread.  If the turn has come the callback runs at once;
   * otherwise the coroutine is suspended, the visit's waker hands it to
   * q.post() when the turn comes (or the visit is cancelled), and the
   * callback runs when q resumes it, on q's thread.  Queue: any type with
   * a thread-safe, non-blocking `void post(std::coroutine_handle<>)`
   * (hb::run_queue, or a wrapper over an event loop's own post).
   * @return an awaitable giving a visit_result.
   */
  template <class Queue>
  visit_awaitable<visit, Queue> async(Queue &q) noexcept {
    return visit_awaitable<visit, Queue>(*this, q);
  }
#endif

 private:
  hb_visitor v_ = HB_VISITOR_INIT;
  F f_;
  int st_;
};

/**
 * A read visit: f(hb::read_view<T>) runs after every earlier write visit,
 * alongside neighbouring reads.  f returns int (>= 0 commits) or void.
 * @return the visit object (see hb::visit).
 */
template <class T, class F>
visit<T, access::read, std::decay_t<F>> read(buffer &b, F &&f) noexcept {
  return visit<T, access::read, std::decay_t<F>>(b, std::forward<F>(f));
}

/**
 * A write visit: f(hb::write_view<T>) runs alone, after every earlier
 * visit, with `reserve` spare bytes made first.  A negative return rolls
 * its appends back.
 * @return the visit object (see hb::visit).
 */
template <class T, class F>
visit<T, access::write, std::decay_t<F>> write(buffer &b, F &&f,
                                               std::size_t reserve = 0)
    noexcept {
  return visit<T, access::write, std::decay_t<F>>(b, std::forward<F>(f),
                                                  reserve);
}

/** Visit now, on this thread, with a lambda (hb_read_now).
 *  @return as hb_read_now. */
template <class T, class F>
int read_now(buffer &b, F &&f, int *result = nullptr) noexcept {
  using G = std::remove_reference_t<F>;
  return hb_read_now(b.get(), HB_TYPE(T),
                     &detail::trampoline<access::read, T, G>,
                     const_cast<void *>(static_cast<const void *>(&f)),
                     result);
}

/** Write now, on this thread, with a lambda (hb_write_now).
 *  @return as hb_write_now. */
template <class T, class F>
int write_now(buffer &b, std::size_t reserve, F &&f,
              int *result = nullptr) noexcept {
  using G = std::remove_reference_t<F>;
  return hb_write_now(b.get(), HB_TYPE(T), reserve,
                      &detail::trampoline<access::write, T, G>,
                      const_cast<void *>(static_cast<const void *>(&f)),
                      result);
}

#if HB_HPP_COROUTINES
/**
 * The awaitable of hb::visit::async.  The race it closes: the waker may
 * fire on another thread as soon as hb_poll has stored it, before the
 * coroutine has finished suspending.  So the handle is stored before the
 * poll, the poll happens in await_suspend (the coroutine already counts
 * as suspended there), and after a PENDING poll nothing of *this is
 * touched again: the waker may already have resumed the coroutine.
 */
template <class Visit, class Queue>
class visit_awaitable {
 public:
  /** Made by hb::visit::async. */
  visit_awaitable(Visit &v, Queue &q) noexcept : v_(&v), q_(&q) {}
  /** @return true (no suspension) if the visit ran or ended now. */
  bool await_ready() noexcept {
    r_.status = v_->try_visit(&r_.result);
    return r_.status != HB_EAGAIN;
  }
  /** Store the handle, then poll with a waker that posts it.
   *  @return false (resume at once) if the poll did not return PENDING. */
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    resumed_by_waker_ = true;
    int result = 0;
    int st = v_->poll(hb_waker{&wake, this}, &result);
    if (st == HB_PENDING) return true; /* *this is the waker's now */
    resumed_by_waker_ = false;
    r_ = visit_result{st, st == HB_OK ? result : 0};
    return false;
  }
  /** @return the visit's status and result.  After a wake the turn has
   *  come (or the visit was cancelled), so the poll here runs the
   *  callback on this thread; hb_block_on is only the contract's
   *  backstop, for a poll that would still be pending. */
  visit_result await_resume() noexcept {
    if (resumed_by_waker_) {
      int result = 0;
      int st = v_->poll(hb_waker{&ignore, nullptr}, &result);
      if (st == HB_PENDING) st = v_->block_on(&result);
      r_ = visit_result{st, st == HB_OK ? result : 0};
    }
    if (r_.status != HB_OK) r_.result = 0;
    return r_;
  }

 private:
  static void wake(void *arg) noexcept {
    auto *self = static_cast<visit_awaitable *>(arg);
    self->q_->post(self->h_);
  }
  static void ignore(void *) noexcept {}

  Visit *v_;
  Queue *q_;
  std::coroutine_handle<> h_;
  bool resumed_by_waker_ = false;
  visit_result r_{HB_OK, 0};
};

/**
 * A minimal thread-safe queue of coroutines to resume, for
 * hb::visit::async: post() may be called from any thread (a waker's),
 * run_one() / run_until() resume the coroutines on the calling thread.
 * post() takes a mutex only to push, never waiting on a coroutine.
 */
class run_queue {
 public:
  /** Queue h to be resumed by a run call.  Thread-safe. */
  void post(std::coroutine_handle<> h) noexcept {
    {
      std::lock_guard<std::mutex> g(m_);
      q_.push_back(h);
    }
    cv_.notify_one();
  }
  /** Resume the oldest queued coroutine, if any.
   *  @return whether one was resumed. */
  bool run_one() {
    std::coroutine_handle<> h;
    {
      std::lock_guard<std::mutex> g(m_);
      if (q_.empty()) return false;
      h = q_.front();
      q_.pop_front();
    }
    h.resume();
    return true;
  }
  /** Resume coroutines as they are posted, waiting for posts, until
   *  done() is true.  @return the number resumed. */
  template <class Done>
  std::size_t run_until(Done done) {
    std::size_t n = 0;
    while (!done()) {
      {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [&] { return !q_.empty(); });
      }
      n += run_one() ? 1 : 0;
    }
    return n;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::coroutine_handle<>> q_;
};
#endif // HB_HPP_COROUTINES

} // namespace hb

#endif // HYPERBUF_HPP
