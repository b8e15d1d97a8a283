package core

import "time"

// RateWindow is an exact sliding log of the accepted message times of the
// last minute. It holds only the times still inside the window, so its memory
// follows the traffic (at most the limit), and idle connections pay nothing.
// The zero value is ready to use; it is not safe for concurrent use.
type RateWindow struct {
	times []int64 // unix nanoseconds, ascending; times[head:] are live
	head  int
}

// Allow records a message at now if fewer than limit were accepted in the
// minute before it; otherwise it returns how long until a slot frees.
// Refused messages take no slot.
func (w *RateWindow) Allow(now time.Time, limit int) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	t := now.UnixNano()
	cut := t - int64(time.Minute)
	for w.head < len(w.times) && w.times[w.head] <= cut {
		w.head++
	}
	live := len(w.times) - w.head
	if live >= limit {
		frees := w.times[w.head+live-limit] // the entry whose expiry leaves limit-1
		return false, time.Duration(frees - cut)
	}
	if w.head > 0 && (w.head == len(w.times) || w.head >= cap(w.times)/2) {
		n := copy(w.times, w.times[w.head:])
		w.times = w.times[:n]
		w.head = 0
	}
	w.times = append(w.times, t)
	return true, 0
}
