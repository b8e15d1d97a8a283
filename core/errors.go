package core

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Sentinel errors returned by the gateway and by [Store] and [Sender]
// implementations. Match them with [errors.Is].
var (
	// ErrUnauthorized: the token is missing, malformed, expired or badly signed.
	ErrUnauthorized = errors.New("wsgate: unauthorized")
	// ErrForbidden: the caller is authenticated but not allowed to do this.
	ErrForbidden = errors.New("wsgate: forbidden")
	// ErrForbiddenOrigin: the Origin header names a host that is not allowed.
	ErrForbiddenOrigin = errors.New("wsgate: origin not allowed")
	// ErrTooManyConnections: the client IP already holds the maximum number
	// of open connections.
	ErrTooManyConnections = errors.New("wsgate: too many connections from this IP")
	// ErrTooManyConnects: the client IP reached its connects per rolling hour.
	// The error is wrapped in a [*RetryError].
	ErrTooManyConnects = errors.New("wsgate: too many connects from this IP in the last hour")
	// ErrRateLimited: the connection sent too many messages in the last minute.
	// The error is wrapped in a [*RetryError].
	ErrRateLimited = errors.New("wsgate: message rate limit reached")
	// ErrTooManySubscriptions: the connection already holds the maximum
	// number of subscriptions.
	ErrTooManySubscriptions = errors.New("wsgate: too many subscriptions")
	// ErrUnavailable: the store cannot be reached. Stores wrap their
	// transport errors with it so that the gateway never lets a request
	// through unchecked.
	ErrUnavailable = errors.New("wsgate: store unavailable")
	// ErrNotFound: no open connection has this id.
	ErrNotFound = errors.New("wsgate: connection not found")
	// ErrGone: a send found the connection gone (API Gateway's 410).
	ErrGone = errors.New("wsgate: connection gone")
	// ErrBadRequest: the request or message is malformed.
	ErrBadRequest = errors.New("wsgate: bad request")
)

// RetryError carries how long a limited caller should wait. It wraps
// [ErrTooManyConnects] or [ErrRateLimited].
type RetryError struct {
	Err   error
	After time.Duration
}

// Error implements error.
func (e *RetryError) Error() string { return fmt.Sprintf("%v (retry after %v)", e.Err, e.After) }

// Unwrap returns the limit that was hit.
func (e *RetryError) Unwrap() error { return e.Err }

// Refusal is the wire form of an error at the edge: an HTTP status, a code
// for the JSON body or error frame, a human-readable message and, for 429s,
// the whole seconds to wait.
type Refusal struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds, 0 when not applicable
}

// RefusalFor maps an error from the gateway to the status and code that the
// SPEC gives it. It is the one place where errors become status codes; both
// adapters use it.
func RefusalFor(err error) Refusal {
	var re *RetryError
	switch {
	case errors.Is(err, ErrUnauthorized):
		return Refusal{Status: 401, Code: "unauthorized", Message: "missing or invalid token"}
	case errors.Is(err, ErrForbiddenOrigin):
		return Refusal{Status: 403, Code: "forbidden_origin", Message: "origin not allowed"}
	case errors.Is(err, ErrForbidden):
		return Refusal{Status: 403, Code: "forbidden", Message: "not allowed"}
	case errors.Is(err, ErrTooManyConnections):
		return Refusal{Status: 429, Code: "too_many_connections", Message: "too many open connections from this IP"}
	case errors.Is(err, ErrTooManyConnects):
		r := Refusal{Status: 429, Code: "too_many_connects", Message: "too many connections from this IP in the last hour", RetryAfter: 3600}
		if errors.As(err, &re) {
			r.RetryAfter = clampSeconds(re.After, 1, 3600)
		}
		return r
	case errors.Is(err, ErrRateLimited):
		r := Refusal{Status: 429, Code: "rate_limited", Message: "too many messages, slow down", RetryAfter: 60}
		if errors.As(err, &re) {
			r.RetryAfter = clampSeconds(re.After, 1, 60)
		}
		return r
	case errors.Is(err, ErrTooManySubscriptions):
		return Refusal{Status: 429, Code: "too_many_subscriptions", Message: "subscription limit reached"}
	case errors.Is(err, ErrBadRequest):
		return Refusal{Status: 400, Code: "bad_request", Message: "bad request"}
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrGone):
		return Refusal{Status: 410, Code: "gone", Message: "connection gone"}
	default:
		return Refusal{Status: 503, Code: "unavailable", Message: "service unavailable, try again"}
	}
}

// clampSeconds rounds d up to whole seconds and clamps it to [lo, hi].
func clampSeconds(d time.Duration, lo, hi int) int {
	s := int(math.Ceil(d.Seconds()))
	if s < lo {
		return lo
	}
	if s > hi {
		return hi
	}
	return s
}
