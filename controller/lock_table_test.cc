// Per-lock memory has one owner at a time. The informer thread reports every
// version of every lock's spec while workers reconcile; a lock's memory must
// not change under the worker that holds it (it runs the reconciler on it),
// and no observation may be lost or re-timed. Before the fix the informer
// thread wrote into the LivenessTracker directly (under the table's mutex,
// which the worker did not hold): a data race on the tracker's maps and
// fields, caught here by the first invariant.
#include "controller/lock_table.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

constexpr int kLocks = 8;
// The informer delivers rounds until the workers have checked this many holds
// (or a cap, so a broken machine cannot loop forever).
constexpr int kHolds = 200;
constexpr int64_t kMaxGenerations = 2'000'000;

std::string Key(int i) { return absl::StrCat("ns/lock-", i); }
// Every 5th spec write is a resign, the others renewals by pod-a.
std::optional<std::string> HolderAt(int64_t g) {
  if (g % 5 == 0) return std::nullopt;
  return "pod-a";
}
// The monotonic time the informer "delivered" generation g.
absl::Duration At(int64_t g) { return absl::Seconds(1000) + absl::Seconds(g); }

// One informer thread delivers generations 1, 2, ... of every lock, one round
// (all locks) per generation, until the workers have checked kHolds holds; two
// workers, each owning half the locks (as the work queue hands a key to one
// worker at a time), hold a lock's slot until the informer has completed a
// whole round meanwhile, and check that nothing in the slot moved. At the end
// every observation is in the memory, with the time it was delivered, not the
// time a worker saw it.
TEST(LockTableTest, MemoryDoesNotChangeUnderItsOwnerAndNoObservationIsLost) {
  LockTable table;
  std::atomic<int64_t> rounds{0};
  std::atomic<bool> informer_done{false};
  std::atomic<int> checked{0}, moved{0};
  std::thread informer([&] {
    for (int64_t g = 1; checked.load() < kHolds && g <= kMaxGenerations; ++g) {
      for (int i = 0; i < kLocks; ++i) {
        table.Observe(Key(i), "uid", g, HolderAt(g), At(g));
      }
      rounds++;
    }
    informer_done = true;
  });
  auto worker = [&](int parity) {
    while (!informer_done.load()) {
      for (int i = parity; i < kLocks; i += 2) {
        table.With(Key(i), [&](LockSlot& slot) {
          const LivenessTracker& l = slot.memory.liveness;
          const int64_t generation = l.generation();
          const absl::Duration renewal =
              l.Knows() ? l.LastRenewal("pod-a") : absl::ZeroDuration();
          // Hold the slot while the informer delivers a whole round (this
          // lock included), as a reconcile that waits on the apiserver would.
          const int64_t until = rounds.load() + 2;
          const absl::Time give_up = absl::Now() + absl::Seconds(5);
          while (rounds.load() < until && !informer_done.load() &&
                 absl::Now() < give_up) {
            std::this_thread::yield();
          }
          if (informer_done.load()) return;
          checked++;
          const bool same = l.generation() == generation &&
                            (!l.Knows() || l.LastRenewal("pod-a") == renewal);
          if (!same) moved++;
        });
      }
    }
  };
  std::thread w0(worker, 0), w1(worker, 1);
  informer.join();
  w0.join();
  w1.join();
  EXPECT_GE(checked.load(), kHolds) << "the workers rarely overlapped a round";
  EXPECT_EQ(moved.load(), 0)
      << moved.load() << " of " << checked.load()
      << " holds saw the lock's memory change under its owner";

  // Every generation arrived, in order, with its delivery time.
  const int64_t last = rounds.load();
  const int64_t last_renewal = last % 5 == 0 ? last - 1 : last;
  const int64_t last_resign = last - last % 5;
  for (int i = 0; i < kLocks; ++i) {
    table.With(Key(i), [&](LockSlot& slot) {
      const LivenessTracker& l = slot.memory.liveness;
      EXPECT_EQ(l.generation(), last) << Key(i);
      EXPECT_EQ(l.LastRenewal("pod-a"), At(last_renewal)) << Key(i);
      EXPECT_EQ(l.ResignedAt("pod-a"), last_resign) << Key(i);
    });
  }
}

// A slot handed out twice at once is a bug in the caller (the work queue
// gives a key to one worker at a time): it stops the process rather than let
// two threads share the memory.
TEST(LockTableDeathTest, ASlotIsNeverHandedOutTwiceAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  LockTable table;
  EXPECT_DEATH(
      table.With(Key(0),
                 [&](LockSlot&) { table.With(Key(0), [](LockSlot&) {}); }),
      "two owners");
}

// A lock forgotten while a new observation waits keeps its entry: the
// observation is the first thing the next owner sees.
TEST(LockTableTest, ForgetKeepsAnObservationThatArrivedMeanwhile) {
  LockTable table;
  table.Observe(Key(0), "uid", 1, "pod-a", At(1));
  table.With(Key(0), [&](LockSlot&) {
    table.Observe(Key(0), "uid", 2, "pod-b", At(2));
  });
  table.Forget(Key(0));
  table.With(Key(0), [&](LockSlot& slot) {
    EXPECT_EQ(slot.memory.liveness.generation(), 2);
    EXPECT_EQ(slot.memory.liveness.LastRenewal("pod-b"), At(2));
  });
  table.Forget(Key(0));
  EXPECT_TRUE(table.Keys().empty());
}

}  // namespace
}  // namespace mcl::controller
