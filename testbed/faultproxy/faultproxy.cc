#include "testbed/faultproxy/faultproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace mcl::faultproxy {
namespace {

using Mode = FaultProxy::Mode;

// Reading stops while this much is waiting to be written one way; the sender
// then meets TCP's own flow control, as on a slow path.
constexpr size_t kMaxBuffered = 1 << 20;
constexpr size_t kReadSize = 64 << 10;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Closes with an RST instead of a FIN.
void ResetFd(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kPass:
      return "pass";
    case Mode::kReset:
      return "reset";
    case Mode::kHold:
      return "hold";
  }
  return "?";
}

absl::StatusOr<Mode> ParseMode(absl::string_view name) {
  if (name == "pass") return Mode::kPass;
  if (name == "reset") return Mode::kReset;
  if (name == "hold") return Mode::kHold;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown fault mode '", name, "': pass, reset or hold"));
}

// The event thread and everything it owns. Only that thread touches links,
// connections and sockets; other threads reach them through Run().
class FaultProxy::Loop {
 public:
  Loop(int epfd, int wakefd) : epfd_(epfd), wakefd_(wakefd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
    thread_ = std::thread([this] { Main(); });
  }

  ~Loop() {
    Run([this] { stop_ = true; });
    thread_.join();
    for (auto& [name, link] : links_) {
      for (auto& [c, conn] : link->conns) {
        close(conn->fd[0]);
        close(conn->fd[1]);
      }
      close(link->listen_fd);
    }
    close(epfd_);
    close(wakefd_);
  }

  // Runs `command` on the event thread and returns once it has run.
  void Run(std::function<void()> command) {
    absl::Notification done;
    {
      absl::MutexLock l(&mu_);
      commands_.push_back([&] {
        command();
        done.Notify();
      });
    }
    uint64_t one = 1;
    (void)!write(wakefd_, &one, sizeof one);
    done.WaitForNotification();
  }

  absl::StatusOr<int> AddLink(const std::string& name, int upstream_port,
                              int listen_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = Loopback(listen_port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd, 128) != 0) {
      absl::Status s = Errno(absl::StrCat("listen on 127.0.0.1:", listen_port));
      close(fd);
      return s;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    absl::Status added;
    Run([&] {
      if (links_.count(name) != 0) {
        added = absl::AlreadyExistsError(
            absl::StrCat("a link named '", name, "' exists"));
        return;
      }
      auto link = std::make_unique<Link>();
      link->name = name;
      link->listen_fd = fd;
      link->upstream = Loopback(upstream_port);
      listeners_[fd] = link.get();
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      links_[name] = std::move(link);
    });
    if (!added.ok()) {
      close(fd);
      return added;
    }
    return port;
  }

  absl::Status Set(const std::string& name, Fault fault) {
    absl::Status s;
    Run([&] {
      auto it = links_.find(name);
      if (it == links_.end()) {
        s = absl::NotFoundError(absl::StrCat("no link named '", name, "'"));
        return;
      }
      Link* link = it->second.get();
      link->fault = fault;
      std::vector<Conn*> conns;
      for (auto& [c, conn] : link->conns) conns.push_back(c);
      for (Conn* c : conns) Pump(c);
    });
    return s;
  }

  absl::StatusOr<LinkStats> Stats(const std::string& name) {
    absl::StatusOr<LinkStats> out =
        absl::NotFoundError(absl::StrCat("no link named '", name, "'"));
    Run([&] {
      auto it = links_.find(name);
      if (it == links_.end()) return;
      LinkStats st = it->second->stats;
      st.open = static_cast<int64_t>(it->second->conns.size());
      out = st;
    });
    return out;
  }

 private:
  struct Chunk {
    int64_t due_ns;
    std::string data;
  };
  struct Link;
  // One proxied connection: side 0 is the accepted client, side 1 the
  // upstream. buf[d] holds bytes read from side d, to be written to side 1-d.
  struct Conn {
    Link* link = nullptr;
    int fd[2] = {-1, -1};
    bool connected = false;  // upstream connect finished
    std::deque<Chunk> buf[2];
    size_t front_offset[2] = {0, 0};
    size_t buffered[2] = {0, 0};
    bool eof[2] = {false, false};      // side d sent FIN
    bool shut[2] = {false, false};     // FIN passed on to side 1-d
    bool blocked[2] = {false, false};  // writing buf[d] met a full buffer
    uint32_t interest[2] = {0, 0};     // registered epoll events per side
  };
  struct Link {
    std::string name;
    int listen_fd = -1;
    sockaddr_in upstream{};
    Fault fault;
    LinkStats stats;
    std::map<Conn*, std::unique_ptr<Conn>> conns;
  };

  static sockaddr_in Loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }

  void Main() {
    std::vector<epoll_event> events(64);
    while (!stop_) {
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()),
                         NextDueTimeoutMs());
      std::set<Conn*> ready;
      for (int k = 0; k < n; ++k) {
        const int fd = events[static_cast<size_t>(k)].data.fd;
        if (fd == wakefd_) {
          RunCommands();
        } else if (auto l = listeners_.find(fd); l != listeners_.end()) {
          Accept(l->second);
        } else if (auto s = sockets_.find(fd); s != sockets_.end()) {
          ready.insert(s->second);
        }
      }
      // Chunks whose latency has passed.
      const int64_t now = NowNs();
      for (Conn* c : timed_) {
        if (c->link->fault.mode != Mode::kPass) continue;
        for (int d = 0; d < 2; ++d) {
          if (!c->buf[d].empty() && c->buf[d].front().due_ns <= now)
            ready.insert(c);
        }
      }
      // A pump may close a connection that is also in `ready`.
      for (Conn* c : ready) {
        if (alive_.count(c) != 0) Pump(c);
      }
    }
  }

  void RunCommands() {
    uint64_t v;
    (void)!read(wakefd_, &v, sizeof v);
    std::deque<std::function<void()>> commands;
    {
      absl::MutexLock l(&mu_);
      commands.swap(commands_);
    }
    for (auto& c : commands) c();
  }

  int NextDueTimeoutMs() {
    int64_t next = -1;
    for (auto it = timed_.begin(); it != timed_.end();) {
      Conn* c = *it;
      bool any = false;
      for (int d = 0; d < 2; ++d) {
        if (c->buf[d].empty()) continue;
        any = true;
        // Held chunks wait for Set(); blocked ones for EPOLLOUT.
        if (c->blocked[d] || c->link->fault.mode != Mode::kPass) continue;
        if (next < 0 || c->buf[d].front().due_ns < next)
          next = c->buf[d].front().due_ns;
      }
      it = any ? std::next(it) : timed_.erase(it);
    }
    if (next < 0) return -1;
    const int64_t wait = next - NowNs();
    return wait <= 0 ? 0 : static_cast<int>((wait + 999999) / 1000000);
  }

  void Accept(Link* link) {
    for (int k = 0; k < 64; ++k) {  // a burst; the rest on the next wakeup
      int cfd = accept4(link->listen_fd, nullptr, nullptr,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) return;
      ++link->stats.connections;
      if (link->fault.mode == Mode::kReset) {
        ++link->stats.resets;
        ResetFd(cfd);
        continue;
      }
      int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (ufd < 0) {
        ResetFd(cfd);
        continue;
      }
      int one = 1;
      setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int rc = connect(ufd, reinterpret_cast<const sockaddr*>(&link->upstream),
                       sizeof link->upstream);
      if (rc != 0 && errno != EINPROGRESS) {
        // Nothing listens upstream (a stopped server): refuse the client too.
        ResetFd(cfd);
        ResetFd(ufd);
        continue;
      }
      auto conn = std::make_unique<Conn>();
      Conn* c = conn.get();
      c->link = link;
      c->fd[0] = cfd;
      c->fd[1] = ufd;
      c->connected = rc == 0;
      sockets_[cfd] = c;
      sockets_[ufd] = c;
      alive_.insert(c);
      link->conns[c] = std::move(conn);
      Pump(c);
    }
  }

  void SetInterest(Conn* c, int side, uint32_t events) {
    if (c->interest[side] == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c->fd[side];
    if (events == 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd[side], nullptr);
    } else if (c->interest[side] == 0) {
      epoll_ctl(epfd_, EPOLL_CTL_ADD, c->fd[side], &ev);
    } else {
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c->fd[side], &ev);
    }
    c->interest[side] = events;
  }

  // Closes both sides; with an RST when `reset` (a fault, or the peer's own
  // reset passed on), else normally.
  void Close(Conn* c, bool reset) {
    for (int side = 0; side < 2; ++side) {
      SetInterest(c, side, 0);
      sockets_.erase(c->fd[side]);
      if (reset) {
        ResetFd(c->fd[side]);
      } else {
        close(c->fd[side]);
      }
    }
    alive_.erase(c);
    timed_.erase(c);
    c->link->conns.erase(c);  // destroys c
  }

  // Moves what can move on one connection, under its link's fault, and
  // registers the events that will let it move on.
  void Pump(Conn* c) {
    Link* link = c->link;
    if (link->fault.mode == Mode::kReset) {
      ++link->stats.resets;
      Close(c, /*reset=*/true);
      return;
    }
    if (link->fault.mode == Mode::kHold) {
      SetInterest(c, 0, 0);
      SetInterest(c, 1, 0);
      return;
    }
    if (!c->connected) {
      pollfd p{c->fd[1], POLLOUT, 0};
      if (poll(&p, 1, 0) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Close(c, /*reset=*/true);
          return;
        }
        c->connected = true;
      } else {
        SetInterest(c, 0, 0);
        SetInterest(c, 1, EPOLLOUT);
        return;
      }
    }
    const int64_t now = NowNs();
    const int64_t latency_ns = absl::ToInt64Nanoseconds(link->fault.latency);
    char data[kReadSize];
    for (int d = 0; d < 2; ++d) {
      while (!c->eof[d] && c->buffered[d] < kMaxBuffered) {
        ssize_t n = read(c->fd[d], data, sizeof data);
        if (n > 0) {
          c->buf[d].push_back(
              {now + latency_ns, std::string(data, static_cast<size_t>(n))});
          c->buffered[d] += static_cast<size_t>(n);
          link->stats.bytes += n;
          if (latency_ns > 0) timed_.insert(c);
        } else if (n == 0) {
          c->eof[d] = true;
        } else if (errno == EAGAIN || errno == EINTR) {
          break;
        } else {  // the peer reset: pass the reset on
          Close(c, /*reset=*/true);
          return;
        }
      }
      c->blocked[d] = false;
      while (!c->buf[d].empty() && c->buf[d].front().due_ns <= now) {
        Chunk& front = c->buf[d].front();
        const size_t off = c->front_offset[d];
        ssize_t n = send(c->fd[1 - d], front.data.data() + off,
                         front.data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          c->blocked[d] = true;
          break;
        }
        if (n < 0) {
          Close(c, /*reset=*/true);
          return;
        }
        c->buffered[d] -= static_cast<size_t>(n);
        if (off + static_cast<size_t>(n) == front.data.size()) {
          c->buf[d].pop_front();
          c->front_offset[d] = 0;
        } else {
          c->front_offset[d] = off + static_cast<size_t>(n);
        }
      }
      if (c->eof[d] && c->buf[d].empty() && !c->shut[d]) {
        shutdown(c->fd[1 - d], SHUT_WR);
        c->shut[d] = true;
      }
    }
    if (c->shut[0] && c->shut[1]) {
      Close(c, /*reset=*/false);
      return;
    }
    for (int side = 0; side < 2; ++side) {
      uint32_t ev = 0;
      if (!c->eof[side] && c->buffered[side] < kMaxBuffered) ev |= EPOLLIN;
      if (c->blocked[1 - side]) ev |= EPOLLOUT;
      SetInterest(c, side, ev);
    }
  }

  const int epfd_;
  const int wakefd_;
  std::thread thread_;
  bool stop_ = false;  // event thread only

  absl::Mutex mu_;
  std::deque<std::function<void()>> commands_ ABSL_GUARDED_BY(mu_);

  // Event thread only.
  std::map<std::string, std::unique_ptr<Link>> links_;
  std::unordered_map<int, Link*> listeners_;
  std::unordered_map<int, Conn*> sockets_;
  std::set<Conn*> alive_;
  std::set<Conn*> timed_;  // connections with chunks waiting out a latency
};

FaultProxy::FaultProxy(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}
FaultProxy::~FaultProxy() = default;

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start() {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return Errno("epoll_create1");
  int wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd < 0) {
    close(epfd);
    return Errno("eventfd");
  }
  return std::unique_ptr<FaultProxy>(
      new FaultProxy(std::make_unique<Loop>(epfd, wakefd)));
}

absl::StatusOr<int> FaultProxy::AddLink(const std::string& name,
                                        int upstream_port, int listen_port) {
  if (upstream_port <= 0 || upstream_port > 65535 || listen_port < 0 ||
      listen_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "link '", name, "': ports must be in 1..65535 (listen 0 ",
        "= any); got upstream ", upstream_port, ", listen ", listen_port));
  }
  return loop_->AddLink(name, upstream_port, listen_port);
}

absl::Status FaultProxy::Set(const std::string& name, Fault fault) {
  if (fault.latency < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("link '", name, "': latency must not be negative, got ",
                     absl::FormatDuration(fault.latency)));
  }
  return loop_->Set(name, fault);
}

absl::StatusOr<FaultProxy::LinkStats> FaultProxy::Stats(
    const std::string& name) {
  return loop_->Stats(name);
}

}  // namespace mcl::faultproxy
