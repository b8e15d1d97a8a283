package httpadapter

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/core"
)

// wsConn is one WebSocket connection held by this server. Its read loop runs
// on the HTTP handler's goroutine; a writer goroutine exists only while
// frames from other goroutines are queued, so an idle connection costs one
// goroutine and one timer.
type wsConn struct {
	srv  *Server
	ws   *websocket.Conn
	raw  net.Conn // the hijacked socket, to force a close that cannot wait
	sess *core.Session
	ua   string
	// start is when the connection opened, on the system clock (the
	// gateway's clock may be a test's fake).
	start time.Time

	lastData atomic.Int64 // unix nanoseconds of the last inbound data message

	mu      sync.Mutex
	queue   [][]byte
	writing bool
	closed  bool
	reason  string        // why the server closed it, for the log
	closing chan struct{} // closed once a closeWith handshake has ended

	timer *time.Timer
}

// enqueue hands a frame from another goroutine (fan-out, `@connections`)
// to the connection without blocking. A connection whose queue is full is
// closed with 1008; enqueue then reports it gone.
func (c *wsConn) enqueue(frame []byte) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return core.ErrGone
	}
	if len(c.queue) >= c.srv.opts.MaxQueuedFrames {
		c.mu.Unlock()
		c.closeWith(websocket.StatusPolicyViolation, "outbound queue full")
		return core.ErrGone
	}
	c.queue = append(c.queue, frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.drain()
	}
	return nil
}

// reply writes a frame from the read loop: inline when nothing is queued,
// which keeps the one-in-one-out hot path free of goroutine hand-offs.
func (c *wsConn) reply(frame []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.writing {
		if len(c.queue) >= c.srv.opts.MaxQueuedFrames {
			c.mu.Unlock()
			c.closeWith(websocket.StatusPolicyViolation, "outbound queue full")
			return
		}
		c.queue = append(c.queue, frame)
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.mu.Unlock()
	if err := c.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
		c.fail()
		return
	}
	c.drain()
}

// drain writes queued frames until the queue is empty.
func (c *wsConn) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.queue = nil
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, f := range batch {
			if err := c.ws.Write(context.Background(), websocket.MessageText, f); err != nil {
				c.fail()
				return
			}
		}
	}
}

// fail marks the connection closed after a write error.
func (c *wsConn) fail() {
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.writing = false
	c.mu.Unlock()
	_ = c.ws.CloseNow()
}

// closeWith closes the connection with a status, once. A peer that does not
// complete the closing handshake within forceCloseAfter has its socket closed.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.reason = reason
	c.queue = nil
	done := make(chan struct{})
	c.closing = done
	c.mu.Unlock()
	go func() {
		defer close(done)
		force := time.AfterFunc(forceCloseAfter, func() { _ = c.raw.Close() })
		defer force.Stop()
		_ = c.ws.Close(code, reason)
	}()
}

// forceCloseAfter bounds how long a closing handshake may take.
const forceCloseAfter = 2 * time.Second

// tick runs the connection's one timer: protocol pings to find dead peers,
// the idle timeout and the maximum connection age, as API Gateway applies
// them.
func (c *wsConn) tick() {
	o := &c.srv.opts
	now := time.Now()
	age := now.Sub(c.start)
	if o.MaxConnectionAge > 0 && age >= o.MaxConnectionAge {
		c.closeWith(websocket.StatusGoingAway, "connection age limit reached")
		return
	}
	idle := now.Sub(time.Unix(0, c.lastData.Load()))
	if o.IdleTimeout > 0 && idle >= o.IdleTimeout {
		c.closeWith(websocket.StatusGoingAway, "idle timeout")
		return
	}
	if o.PingInterval > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), o.PingInterval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			c.mu.Lock()
			if c.reason == "" {
				c.reason = "no pong"
			}
			c.mu.Unlock()
			_ = c.ws.CloseNow()
			return
		}
	}
	c.timer.Reset(c.nextTick(time.Now()))
}

// nextTick is the time until the earliest of the next ping, the idle
// deadline and the age deadline.
func (c *wsConn) nextTick(now time.Time) time.Duration {
	o := &c.srv.opts
	next := time.Duration(1<<63 - 1)
	if o.PingInterval > 0 {
		next = o.PingInterval
	}
	if o.IdleTimeout > 0 {
		next = min(next, time.Unix(0, c.lastData.Load()).Add(o.IdleTimeout).Sub(now))
	}
	if o.MaxConnectionAge > 0 {
		next = min(next, c.start.Add(o.MaxConnectionAge).Sub(now))
	}
	return max(next, time.Millisecond)
}

// readLoop handles inbound messages until the connection ends and returns a
// reason for the log.
func (c *wsConn) readLoop() string {
	ctx := context.Background()
	limit := c.srv.opts.MaxMessageBytes
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			if protocolError(err) {
				// coder/websocket answers most violations with 1002 itself;
				// this covers those it drops silently (an unmasked frame).
				c.closeWith(websocket.StatusProtocolError, "protocol error")
			}
			return closeReason(err)
		}
		if typ != websocket.MessageText {
			c.srv.gw.Discarded(ctx)
			c.closeWith(websocket.StatusUnsupportedData, "binary messages are not supported")
			return "binary message"
		}
		buf := getBuf()
		n, err := readAll(r, buf, limit)
		if err != nil {
			putBuf(buf)
			if errors.Is(err, errTooBig) {
				c.srv.gw.Discarded(ctx)
				c.closeWith(websocket.StatusMessageTooBig, "message too big")
				return "message too big"
			}
			return closeReason(err)
		}
		c.lastData.Store(time.Now().UnixNano())
		reply := c.srv.gw.Message(ctx, c.sess, (*buf)[:n])
		putBuf(buf)
		c.reply(reply)
	}
}

// errTooBig is a message over the size limit.
var errTooBig = errors.New("message too big")

// readAll reads a message into *buf, growing it as needed, and fails with
// errTooBig as soon as byte limit+1 arrives.
func readAll(r io.Reader, buf *[]byte, limit int) (int, error) {
	b := (*buf)[:cap(*buf)]
	n := 0
	for {
		if n == len(b) {
			nb := make([]byte, min(max(2*len(b), 512), limit+1))
			copy(nb, b[:n])
			b = nb
			*buf = nb
		}
		m, err := r.Read(b[n:])
		n += m
		if n > limit {
			return n, errTooBig
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		bufPool.Put(b)
	}
}

// protocolError reports a read error that is the peer breaking RFC 6455,
// rather than a close, the end of the stream or a failed socket.
func protocolError(err error) bool {
	var ne net.Error
	return websocket.CloseStatus(err) == -1 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.Is(err, net.ErrClosed) && !errors.As(err, &ne)
}

func closeReason(err error) string {
	if s := websocket.CloseStatus(err); s != -1 {
		return "client closed: " + s.String()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return "connection closed"
	}
	return "read error"
}

// hijackCapture records the socket coder/websocket hijacks, so that a close
// that must not wait can close it.
type hijackCapture struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack implements [net/http.Hijacker], recording the socket.
func (h *hijackCapture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, rw, err
}

// Unwrap gives [net/http.ResponseController] the wrapped writer.
func (h *hijackCapture) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// hub is the registry of this server's connections. It is the gateway's
// [core.Sender]: targets held here are delivered in process, the rest through
// the remote sender.
type hub struct {
	endpoint string
	remote   core.Sender

	mu    sync.RWMutex
	conns map[string]*wsConn
}

var (
	_ core.Sender = (*hub)(nil)
	_ core.Inline = (*hub)(nil)
)

func (h *hub) add(c *wsConn) {
	h.mu.Lock()
	h.conns[c.sess.Conn.ID] = c
	h.mu.Unlock()
}

func (h *hub) remove(id string) {
	h.mu.Lock()
	delete(h.conns, id)
	h.mu.Unlock()
}

func (h *hub) get(id string) (*wsConn, bool) {
	h.mu.RLock()
	c, ok := h.conns[id]
	h.mu.RUnlock()
	return c, ok
}

func (h *hub) all() []*wsConn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*wsConn, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c)
	}
	return out
}

// Holds implements [core.Inline].
func (h *hub) Holds(t core.Target) bool { return t.Endpoint == h.endpoint }

// Send implements [core.Sender].
func (h *hub) Send(ctx context.Context, t core.Target, frame []byte) error {
	if t.Endpoint != h.endpoint {
		if h.remote == nil {
			return core.ErrGone
		}
		return h.remote.Send(ctx, t, frame)
	}
	c, ok := h.get(t.ID)
	if !ok {
		return core.ErrGone
	}
	return c.enqueue(frame)
}
