package httpadapter

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/internal/adminapi"
)

// maxAdminBody bounds `@connections` bodies (API Gateway's own
// PostToConnection limit is 128 KiB).
const maxAdminBody = adminapi.MaxBody

// write sends a response built by adminapi, whose JSON bodies every
// endpoint of this server shares.
func write(w http.ResponseWriter, resp adminapi.Response) {
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", adminapi.ContentType)
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

func writeJSON(w http.ResponseWriter, status int, v any) { write(w, adminapi.JSON(status, v)) }

func writeError(w http.ResponseWriter, status int, code, msg string) {
	write(w, adminapi.Error(status, code, msg))
}

// admin wraps an admin handler: a bearer token from the Authorization header
// only, the admin claim required.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if resp, ok := s.adminAPI.Authorize(r.Context(), r.Header.Get("Authorization")); !ok {
			write(w, resp)
			return
		}
		next(w, r)
	}
}

// bodyTimeout bounds how long a client may take to send an admin request's
// body, so that a slow sender cannot hold a handler forever.
const bodyTimeout = 10 * time.Second

// readBody reads at most limit bytes of the request body within bodyTimeout.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	return io.ReadAll(io.LimitReader(r.Body, limit))
}

// serveAdmin hands the admin API's routes to adminapi, which the admin
// Lambda serves too, so that the two cannot drift.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, adminapi.MaxBody+1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body could not be read")
		return
	}
	write(w, s.adminAPI.Serve(r.Context(), adminapi.Request{
		Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body,
	}))
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", methods[0])
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	return false
}

// connectionInfo is API Gateway's GetConnection answer.
type connectionInfo struct {
	ConnectedAt  string `json:"connectedAt"`
	LastActiveAt string `json:"lastActiveAt"`
	Identity     struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent,omitempty"`
	} `json:"identity"`
}

// serveConnections is API Gateway's management API for this server's
// connections: POST sends the body as one text frame, GET describes the
// connection, DELETE closes it.
func (s *Server) serveConnections(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost, http.MethodGet, http.MethodDelete) {
		return
	}
	c, ok := s.hub.get(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusGone, map[string]string{"message": "connection gone", "error": "gone"})
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, err := readBody(w, r, maxAdminBody+1)
		if err == nil && len(body) > maxAdminBody {
			err = errors.New("body too large")
		}
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "body too large")
			return
		}
		if !utf8.Valid(body) {
			writeError(w, http.StatusBadRequest, "bad_request", "body must be UTF-8 text")
			return
		}
		if err := c.enqueue(body); err != nil {
			writeJSON(w, http.StatusGone, map[string]string{"message": "connection gone", "error": "gone"})
			return
		}
		if r.Header.Get(core.CountedHeader) == "" { // a peer's fan-out counted it already
			if err := s.gw.Delivered(r.Context(), 1); err != nil {
				s.log.Error("sent message not counted", slog.String("error", err.Error()))
			}
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		var info connectionInfo
		info.ConnectedAt = c.sess.Conn.ConnectedAt.UTC().Format(time.RFC3339Nano)
		info.LastActiveAt = time.Unix(0, c.lastData.Load()).UTC().Format(time.RFC3339Nano)
		info.Identity.SourceIP = c.sess.Conn.IP
		info.Identity.UserAgent = c.ua
		writeJSON(w, http.StatusOK, info)
	case http.MethodDelete:
		c.closeWith(1000, "closed by the application")
		w.WriteHeader(http.StatusNoContent)
	}
}
