package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// inbound is a client message: the raw JSON values of the members the
// protocol reads, sliced out of the message without copying.
type inbound struct {
	Type    []byte // raw JSON value
	ID      []byte // raw JSON value
	Channel string
	Data    []byte // raw JSON value
}

// parseError says why a message is a bad_request.
type parseError string

// Error implements error.
func (e parseError) Error() string { return string(e) }

// parse reads the members of a JSON object message into in. It keeps a
// valid id even when the rest of the message is bad, so that the error reply
// can carry it. Member names match exactly; a repeated member's last value
// wins.
func parse(data []byte, in *inbound) error {
	if !utf8.Valid(data) {
		return parseError("message is not valid UTF-8")
	}
	if !json.Valid(data) {
		return parseError("message is not valid JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return parseError("message must be a JSON object")
	}
	var channel []byte
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		keyEnd := skipValue(data, i)
		key := data[i:keyEnd]
		i = skipSpace(data, keyEnd)
		i = skipSpace(data, i+1) // past ':'
		valEnd := skipValue(data, i)
		val := data[i:valEnd]
		switch string(unquoteKey(key)) {
		case "type":
			in.Type = val
		case "id":
			in.ID = val
		case "channel":
			channel = val
		case "data":
			in.Data = val
		}
		i = skipSpace(data, valEnd)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if len(in.ID) > 0 && !validID(in.ID) {
		in.ID = nil
		return parseError("id must be a string or a number")
	}
	if len(in.Type) == 0 || in.Type[0] != '"' {
		return parseError("message needs a string type")
	}
	if channel != nil {
		if channel[0] != '"' {
			return parseError("channel must be a string")
		}
		in.Channel = unquote(channel)
	}
	return nil
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i. b
// must be valid JSON.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	default: // number, true, false, null
		for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
			i++
		}
		return i
	}
}

// unquoteKey returns a member name's text; names with escapes are decoded.
func unquoteKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	return []byte(unquote(raw))
}

// unquote decodes a valid JSON string literal.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // raw is a valid string literal
	return s
}

// validID reports whether a raw JSON value is a string or a number.
func validID(raw []byte) bool {
	c := raw[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}

// Message handles one inbound data message of session s and returns the
// reply to send back on the same connection. The reply may be shared: the
// caller must not modify it. It is not safe to call
// concurrently for one Session; transports handle a connection's messages in
// order.
func (g *Gateway) Message(ctx context.Context, s *Session, data []byte) []byte {
	now := g.clock.Now()
	var in inbound
	perr := parse(data, &in)
	if err := g.cfg.Store.Count(ctx, Counts{Received: 1, Sent: 1}, now); err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "message not counted", slog.String("connection_id", s.Conn.ID), slog.String("error", err.Error()))
		return errorFrame(in.ID, ErrUnavailable, "")
	}
	if err := g.allow(ctx, s, now); err != nil {
		if errors.Is(err, ErrNotFound) {
			s.unknown = true
		}
		if errors.Is(err, ErrRateLimited) {
			g.log.LogAttrs(ctx, slog.LevelWarn, "rate limited", slog.String("connection_id", s.Conn.ID),
				slog.String("user", clip(s.Conn.User)), slog.String("ip", s.Conn.IP))
		}
		return errorFrame(in.ID, err, "")
	}
	if perr != nil {
		return errorFrame(in.ID, ErrBadRequest, perr.Error())
	}
	switch string(in.Type) {
	case `"whoami"`, `"subscribe"`, `"publish"`: // they need the connection's record
		if err := g.load(ctx, s); err != nil {
			return errorFrame(in.ID, err, "")
		}
	}
	switch string(in.Type) {
	case `"ping"`:
		if len(in.ID) == 0 {
			return pongFrame
		}
		return withID(append(make([]byte, 0, 32+len(in.ID)), `{"type":"pong"`...), in.ID)
	case `"whoami"`:
		b := append(make([]byte, 0, 64+len(s.Conn.ID)+len(s.Conn.User)+len(in.ID)), `{"type":"whoami","connection_id":`...)
		b = appendString(b, s.Conn.ID)
		b = append(b, `,"user":`...)
		b = appendString(b, s.Conn.User)
		return withID(b, in.ID)
	case `"subscribe"`:
		if err := g.subscribe(ctx, s, in.Channel); err != nil {
			return errorFrame(in.ID, err, "")
		}
		return channelFrame("subscribed", in.Channel, in.ID)
	case `"unsubscribe"`:
		if !ValidChannel(in.Channel) {
			return errorFrame(in.ID, ErrBadRequest, "bad channel name")
		}
		if err := g.cfg.Store.Unsubscribe(ctx, s.Conn.ID, in.Channel); err != nil {
			return errorFrame(in.ID, err, "")
		}
		return channelFrame("unsubscribed", in.Channel, in.ID)
	case `"publish"`:
		n, err := g.clientPublish(ctx, s, in.Channel, in.Data)
		if err != nil {
			return errorFrame(in.ID, err, "")
		}
		b := append(make([]byte, 0, 64+len(in.Channel)+len(in.ID)), `{"type":"published","channel":"`...)
		b = append(b, in.Channel...)
		b = append(b, `","delivered":`...)
		b = strconv.AppendInt(b, int64(n), 10)
		return withID(b, in.ID)
	default:
		return errorFrame(in.ID, errUnknownType, "")
	}
}

// pongFrame is the reply to a ping without id, shared by every connection.
var pongFrame = []byte(`{"type":"pong"}`)

// errUnknownType is the message error for a type the gateway does not know.
var errUnknownType = errors.New("wsgate: unknown message type")

// allow applies the per-connection message rate limit.
func (g *Gateway) allow(ctx context.Context, s *Session, now time.Time) error {
	limit := g.cfg.MaxMessagesPerMinute
	if limit <= 0 {
		return nil
	}
	if g.rates != nil {
		return g.rates.AllowMessage(ctx, s.Conn.ID, limit, now)
	}
	if ok, wait := s.window.Allow(now, limit); !ok {
		return &RetryError{Err: ErrRateLimited, After: wait}
	}
	return nil
}

func (g *Gateway) subscribe(ctx context.Context, s *Session, channel string) error {
	if !ValidChannel(channel) {
		return badRequest("bad channel name")
	}
	if !canSubscribe(s.Conn, channel) {
		return ErrForbidden
	}
	return g.cfg.Store.Subscribe(ctx, s.Conn, channel, g.cfg.MaxSubscriptions)
}

func (g *Gateway) clientPublish(ctx context.Context, s *Session, channel string, data json.RawMessage) (int, error) {
	if !ValidChannel(channel) {
		return 0, badRequest("bad channel name")
	}
	if len(data) == 0 {
		return 0, badRequest("publish needs data")
	}
	if !g.cfg.ClientPublish || !canPublish(s.Conn, channel) {
		return 0, ErrForbidden
	}
	return g.fanout(ctx, channel, data, s.Conn.User, s.Conn.ID)
}

// badRequest is an ErrBadRequest with a message for the client.
type badRequest string

// Error implements error.
func (e badRequest) Error() string { return string(e) }

// Unwrap makes a badRequest match [ErrBadRequest].
func (e badRequest) Unwrap() error { return ErrBadRequest }

// withID closes frame b, adding the id when there is one.
func withID(b []byte, id json.RawMessage) []byte {
	if len(id) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	return append(b, '}')
}

func channelFrame(typ, channel string, id json.RawMessage) []byte {
	b := append(make([]byte, 0, 32+len(channel)+len(id)), `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","channel":"`...)
	b = append(b, channel...) // valid channel names need no escaping
	b = append(b, '"')
	return withID(b, id)
}

// errorFrame builds {"type":"error",...} for err; msg overrides the message.
func errorFrame(id json.RawMessage, err error, msg string) []byte {
	code, text, retry := "", "", 0
	switch {
	case errors.Is(err, errUnknownType):
		code, text = "unknown_type", "unknown message type"
	case errors.Is(err, ErrNotFound):
		code, text = "unavailable", "this connection is not registered: reconnect"
	default:
		r := RefusalFor(err)
		code, text, retry = r.Code, r.Message, r.RetryAfter
		var br badRequest
		if errors.As(err, &br) {
			text = string(br)
		}
	}
	if msg != "" {
		text = msg
	}
	b := append(make([]byte, 0, 96+len(id)), `{"type":"error","code":"`...)
	b = append(b, code...)
	b = append(b, `","message":`...)
	b = appendString(b, text)
	if code == "rate_limited" {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, int64(retry), 10)
	}
	return withID(b, id)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // a string always marshals
		return append(b, `""`...)
	}
	return append(b, q...)
}
