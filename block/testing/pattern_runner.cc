// strata tests: PatternRunner (pattern_runner.h).
#include "block/testing/pattern_runner.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "gtest/gtest.h"

namespace strata {

PatternRunner::PatternRunner(BlockBackend* blk, aio::IoContext* loop, Options options)
    : blk_(blk), loop_(loop), options_(std::move(options)) {
  for (int i = 0; i < options_.depth; ++i) buffers_.emplace_back(options_.bytes, 4096);
}

void PatternRunner::Run() {
  loop_->Post([this] {
    for (int slot = 0; slot < options_.depth; ++slot) Issue(slot);
  });
  ASSERT_TRUE(done_.WaitForNotificationWithTimeout(absl::Seconds(60)));
}

void PatternRunner::Issue(int slot) {
  if (issued_ == options_.requests) {
    if (completed_ == options_.requests) done_.Notify();
    return;
  }
  const int i = issued_++;
  uint8_t* const buf = buffers_[slot].data();
  std::memset(buf, options_.reads ? 0 : PatternOf(i), options_.bytes);
  BlockBackend::Request r;
  r.op = options_.reads ? BlockBackend::Op::kRead : BlockBackend::Op::kWrite;
  r.offset = options_.offset_of(i);
  r.bytes = options_.bytes;
  r.qiov = IoVector(buf, options_.bytes);
  r.flags = options_.flags;
  blk_->Submit(*loop_, std::move(r), [this, slot, i, buf](absl::Status s) {
    const uint8_t want = PatternOf(i);
    const bool wrong_bytes = s.ok() && options_.reads &&
                             std::any_of(buf, buf + options_.bytes,
                                         [want](uint8_t b) { return b != want; });
    if (!s.ok() || wrong_bytes) {
      ++failures_;
      ADD_FAILURE() << "request " << i << ": " << s << (wrong_bytes ? ", wrong bytes" : "");
    }
    ++completed_;
    Issue(slot);
  });
}

}  // namespace strata
