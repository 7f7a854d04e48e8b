#include "controller/work_queue.h"

#include <pthread.h>

namespace mcl::controller {

WorkQueue::WorkQueue(Clock* clock) : clock_(clock), timer_wake_(clock) {
  timer_ = std::thread([this] { TimerLoop(); });
}

WorkQueue::~WorkQueue() {
  ShutDown();
  if (timer_.joinable()) timer_.join();
}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutdown_ || dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // re-queued by Done
  queue_.push_back(key);
}

void WorkQueue::Add(const std::string& key) {
  absl::MutexLock l(&mu_);
  AddLocked(key);
}

void WorkQueue::AddAt(const std::string& key, absl::Duration at) {
  bool earliest;
  {
    absl::MutexLock l(&mu_);
    if (shutdown_) return;
    auto it = delayed_at_.find(key);
    if (it != delayed_at_.end()) {
      if (it->second <= at) return;
      delayed_.erase({it->second, key});
    }
    delayed_at_[key] = at;
    delayed_.insert({at, key});
    earliest = delayed_.begin()->second == key;
  }
  if (earliest) timer_wake_.Notify();
}

absl::Duration WorkQueue::PromoteDueLocked(absl::Duration now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayed_at_.erase(key);
    AddLocked(key);
  }
  return delayed_.empty() ? absl::InfiniteDuration() : delayed_.begin()->first;
}

void WorkQueue::TimerLoop() {
  pthread_setname_np(pthread_self(), "work-queue");
  while (true) {
    absl::Duration next;
    {
      absl::MutexLock l(&mu_);
      if (shutdown_) return;
      next = PromoteDueLocked(clock_->Monotonic());
    }
    timer_wake_.WaitUntil(next);
  }
}

bool WorkQueue::Get(std::string* key) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || !queue_.empty();
  };
  mu_.Await(absl::Condition(&ready));
  if (shutdown_) return false;
  *key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(*key);
  processing_.insert(*key);
  return true;
}

void WorkQueue::Done(const std::string& key) {
  absl::MutexLock l(&mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutdown_) queue_.push_back(key);
}

void WorkQueue::ShutDown() {
  {
    absl::MutexLock l(&mu_);
    shutdown_ = true;
  }
  timer_wake_.Notify();
}

size_t WorkQueue::Len() const {
  absl::MutexLock l(&mu_);
  return queue_.size();
}

size_t WorkQueue::Busy() const {
  absl::MutexLock l(&mu_);
  return queue_.size() + processing_.size();
}

}  // namespace mcl::controller
