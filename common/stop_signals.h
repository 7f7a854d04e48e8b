// The termination signals both binaries answer (SIGTERM from the kubelet,
// SIGINT from a terminal). They are taken by one thread with sigwait rather
// than by a handler, so what follows a signal (resigning, releasing locks,
// logging) is ordinary code, not async-signal-safe code.
#ifndef MCL_COMMON_STOP_SIGNALS_H_
#define MCL_COMMON_STOP_SIGNALS_H_

namespace mcl {

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
// starts afterwards (they inherit the mask), and ignores SIGPIPE (a peer that
// closes a socket must not kill the process). Call in main before any thread
// starts: a thread started earlier would take the signal's default action.
void BlockStopSignals();

// Blocks until SIGTERM or SIGINT arrives; returns the signal number. Needs
// BlockStopSignals first.
int WaitForStopSignal();

}  // namespace mcl

#endif  // MCL_COMMON_STOP_SIGNALS_H_
