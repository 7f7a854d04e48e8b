// The sidecar's gRPC plumbing on the async (completion-queue) API.
//
// Why not the callback API: in the grpc++ Debian ships (1.51), a server with
// any callback method polls with two "nexting" threads that wake every 1.1 s
// whether or not anything happens; that alone cost an idle sidecar ~0.4 ms of
// CPU per second, 40% of its budget (docs/benchmarks.md, Sidecar). Here one
// thread blocks on the completion queue with no deadline and wakes only when
// an operation completes.
//
//   CompletionLoop  the queue and its thread; every operation's tag is a
//                   one-shot function run on that thread.
//   Workers         a few threads for handlers that may block (waiting for an
//                   informer's first sync), so they never stall the loop,
//                   which carries every stream's writes.
//   ServerStream    a server-streaming call: messages queued from any thread,
//                   written one at a time, then the status.
//   UnaryCall       a unary call answered from any thread.
#ifndef MCL_SIDECAR_ASYNC_GRPC_H_
#define MCL_SIDECAR_ASYNC_GRPC_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace mcl::sidecar {

class CompletionLoop {
 public:
  using Done = std::function<void(bool ok)>;

  explicit CompletionLoop(std::unique_ptr<grpc::ServerCompletionQueue> cq);
  // Shuts the queue down and waits for the thread; call after the server's
  // Shutdown, which completes every outstanding operation.
  ~CompletionLoop();
  CompletionLoop(const CompletionLoop&) = delete;
  CompletionLoop& operator=(const CompletionLoop&) = delete;

  grpc::ServerCompletionQueue* cq() { return cq_.get(); }

  // A tag for one operation: `done` runs once, on the loop's thread, when the
  // operation completes.
  static void* Tag(Done done) { return new Done(std::move(done)); }
  // Frees a tag gRPC will never return (see ServerStream::Arm).
  static void Discard(void* tag) { delete static_cast<Done*>(tag); }

 private:
  void Run();

  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::thread thread_;
};

class Workers {
 public:
  explicit Workers(int threads);
  ~Workers();  // runs what is queued, then joins
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void Run(std::function<void()> work);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// One server-streaming call. Owned by shared_ptrs: each outstanding operation's
// tag holds one, so the call (and its ServerContext) outlives every operation,
// and whoever else sends on it holds another.
template <typename Msg>
class ServerStream : public std::enable_shared_from_this<ServerStream<Msg>> {
 public:
  virtual ~ServerStream() = default;

  grpc::ServerContext* context() { return &ctx_; }
  grpc::ServerAsyncWriter<Msg>* writer() { return &writer_; }

  // Asks to be told when the call is over (OnDone), then returns the tag for
  // the Request* call that arms it: `arrived(ok)` runs when a call arrives
  // (ok) or the server shuts down first (!ok).
  void* Arm(CompletionLoop::Done arrived) {
    auto self = this->shared_from_this();
    void* done = CompletionLoop::Tag([self](bool) { self->HandleDone(); });
    ctx_.AsyncNotifyWhenDone(done);
    return CompletionLoop::Tag([done, arrived = std::move(arrived)](bool ok) {
      // gRPC starts the done notification only for a call that arrived.
      if (!ok) CompletionLoop::Discard(done);
      arrived(ok);
    });
  }

  // Queues `m`; dropped once the stream is closing or over. Any thread.
  void Write(Msg m) {
    Msg* next;
    {
      absl::MutexLock l(&mu_);
      if (closing_ || done_) return;
      queue_.push_back(std::move(m));
      if (writing_) return;
      writing_ = true;
      next = &queue_.front();  // deque references stay valid until popped
    }
    StartWrite(next);
  }

  // Ends the call with `s` after the messages already queued. Any thread.
  void Close(const grpc::Status& s) {
    {
      absl::MutexLock l(&mu_);
      if (closing_) return;
      closing_ = true;
      status_ = s;
      if (writing_) return;  // HandleWriteDone finishes after the queue
    }
    StartFinish();
  }

 protected:
  // Once, on the loop's thread, when the call is over: finished by us, or
  // cancelled (client gone, deadline, server shutdown).
  virtual void OnDone(bool cancelled) = 0;
  // Just before `m` is handed to gRPC (after the messages before it were
  // written): the last moment to stamp it. Runs on the writing thread, with
  // no mutex of this class held.
  virtual void BeforeWrite(Msg* m) {}

 private:
  void StartWrite(Msg* m) {
    BeforeWrite(m);
    auto self = this->shared_from_this();
    writer_.Write(*m, CompletionLoop::Tag(
                          [self](bool ok) { self->HandleWriteDone(ok); }));
  }

  void StartFinish() {
    grpc::Status s;
    {
      absl::MutexLock l(&mu_);
      s = status_;
    }
    auto self = this->shared_from_this();
    writer_.Finish(s, CompletionLoop::Tag([self](bool) {}));
  }

  void HandleWriteDone(bool ok) {
    Msg* next = nullptr;
    bool finish = false;
    {
      absl::MutexLock l(&mu_);
      queue_.pop_front();
      if (!ok) {  // the client is gone; the done notification follows
        queue_.clear();
        if (!closing_) {
          closing_ = true;
          status_ =
              grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed");
        }
      }
      if (!queue_.empty()) {
        next = &queue_.front();
      } else {
        writing_ = false;
        finish = closing_;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
    } else if (finish) {
      StartFinish();
    }
  }

  void HandleDone() {
    {
      absl::MutexLock l(&mu_);
      done_ = true;  // an outstanding write still completes (and pops)
    }
    OnDone(ctx_.IsCancelled());
  }

  grpc::ServerContext ctx_;
  grpc::ServerAsyncWriter<Msg> writer_{&ctx_};
  absl::Mutex mu_;
  std::deque<Msg> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// One unary call: fill response() and call Reply, from any thread.
template <typename Request, typename Response>
class UnaryCall
    : public std::enable_shared_from_this<UnaryCall<Request, Response>> {
 public:
  grpc::ServerContext* context() { return &ctx_; }
  Request* request() { return &request_; }
  Response* response() { return &response_; }
  grpc::ServerAsyncResponseWriter<Response>* responder() { return &responder_; }

  void Reply(const grpc::Status& s) {
    auto self = this->shared_from_this();
    void* tag = CompletionLoop::Tag([self](bool) {});
    if (s.ok()) {
      responder_.Finish(response_, s, tag);
    } else {
      responder_.FinishWithError(s, tag);
    }
  }

 private:
  grpc::ServerContext ctx_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_{&ctx_};
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_ASYNC_GRPC_H_
