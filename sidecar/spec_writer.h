// SpecWriter: the one thread that makes the sidecar's MultiClusterLease spec
// writes (create, renew, take over, release) and the reads that follow a
// conflict. It asks the LockTable what to write next, makes the request with
// no mutex held, and hands the answer back; between writes it sleeps until
// the table's next renewal or retry time, or until woken.
//
// It also takes the ends of streams (EndCampaign/EndObserve): those arrive
// from inside a sink's Send/Finish, made with the table's mutex held, so they
// are queued under a leaf mutex here and applied by this thread.
//
// One writer for all locks: a request that hangs holds up the other locks'
// writes until the client's request timeout (--request-timeout) ends it. It
// never holds up LOST (the deadline timer, deadline_timer.h) nor events to
// observers (watch callbacks).
#ifndef MCL_SIDECAR_SPEC_WRITER_H_
#define MCL_SIDECAR_SPEC_WRITER_H_

#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "sidecar/lease_store.h"
#include "sidecar/lock_table.h"

namespace mcl::sidecar {

class SpecWriter {
 public:
  // Neither is owned; both must outlive this object. Starts the thread.
  SpecWriter(LockTable* table, LeaseStore* store, Clock* clock);
  ~SpecWriter();  // stops and joins the thread (a request in flight finishes)
  SpecWriter(const SpecWriter&) = delete;
  SpecWriter& operator=(const SpecWriter&) = delete;

  // The table may have a write to make: look again now. Any thread, any lock.
  void Kick() { wakeup_.Notify(); }
  // A stream is over. Never blocks on anything but a leaf mutex.
  void EndCampaign(uint64_t id, const std::string& reason);
  void EndObserve(uint64_t id);

 private:
  void Loop();
  void Execute(const LockTable::Write& w);
  void RunDeferred();

  LockTable* const table_;
  LeaseStore* const store_;
  Clock* const clock_;
  Wakeup wakeup_;
  absl::Mutex mu_;  // a leaf: nothing is called with it held
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<uint64_t, std::string>> campaign_ends_
      ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> observer_ends_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_SPEC_WRITER_H_
