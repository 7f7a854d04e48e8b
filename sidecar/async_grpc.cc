#include "sidecar/async_grpc.h"

#include <pthread.h>

namespace mcl::sidecar {

CompletionLoop::CompletionLoop(std::unique_ptr<grpc::ServerCompletionQueue> cq)
    : cq_(std::move(cq)), thread_([this] { Run(); }) {}

CompletionLoop::~CompletionLoop() {
  cq_->Shutdown();
  thread_.join();
}

void CompletionLoop::Run() {
  pthread_setname_np(pthread_self(), "grpc-loop");
  void* tag = nullptr;
  bool ok = false;
  // Next blocks with no deadline: the thread sleeps until an operation
  // completes, and returns false once the queue is shut down and drained.
  while (cq_->Next(&tag, &ok)) {
    std::unique_ptr<Done> done(static_cast<Done*>(tag));
    (*done)(ok);
  }
}

Workers::Workers(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Workers::~Workers() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void Workers::Run(std::function<void()> work) {
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(work));
}

void Workers::Loop() {
  pthread_setname_np(pthread_self(), "grpc-worker");
  for (;;) {
    std::function<void()> work;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace mcl::sidecar
