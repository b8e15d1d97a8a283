// Package adminapi is wsgate's admin API as one transport-free function:
// the local server and the admin Lambda both hand [Handler.Serve] the
// request's method, path, Authorization header and body, and write back the
// [Response] it returns, so the two cannot drift.
//
// The routes are the SPEC's:
//
//	GET  /api/monitoring/websocket/metrics[/]             the live metrics
//	GET  /api/monitoring/websocket/active-connections[/]  {"active_connections":N}
//	POST /api/publish                                      {"channel":C,"data":ANY} -> {"delivered":N}
//
// Every route needs `Authorization: Bearer JWT` carrying the admin claim:
// no or a bad token answers 401, a valid non-admin token 403. Then a wrong
// method answers 405 (with Allow), a bad publish body 400 (413 when over
// [MaxBody]), a store that cannot be reached 503. Error bodies are
// {"error":CODE,"message":TEXT}.
package adminapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/wsgate/wsgate/core"
)

// MaxBody bounds admin request bodies (API Gateway's own PostToConnection
// limit is 128 KiB). A transport that streams bodies reads at most
// MaxBody+1 bytes and passes them on; Serve answers 413 past MaxBody.
const MaxBody = 128 << 10

// The admin API's paths.
const (
	MetricsPath = "/api/monitoring/websocket/metrics/"
	ActivePath  = "/api/monitoring/websocket/active-connections/"
	PublishPath = "/api/publish"
)

// Paths lists every spelling [Handler.Serve] answers, for transports that
// route before calling it: the two monitoring paths with and without the
// trailing slash, and the publish path.
var Paths = []string{
	MetricsPath, strings.TrimSuffix(MetricsPath, "/"),
	ActivePath, strings.TrimSuffix(ActivePath, "/"),
	PublishPath,
}

// Request is what the admin API reads of an HTTP request.
type Request struct {
	// Method is the HTTP method, upper case.
	Method string
	// Path is the URL path, without query.
	Path string
	// Authorization is the Authorization header's value; only
	// "Bearer JWT" counts.
	Authorization string
	// Body is the request body, at most MaxBody+1 bytes of it.
	Body []byte
}

// Response is the admin API's answer.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds headers besides Content-Type (Allow on a 405).
	Header map[string]string
	// Body is JSON followed by a newline; ContentType names it.
	Body []byte
}

// ContentType is the content type of every [Response] body.
const ContentType = "application/json"

// Handler serves the admin API from a gateway.
type Handler struct {
	gw  *core.Gateway
	log *slog.Logger
}

// New returns a Handler on gw; log receives store failures (nil means
// slog.Default()).
func New(gw *core.Gateway, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{gw: gw, log: log}
}

// Authorize checks an Authorization header value for an admin token: a
// bearer token from that header only, carrying the admin claim. When the
// caller is not an admin it returns the answer to give (401 or 403) and
// false. The local server's `@connections` API uses it too.
func (h *Handler) Authorize(ctx context.Context, authorization string) (Response, bool) {
	tok, _ := core.BearerToken(authorization)
	id, err := h.gw.Authenticate(ctx, tok)
	if err != nil {
		return Error(401, "unauthorized", "an admin bearer token is required"), false
	}
	if !id.Admin {
		return Error(403, "forbidden", "admin only"), false
	}
	return Response{}, true
}

// route is one admin endpoint: the method it takes and what it does once
// the caller is known to be an admin.
type route struct {
	method string
	serve  func(h *Handler, ctx context.Context, body []byte) Response
}

// routeFor finds the endpoint of path, both trailing-slash spellings of the
// monitoring paths included.
func routeFor(path string) (route, bool) {
	switch path {
	case MetricsPath, strings.TrimSuffix(MetricsPath, "/"):
		return route{"GET", (*Handler).metrics}, true
	case ActivePath, strings.TrimSuffix(ActivePath, "/"):
		return route{"GET", (*Handler).active}, true
	case PublishPath:
		return route{"POST", (*Handler).publish}, true
	}
	return route{}, false
}

// Serve answers one admin request. Checks run in this order: path (404),
// token (401, 403), method (405), body (413, 400), store (503).
func (h *Handler) Serve(ctx context.Context, r Request) Response {
	rt, ok := routeFor(r.Path)
	if !ok {
		return Error(404, "not_found", "no such endpoint")
	}
	if resp, ok := h.Authorize(ctx, r.Authorization); !ok {
		return resp
	}
	if r.Method != rt.method {
		resp := Error(405, "method_not_allowed", "method not allowed")
		resp.Header = map[string]string{"Allow": rt.method}
		return resp
	}
	return rt.serve(h, ctx, r.Body)
}

func (h *Handler) metrics(ctx context.Context, _ []byte) Response {
	m, err := h.gw.Metrics(ctx)
	if err != nil {
		return h.storeError(ctx, err)
	}
	return JSON(200, m)
}

func (h *Handler) active(ctx context.Context, _ []byte) Response {
	m, err := h.gw.Metrics(ctx)
	if err != nil {
		return h.storeError(ctx, err)
	}
	return JSON(200, map[string]int64{"active_connections": m.ActiveConnections})
}

// publishRequest is the body of POST /api/publish.
type publishRequest struct {
	Channel *string         `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (h *Handler) publish(ctx context.Context, body []byte) Response {
	if len(body) > MaxBody {
		return Error(413, "bad_request", "body too large")
	}
	req, msg := parsePublish(body)
	if msg != "" {
		return Error(400, "bad_request", msg)
	}
	n, err := h.gw.Publish(ctx, *req.Channel, req.Data)
	if err != nil {
		return h.storeError(ctx, err)
	}
	return JSON(200, map[string]int{"delivered": n})
}

// parsePublish checks a publish body; msg is non-empty when it is bad.
func parsePublish(body []byte) (publishRequest, string) {
	const shape = `body must be a JSON object {"channel":C,"data":ANY}`
	var req publishRequest
	trimmed := strings.TrimLeft(string(body), " \t\r\n")
	if trimmed == "" || trimmed[0] != '{' {
		return req, shape
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, shape
	}
	if req.Channel == nil || !core.ValidChannel(*req.Channel) {
		return req, "channel must match ^[A-Za-z0-9_.:-]{1,128}$"
	}
	if len(req.Data) == 0 {
		return req, "data is required"
	}
	return req, ""
}

// storeError maps a gateway error with [core.RefusalFor], logging the
// store failures.
func (h *Handler) storeError(ctx context.Context, err error) Response {
	ref := core.RefusalFor(err)
	if ref.Status == 503 {
		h.log.LogAttrs(ctx, slog.LevelError, "admin request failed", slog.String("error", err.Error()))
	}
	return Error(ref.Status, ref.Code, ref.Message)
}

// JSON is a Response with status and v as its JSON body.
func JSON(status int, v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":"internal","message":"response could not be encoded"}`)
	}
	return Response{Status: status, Body: append(b, '\n')}
}

// Error is a Response with the SPEC's error body {"error":code,"message":msg}.
func Error(status int, code, msg string) Response {
	return JSON(status, map[string]string{"error": code, "message": msg})
}
