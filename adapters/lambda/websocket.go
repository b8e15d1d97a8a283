package lambdaadapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/internal/adminapi"
)

// Options configures a [WebSocket]. Zero fields take the defaults named on
// them.
type Options struct {
	// APIGWEndpoint is the API Gateway management API base URL
	// (WSGATE_APIGW_ENDPOINT), such as "https://abc.execute-api.eu-west-1.amazonaws.com/prod".
	// Empty means "https://{domainName}/{stage}" of each event, which is
	// right unless the API is reached through a custom domain.
	APIGWEndpoint string
	// MaxMessageBytes is the largest inbound message
	// (WSGATE_MAX_MESSAGE_BYTES); exactly this size is allowed. Zero means
	// 32768.
	MaxMessageBytes int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Closer is implemented by senders that can close a connection held by
// API Gateway (the management API's DeleteConnection). When the
// [core.Config] Sender implements it, a `$default` message from a
// connection the store does not know, an oversized message and a binary
// message close the connection, as the local server would; otherwise they
// are answered with an error frame.
type Closer interface {
	Close(ctx context.Context, t core.Target) error
}

// WebSocket handles the events of an API Gateway WebSocket API's
// `$connect`, `$disconnect` and `$default` routes. It is safe for
// concurrent use.
type WebSocket struct {
	gw     *core.Gateway
	sender core.Sender
	opts   Options
	log    *slog.Logger
}

// NewWebSocket builds the gateway from cfg. cfg.Sender reaches connections
// held by API Gateway (infra/delivery); replies go through it too.
// cfg.Store must also be a [core.RateStore]: a connection's messages are
// handled by many Lambda instances, so its rate window lives in the store.
func NewWebSocket(cfg core.Config, opts Options) (*WebSocket, error) {
	rates, ok := cfg.Store.(core.RateStore)
	if !ok {
		return nil, errors.New("lambdaadapter: the store must implement core.RateStore")
	}
	if opts.MaxMessageBytes < 0 {
		return nil, errors.New("lambdaadapter: MaxMessageBytes must not be negative")
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 32768
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if cfg.Logger == nil {
		cfg.Logger = opts.Logger
	}
	opts.APIGWEndpoint = strings.TrimRight(opts.APIGWEndpoint, "/")
	gw, err := core.New(cfg)
	if err != nil {
		return nil, err
	}
	gw.UseStoreRates(rates)
	return &WebSocket{gw: gw, sender: cfg.Sender, opts: opts, log: opts.Logger}, nil
}

// Gateway returns the core gateway the handler serves.
func (h *WebSocket) Gateway() *core.Gateway { return h.gw }

// Handle serves one event, routed on requestContext.routeKey (or, for a
// custom route key, eventType). It never returns an error: `$connect`
// answers with its status code, `$default` and `$disconnect` with 200.
func (h *WebSocket) Handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc := ev.RequestContext
	switch {
	case rc.RouteKey == "$connect" || (rc.RouteKey != "$disconnect" && rc.EventType == "CONNECT"):
		return h.connect(ctx, ev), nil
	case rc.RouteKey == "$disconnect" || rc.EventType == "DISCONNECT":
		h.disconnect(ctx, ev)
	default:
		h.message(ctx, ev)
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// endpoint is where the event's connection is held, as recorded in the
// store: the management API base URL with [core.APIGatewayPrefix].
func (h *WebSocket) endpoint(rc events.APIGatewayWebsocketProxyRequestContext) string {
	if h.opts.APIGWEndpoint != "" {
		return core.APIGatewayPrefix + h.opts.APIGWEndpoint
	}
	return core.APIGatewayPrefix + "https://" + rc.DomainName + "/" + rc.Stage
}

func (h *WebSocket) connect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) events.APIGatewayProxyResponse {
	hd := headers{ev.Headers, ev.MultiValueHeaders}
	token, offersBearer := tokenOf(ev, hd)
	_, err := h.gw.Connect(ctx, core.ConnectRequest{
		ID:       ev.RequestContext.ConnectionID,
		Token:    token,
		Origin:   hd.get("Origin"),
		Host:     hd.get("Host"),
		IP:       ev.RequestContext.Identity.SourceIP,
		Endpoint: h.endpoint(ev.RequestContext),
	})
	if err != nil {
		ref := core.RefusalFor(err)
		resp := adminapi.Error(ref.Status, ref.Code, ref.Message)
		out := events.APIGatewayProxyResponse{
			StatusCode: resp.Status,
			Headers:    map[string]string{"Content-Type": adminapi.ContentType},
			Body:       string(resp.Body),
		}
		if ref.Code == "too_many_connects" {
			out.Headers["Retry-After"] = strconv.Itoa(ref.RetryAfter)
		}
		return out
	}
	out := events.APIGatewayProxyResponse{StatusCode: 200}
	if offersBearer {
		// Selected whenever offered, whichever way the token came, as the
		// local server does: a browser fails a handshake that selects none
		// of the subprotocols it offered.
		out.Headers = map[string]string{"Sec-WebSocket-Protocol": "bearer"}
	}
	return out
}

func (h *WebSocket) disconnect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) {
	rc := ev.RequestContext
	reason := "disconnect"
	if rc.DisconnectStatusCode != 0 {
		reason = "close " + strconv.FormatInt(rc.DisconnectStatusCode, 10)
	}
	if rc.DisconnectReason != nil && *rc.DisconnectReason != "" {
		reason += ": " + *rc.DisconnectReason
	}
	// A failure is logged by the gateway; API Gateway ignores the answer.
	_ = h.gw.Disconnect(ctx, rc.ConnectionID, reason)
}

// message handles one `$default` event: the reply is posted to the
// caller's own connection.
func (h *WebSocket) message(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) {
	self := core.Target{ID: ev.RequestContext.ConnectionID, Endpoint: h.endpoint(ev.RequestContext)}
	if ev.IsBase64Encoded {
		h.refuse(ctx, self, nil, "bad_request", "binary messages are not supported", "binary message")
		return
	}
	data := []byte(ev.Body)
	if len(data) > h.opts.MaxMessageBytes {
		h.refuse(ctx, self, nil, "bad_request", fmt.Sprintf("message larger than %d bytes", h.opts.MaxMessageBytes), "message too big")
		return
	}
	sess := h.gw.Resume(ctx, self.ID)
	h.post(ctx, self, h.gw.Message(ctx, sess, data))
	if sess.Unknown() {
		// Its record is gone (a lost $connect, a cleanup): the reply told
		// the client to reconnect; close it where the sender can.
		h.log.LogAttrs(ctx, slog.LevelWarn, "message from an unknown connection", slog.String("connection_id", self.ID))
		if c, ok := h.sender.(Closer); ok {
			_ = c.Close(ctx, self)
		}
	}
}

// refuse counts a message the protocol never saw as received, then closes
// the connection when the sender can, and otherwise answers with an error
// frame.
func (h *WebSocket) refuse(ctx context.Context, self core.Target, data []byte, code, msg, reason string) {
	h.gw.Discarded(ctx)
	if c, ok := h.sender.(Closer); ok {
		if err := c.Close(ctx, self); err == nil || errors.Is(err, core.ErrGone) {
			_ = h.gw.Disconnect(context.WithoutCancel(ctx), self.ID, reason)
			return
		}
	}
	if h.post(ctx, self, errorFrame(data, code, msg)) {
		if err := h.gw.Delivered(ctx, 1); err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "sent message not counted", slog.String("error", err.Error()))
		}
	}
}

// post sends frame to the caller and reports whether it was delivered; a
// connection found gone is cleaned up.
func (h *WebSocket) post(ctx context.Context, self core.Target, frame []byte) bool {
	err := h.sender.Send(ctx, self, frame)
	switch {
	case err == nil:
		return true
	case errors.Is(err, core.ErrGone):
		_ = h.gw.Disconnect(context.WithoutCancel(ctx), self.ID, "gone")
	default:
		h.log.LogAttrs(ctx, slog.LevelWarn, "reply not delivered", slog.String("connection_id", self.ID), slog.String("error", err.Error()))
	}
	return false
}

// errorFrame is the SPEC's error frame for a message the gateway could not
// take, with the message's id when it has a valid one.
func errorFrame(data []byte, code, msg string) []byte {
	frame := struct {
		Type    string          `json:"type"`
		Code    string          `json:"code"`
		Message string          `json:"message"`
		ID      json.RawMessage `json:"id,omitempty"`
	}{"error", code, msg, idOf(data)}
	b, _ := json.Marshal(frame) // strings and a checked raw value always marshal
	return b
}

// idOf returns the message's id when it is a JSON string or number, as the
// core would echo it.
func idOf(data []byte) json.RawMessage {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if len(data) == 0 || json.Unmarshal(data, &m) != nil || len(m.ID) == 0 {
		return nil
	}
	switch c := m.ID[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return m.ID
	}
	return nil
}

// tokenOf finds the bearer token as the local server does: query `token`,
// then `Authorization: Bearer`, then the subprotocol pair `bearer, JWT`.
// offersBearer reports whether the client offered the `bearer`
// subprotocol, which the response must then select.
func tokenOf(ev events.APIGatewayWebsocketProxyRequest, hd headers) (token string, offersBearer bool) {
	query := ev.QueryStringParameters["token"]
	if ts := ev.MultiValueQueryStringParameters["token"]; query == "" && len(ts) > 0 {
		query = ts[0]
	}
	return core.HandshakeToken(query, hd.values("Authorization"), hd.values("Sec-WebSocket-Protocol"))
}

// headers reads an event's headers by case-insensitive name, from the
// single-value map and the multi-value map alike.
type headers struct {
	single map[string]string
	multi  map[string][]string
}

// values returns every value of name: the multi-value map's when it has
// the header (it holds repeated headers whole), else the single one.
func (h headers) values(name string) []string {
	for k, vs := range h.multi {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs
		}
	}
	if v, ok := h.lookup(name); ok {
		return []string{v}
	}
	return nil
}

// get returns the value of name: the single-value map's, else the first of
// the multi-value map's, else "".
func (h headers) get(name string) string {
	if v, ok := h.lookup(name); ok {
		return v
	}
	if vs := h.values(name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (h headers) lookup(name string) (string, bool) {
	if v, ok := h.single[name]; ok {
		return v, true
	}
	for k, v := range h.single {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// decodeBody returns an event body, base64-decoded when flagged so.
func decodeBody(body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		return []byte(body), nil
	}
	return base64.StdEncoding.DecodeString(body)
}
