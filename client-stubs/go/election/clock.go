package election

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// MonotonicNow returns the node's CLOCK_MONOTONIC in nanoseconds: the clock of
// Validity.valid_until_monotonic_ns and Validity.sent_monotonic_ns. Go's own monotonic readings
// (time.Now, timers) come from the same kernel clock on Linux but have an unexported origin, so
// the bound is compared with this reading only.
func MonotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// clock_gettime(CLOCK_MONOTONIC) cannot fail on Linux; if it ever did, no bound could be
		// honoured, so refuse to go on rather than guess.
		panic(fmt.Sprintf("mcl election: clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}

// ClockError is the error of a campaign whose LEADER event was sent, by the sidecar's
// CLOCK_MONOTONIC, later than this process received it: the two do not share a clock (another
// host or another time namespace), so the event's bound means nothing here. The campaign ends
// without ever acting as leader.
type ClockError struct {
	ReceivedNs, SentNs int64
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("mcl election: a LEADER event was received at %d ns on this process's CLOCK_MONOTONIC, "+
		"before the sidecar sent it (%d ns on its clock): the app and its sidecar do not share CLOCK_MONOTONIC "+
		"(run them on the same node, outside separate time namespaces); not acting as leader", e.ReceivedNs, e.SentNs)
}

// ErrNoValidity ends a campaign whose sidecar sent LEADER without a validity bound (a sidecar
// older than this library): such a LEADER would have to be trusted until LOST, which a frozen
// sidecar never sends. Upgrade the sidecar, or set Config.AllowMissingValidity to accept the old
// behaviour knowingly.
var ErrNoValidity = fmt.Errorf("mcl election: the sidecar sent LEADER without a validity bound " +
	"(it is older than this client library); upgrade the sidecar, or set Config.AllowMissingValidity " +
	"to trust LEADER until LOST or the stream's end (unsafe if the sidecar freezes)")
