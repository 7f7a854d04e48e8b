#include "controller/work_queue.h"

namespace mcl::controller {

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
  absl::MutexLock l(&mu_);
  if (shutdown_) return;
  auto it = delayed_at_.find(key);
  if (it != delayed_at_.end()) {
    if (it->second <= at) return;
    delayed_.erase({it->second, key});
  }
  delayed_at_[key] = at;
  delayed_.insert({at, key});
}

void WorkQueue::PromoteDueLocked(absl::Duration now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayed_at_.erase(key);
    AddLocked(key);
  }
}

bool WorkQueue::Get(std::string* key) {
  absl::MutexLock l(&mu_);
  while (true) {
    if (shutdown_) return false;
    PromoteDueLocked(clock_->Monotonic());
    if (!queue_.empty()) break;
    absl::Duration wait = absl::Milliseconds(200);
    if (!delayed_.empty()) {
      wait = std::min(wait, delayed_.begin()->first - clock_->Monotonic());
    }
    if (wait > absl::ZeroDuration()) {
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || !queue_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
    }
  }
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
  absl::MutexLock l(&mu_);
  shutdown_ = true;
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
