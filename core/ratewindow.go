package core

import "time"

// RateWindow is an exact sliding log of the accepted message times of the
// last minute, kept as a ring the size of the limit. The ring is allocated on
// the first message, so idle connections pay nothing for it. The zero value
// is ready to use; it is not safe for concurrent use.
type RateWindow struct {
	times []int64 // unix nanoseconds; len == limit once allocated
	next  int     // index of the oldest entry
}

// Allow records a message at now if fewer than limit were accepted in the
// minute before it; otherwise it returns how long until a slot frees.
func (w *RateWindow) Allow(now time.Time, limit int) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	if len(w.times) != limit {
		w.times = make([]int64, limit)
		w.next = 0
	}
	t := now.UnixNano()
	oldest := w.times[w.next]
	if oldest != 0 && t-oldest < int64(time.Minute) {
		return false, time.Duration(oldest + int64(time.Minute) - t)
	}
	w.times[w.next] = t
	w.next++
	if w.next == limit {
		w.next = 0
	}
	return true, 0
}
