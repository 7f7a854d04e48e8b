#include "common/stop_signals.h"

#include <pthread.h>
#include <signal.h>

namespace mcl {
namespace {

sigset_t StopSignals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  return sigs;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t sigs = StopSignals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal() {
  const sigset_t sigs = StopSignals();
  int sig = 0;
  sigwait(&sigs, &sig);  // fails only for an invalid set
  return sig;
}

}  // namespace mcl
