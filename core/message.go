package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"
)

// inbound is a client message. Type and ID stay raw so their JSON type can be
// checked without allocating.
type inbound struct {
	Type    json.RawMessage `json:"type"`
	ID      json.RawMessage `json:"id"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// parseError says why a message is a bad_request.
type parseError string

func (e parseError) Error() string { return string(e) }

// parse decodes data into in. It keeps a valid id even when the rest of the
// message is bad, so that the error reply can carry it.
func parse(data []byte, in *inbound) error {
	if !utf8.Valid(data) {
		return parseError("message is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return parseError("message must be a JSON object")
	}
	err := json.Unmarshal(data, in)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		in.ID = nil
		return parseError("message is not valid JSON")
	}
	if len(in.ID) > 0 && !validID(in.ID) {
		in.ID = nil
		return parseError("id must be a string or a number")
	}
	if len(in.Type) == 0 || in.Type[0] != '"' {
		return parseError("message needs a string type")
	}
	if typeErr != nil {
		return parseError("field " + typeErr.Field + " has the wrong type")
	}
	return nil
}

// validID reports whether a raw JSON value is a string or a number.
func validID(raw json.RawMessage) bool {
	c := raw[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}

// Message handles one inbound data message of session s and returns the
// reply to send back on the same connection. It is not safe to call
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
	case `"ping"`:
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

func (e badRequest) Error() string { return string(e) }
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
