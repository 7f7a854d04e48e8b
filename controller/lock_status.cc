#include "controller/lock_status.h"

namespace mcl::controller {

const kube::Condition* FindCondition(const LockStatus& s,
                                     const std::string& type) {
  for (const auto& c : s.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

void SetCondition(LockStatus& s, const std::string& type, bool ok,
                  const std::string& reason, const std::string& message,
                  const std::string& now) {
  const std::string status = ok ? "True" : "False";
  for (auto& c : s.conditions) {
    if (c.type != type) continue;
    if (c.status != status || c.last_transition_time.empty()) {
      c.last_transition_time = now;
    }
    c.status = status;
    c.reason = reason;
    c.message = message;
    return;
  }
  kube::Condition c;
  c.type = type;
  c.status = status;
  c.reason = reason;
  c.message = message;
  c.last_transition_time = now;
  s.conditions.push_back(std::move(c));
}

void ClearLeader(LockStatus& s) {
  s.leader.clear();
  s.leader_cluster.clear();
  s.leader_instance.clear();
  s.acquire_time.clear();
  s.fencing_token = 0;
  s.session.clear();
  s.heartbeat.clear();
  s.session_ttl_milliseconds = 0;
}

bool StatusDiffers(const LockStatus& a, const LockStatus& b) {
  if (a.leader != b.leader || a.leader_cluster != b.leader_cluster ||
      a.leader_instance != b.leader_instance ||
      a.acquire_time != b.acquire_time || a.fencing_token != b.fencing_token ||
      a.transitions != b.transitions || a.session != b.session ||
      a.heartbeat != b.heartbeat ||
      a.session_ttl_milliseconds != b.session_ttl_milliseconds ||
      a.conditions.size() != b.conditions.size()) {
    return true;
  }
  for (const auto& ca : a.conditions) {
    const kube::Condition* cb = FindCondition(b, ca.type);
    if (cb == nullptr || cb->status != ca.status || cb->reason != ca.reason ||
        cb->message != ca.message) {
      return true;
    }
  }
  return false;
}

}  // namespace mcl::controller
