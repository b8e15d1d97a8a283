package core

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a [Gateway]. Zero fields take the documented defaults
// only where the SPEC gives one; limits of 0 are off.
type Config struct {
	// Auth verifies tokens; required.
	Auth *Authenticator
	// Store keeps connections, limits, subscriptions and counters; required.
	Store Store
	// Sender delivers fan-out events; required.
	Sender Sender
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// MaxConnectionsPerIP, MaxConnectsPerHour and MaxMessagesPerMinute are
	// the SPEC's three limits; 0 is off.
	MaxConnectionsPerIP  int
	MaxConnectsPerHour   int
	MaxMessagesPerMinute int
	// MaxConnectionAge is the age at which connections are closed and after
	// which a connection whose disconnect was lost stops counting. Zero
	// means 2h.
	MaxConnectionAge time.Duration
	// MaxSubscriptions bounds one connection's subscriptions. Zero means 100.
	MaxSubscriptions int
	// Origins decides which browser origins may connect. The zero value
	// allows requests without Origin and same-host origins.
	Origins OriginPolicy
	// ClientPublish lets clients publish to channels.
	ClientPublish bool
}

// Gateway is the transport-agnostic WebSocket gateway. It is safe for
// concurrent use.
type Gateway struct {
	cfg    Config
	clock  Clock
	log    *slog.Logger
	limits Limits
	rates  RateStore // nil: rate windows kept in memory per Session
}

// New checks cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Auth == nil || cfg.Store == nil || cfg.Sender == nil {
		return nil, errors.New("wsgate: core.New needs Auth, Store and Sender")
	}
	if cfg.MaxConnectionsPerIP < 0 || cfg.MaxConnectsPerHour < 0 || cfg.MaxMessagesPerMinute < 0 || cfg.MaxConnectionAge < 0 || cfg.MaxSubscriptions < 0 {
		return nil, errors.New("wsgate: limits must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConnectionAge == 0 {
		cfg.MaxConnectionAge = 2 * time.Hour
	}
	if cfg.MaxSubscriptions == 0 {
		cfg.MaxSubscriptions = 100
	}
	return &Gateway{
		cfg:   cfg,
		clock: cfg.Clock,
		log:   cfg.Logger,
		limits: Limits{
			MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
			MaxConnectsPerHour:  cfg.MaxConnectsPerHour,
			MaxAge:              cfg.MaxConnectionAge,
		},
	}, nil
}

// ConnectRequest is what a transport knows about a connection attempt.
type ConnectRequest struct {
	// ID is the connection id to use; empty makes a random one.
	ID string
	// Token is the bearer JWT, from whichever transport carried it.
	Token string
	// Origin is the Origin header, empty when absent.
	Origin string
	// Host is the request's Host header.
	Host string
	// IP is the client IP the limits are counted against.
	IP string
	// Endpoint is where this connection is held (see [Conn.Endpoint]).
	Endpoint string
}

// Session is one open connection as the gateway handles it. Long-lived
// transports keep it for the connection's lifetime; the Lambda adapter
// rebuilds it for each event with [Gateway.Resume].
type Session struct {
	// Conn is the connection's record. A session from [Gateway.Resume]
	// holds only the ID until a message needs the rest.
	Conn Conn
	// window holds the accepted message times of the last minute when the
	// rate window is kept in memory.
	window RateWindow

	lazy    bool // Conn is not loaded yet
	unknown bool // the store knows no such connection
}

// Unknown reports whether the store, asked while a message was handled,
// knew no such connection: the transport should close it.
func (s *Session) Unknown() bool { return s.unknown }

// Connect runs the checks in the SPEC's order (Origin, token, limits) and
// admits the connection. Refusals wrap the sentinel errors; map them with
// [RefusalFor].
func (g *Gateway) Connect(ctx context.Context, req ConnectRequest) (*Session, error) {
	if !g.cfg.Origins.Allowed(req.Origin, req.Host) {
		g.log.LogAttrs(ctx, slog.LevelWarn, "refused", slog.String("reason", "forbidden_origin"),
			slog.String("ip", req.IP), slog.String("origin", clip(req.Origin)))
		return nil, ErrForbiddenOrigin
	}
	id, err := g.cfg.Auth.Authenticate(ctx, req.Token)
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelWarn, "refused", slog.String("reason", "unauthorized"),
			slog.String("ip", req.IP), slog.String("error", clip(err.Error())))
		return nil, err
	}
	connID := req.ID
	if connID == "" {
		connID = NewConnID()
	}
	c := Conn{
		ID:          connID,
		User:        id.Subject,
		Admin:       id.Admin,
		IP:          req.IP,
		ConnectedAt: g.clock.Now(),
		Endpoint:    req.Endpoint,
	}
	if err := g.cfg.Store.Admit(ctx, c, g.limits, c.ConnectedAt); err != nil {
		r := RefusalFor(err)
		g.log.LogAttrs(ctx, slog.LevelWarn, "refused", slog.String("reason", r.Code),
			slog.String("ip", req.IP), slog.String("user", clip(id.Subject)), slog.String("error", err.Error()))
		return nil, err
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "connect", slog.String("connection_id", c.ID),
		slog.String("user", clip(c.User)), slog.String("ip", c.IP), slog.Bool("admin", c.Admin))
	return &Session{Conn: c}, nil
}

// Resume returns the session of open connection id for transports that
// handle each message in a fresh process (API Gateway's Lambdas). The
// connection's record is read from the store only when a message needs it
// (whoami, subscribe, publish), so a ping costs no read. When the store
// knows no such connection, [Session.Unknown] reports it after
// [Gateway.Message].
func (g *Gateway) Resume(ctx context.Context, id string) *Session {
	return &Session{Conn: Conn{ID: id}, lazy: true}
}

// load reads a resumed session's connection record once.
func (g *Gateway) load(ctx context.Context, s *Session) error {
	if !s.lazy {
		return nil
	}
	c, err := g.cfg.Store.Lookup(ctx, s.Conn.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.unknown = true
		}
		return err
	}
	s.Conn, s.lazy = c, false
	return nil
}

// UseStoreRates makes the gateway keep each connection's message rate
// window in rs instead of in the Session, for transports whose sessions do
// not outlive one message (see [Gateway.Resume]).
func (g *Gateway) UseStoreRates(rs RateStore) { g.rates = rs }

// Disconnect records that connection id closed, with the reason for the
// log. It is idempotent: a second call for the same id does nothing.
func (g *Gateway) Disconnect(ctx context.Context, id, reason string) error {
	now := g.clock.Now()
	c, was, err := g.cfg.Store.Release(ctx, id, now)
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "disconnect not recorded", slog.String("connection_id", id), slog.String("error", err.Error()))
		return err
	}
	if was {
		g.log.LogAttrs(ctx, slog.LevelInfo, "disconnect", slog.String("connection_id", id),
			slog.String("user", clip(c.User)), slog.String("ip", c.IP), slog.String("reason", reason),
			slog.Float64("duration_s", now.Sub(c.ConnectedAt).Seconds()))
	}
	return nil
}

// Authenticate verifies a token for the admin API and for `@connections`.
func (g *Gateway) Authenticate(ctx context.Context, token string) (Identity, error) {
	return g.cfg.Auth.Authenticate(ctx, token)
}

// Now is the gateway clock's time.
func (g *Gateway) Now() time.Time { return g.clock.Now() }

// MaxConnectionAge is the configured connection age limit.
func (g *Gateway) MaxConnectionAge() time.Duration { return g.cfg.MaxConnectionAge }

// NewConnID returns a random, URL-safe connection id.
func NewConnID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("wsgate: crypto/rand failed: %v", err)) // never returns an error on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// clip bounds client-controlled text before it is logged.
func clip(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
