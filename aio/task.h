// strata aio: Task<T>, the coroutine type of the asynchronous request path.
//
// A Task is lazy: calling a coroutine that returns Task<T> allocates its frame and runs
// nothing. It runs when awaited (`T v = co_await task;`, the awaiting coroutine resumes
// when the task returns, by symmetric transfer: no stack growth however deep the chain),
// when started detached (Start, with a completion callback), or synchronously (RunSync).
//
// Where a task runs: on whatever thread resumes it. Awaitables of this package (file I/O,
// offloaded work, wait queues) resume a coroutine on the IoContext (io_context.h) that was
// current when it suspended, so a task started on a loop's thread stays on that loop. On
// a thread with no current IoContext the same awaitables complete inline, blocking the
// thread: RunSync is how synchronous callers use coroutine code.
//
// Exceptions are not used: an exception escaping a task terminates the process.
#ifndef STRATA_AIO_TASK_H_
#define STRATA_AIO_TASK_H_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace strata::aio {

namespace internal {

// Coroutine frames come and go once per layer per request. A small per-thread cache of
// freed frames by size class spares malloc and free on the request path. A frame freed on
// another thread than the one that allocated it simply joins that thread's cache.
void* AllocateFrame(std::size_t size);
void FreeFrame(void* frame, std::size_t size) noexcept;

}  // namespace internal

template <typename T>
class [[nodiscard]] Task {
 public:
  static_assert(!std::is_void_v<T>, "Task<void> is not supported; return a status");

  struct promise_type {
    std::optional<T> value;
    std::coroutine_handle<> continuation;  // resumed when the task returns

    static void* operator new(std::size_t size) { return internal::AllocateFrame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
      internal::FreeFrame(frame, size);
    }

    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        std::coroutine_handle<> next = h.promise().continuation;
        return next ? next : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    template <typename U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    void unhandled_exception() noexcept { std::terminate(); }
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // Awaiting runs the task; the awaiting coroutine resumes with its result.
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    handle_.promise().continuation = awaiting;
    return handle_;
  }
  T await_resume() { return std::move(*handle_.promise().value); }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace internal {

// An eager coroutine that owns its frame and destroys it when it returns: the frame of
// Start below.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

template <typename T, typename Done>
Detached RunDetached(Task<T> task, Done done) {
  done(co_await std::move(task));
}

}  // namespace internal

// Runs `task` now on this thread until it first suspends (or returns); `done(result)` is
// called on the thread that finishes it, exactly once. The task's frame is freed after
// `done` returns.
template <typename T, typename Done>
void Start(Task<T> task, Done done) {
  internal::RunDetached(std::move(task), std::move(done));
}

}  // namespace strata::aio

#endif  // STRATA_AIO_TASK_H_
