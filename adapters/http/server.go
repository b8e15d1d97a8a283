package httpadapter

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/internal/adminapi"
)

// Options configures a [Server]. Zero fields take the defaults named on them.
type Options struct {
	// TrustedProxies lists the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxMessageBytes is the largest inbound message; zero means 32768.
	MaxMessageBytes int
	// MaxConnectionAge closes connections (1001) at this age; zero means 2h.
	MaxConnectionAge time.Duration
	// IdleTimeout closes connections (1001) that sent no data message for
	// this long; zero means 10m.
	IdleTimeout time.Duration
	// PingInterval is the protocol ping period; a peer that does not answer
	// within the next interval is dropped. Zero means 30s.
	PingInterval time.Duration
	// MaxQueuedFrames bounds a connection's outbound queue; a client that
	// stops reading is closed with 1008 past it. Zero means 1024.
	MaxQueuedFrames int
	// Endpoint is this server's advertise URL, recorded with each connection
	// so that other instances sharing the store can deliver to it. Empty for
	// a store only this process uses.
	Endpoint string
	// Remote delivers to connections held elsewhere (other instances, API
	// Gateway). Nil: such targets count as gone.
	Remote core.Sender
	// Static, when set, is served at `/` (index.html) and by file name
	// (`/client.js`).
	Static fs.FS
	// DevTokens, when set, is served at GET /dev/tokens to loopback peers:
	// the dev console's "use dev tokens" button. Set it only in dev mode.
	DevTokens func() (user, admin string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the local WebSocket server and admin API. It implements
// [net/http.Handler].
type Server struct {
	gw   *core.Gateway
	hub  *hub
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	adminAPI *adminapi.Handler

	// mu guards closing and live: a handshake is counted in live before it
	// can admit anything, and Shutdown waits until live is zero.
	mu      sync.Mutex
	closing bool
	live    int
	drained chan struct{} // closed when live reaches zero after Shutdown began
}

// New builds the gateway from cfg (its Sender is this server's hub) and the
// server around it.
func New(cfg core.Config, opts Options) (*Server, error) {
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 32768
	}
	if opts.MaxConnectionAge == 0 {
		opts.MaxConnectionAge = 2 * time.Hour
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.MaxQueuedFrames == 0 {
		opts.MaxQueuedFrames = 1024
	}
	if opts.MaxMessageBytes < 0 || opts.MaxConnectionAge < 0 || opts.IdleTimeout < 0 || opts.PingInterval < 0 || opts.MaxQueuedFrames < 0 {
		return nil, errors.New("httpadapter: options must not be negative")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &hub{endpoint: opts.Endpoint, remote: opts.Remote, conns: make(map[string]*wsConn)}
	cfg.Sender = h
	if cfg.MaxConnectionAge == 0 {
		cfg.MaxConnectionAge = opts.MaxConnectionAge
	}
	gw, err := core.New(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{gw: gw, hub: h, opts: opts, log: opts.Logger, mux: http.NewServeMux(), adminAPI: adminapi.New(gw, opts.Logger)}
	s.routes()
	return s, nil
}

// Gateway returns the core gateway the server serves.
func (s *Server) Gateway() *core.Gateway { return s.gw }

// ServeHTTP implements [net/http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.mux.HandleFunc("/ws", s.serveWS)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, p := range adminapi.Paths {
		s.mux.HandleFunc(p, s.serveAdmin)
	}
	s.mux.HandleFunc("/@connections/{id}", s.admin(s.serveConnections))
	s.mux.HandleFunc("/dev/tokens", s.serveDevTokens)
	s.mux.HandleFunc("/", s.serveStatic)
}

// serveWS runs the opening handshake's checks, then the connection.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if status, msg := checkUpgrade(r); status != 0 {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		writeError(w, status, "bad_request", msg)
		return
	}
	if !s.begin() {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "server shutting down")
		return
	}
	defer s.end()
	token := tokenFrom(r)
	sess, err := s.gw.Connect(r.Context(), core.ConnectRequest{
		Token:    token,
		Origin:   r.Header.Get("Origin"),
		Host:     r.Host,
		IP:       clientIP(r, s.opts.TrustedProxies),
		Endpoint: s.opts.Endpoint,
	})
	if err != nil {
		ref := core.RefusalFor(err)
		if ref.Status == http.StatusTooManyRequests && ref.Code == "too_many_connects" {
			w.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfter))
		}
		writeError(w, ref.Status, ref.Code, ref.Message)
		return
	}
	id := sess.Conn.ID
	// Origin was checked by the core. "bearer" is selected whenever the
	// client offered it, whichever transport carried the token: a browser
	// fails a handshake that selects none of the subprotocols it offered.
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, Subprotocols: []string{"bearer"}}
	hc := &hijackCapture{ResponseWriter: w}
	ws, err := websocket.Accept(hc, r, opts)
	if err != nil {
		_ = s.gw.Disconnect(context.WithoutCancel(r.Context()), id, "handshake failed")
		return
	}
	ws.SetReadLimit(int64(s.opts.MaxMessageBytes))
	c := &wsConn{srv: s, ws: ws, raw: hc.conn, sess: sess, ua: r.UserAgent(), start: time.Now()}
	c.lastData.Store(time.Now().UnixNano())
	s.hub.add(c)
	c.timer = time.AfterFunc(c.nextTick(time.Now()), c.tick)
	if s.shuttingDown() { // Shutdown began after this handshake did
		c.closeWith(websocket.StatusGoingAway, "server shutting down")
	}

	reason := c.readLoop()

	c.timer.Stop()
	c.mu.Lock()
	c.closed = true
	if c.reason != "" {
		reason = c.reason
	}
	closing := c.closing
	c.mu.Unlock()
	s.hub.remove(id)
	if closing != nil {
		<-closing // the closing handshake, bounded by forceCloseAfter
	} else {
		_ = ws.CloseNow()
	}
	_ = s.gw.Disconnect(context.Background(), id, reason)
}

// begin counts a handshake in; it reports false once Shutdown has begun.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.live++
	return true
}

// end counts a finished connection (or refused handshake) out.
func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live--
	if s.live == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown closes every connection with 1001, waits until each disconnect
// is recorded or ctx ends, and refuses new connections meanwhile. Call it
// before [net/http.Server.Shutdown], which does not track WebSockets.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.live == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	for _, c := range s.hub.all() {
		c.closeWith(websocket.StatusGoingAway, "server shutting down")
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serveStatic serves the embedded dev console and client.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	if s.opts.Static == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	if strings.Contains(name, "/") {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if _, err := fs.Stat(s.opts.Static, name); err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.opts.Static, name)
}

func (s *Server) serveDevTokens(w http.ResponseWriter, r *http.Request) {
	ip, err := netip.ParseAddrPort(r.RemoteAddr)
	if s.opts.DevTokens == nil || err != nil || !ip.Addr().IsLoopback() {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	user, admin := s.opts.DevTokens()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"user": user, "admin": admin})
}
