package httpadapter

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/core"
)

// maxAdminBody bounds admin request bodies (API Gateway's own
// PostToConnection limit is 128 KiB).
const maxAdminBody = 128 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"response could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// admin wraps an admin handler: a bearer token from the Authorization header
// only, the admin claim required.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, _ := bearer(r.Header.Get("Authorization"))
		id, err := s.gw.Authenticate(r.Context(), tok)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", "an admin bearer token is required")
			return
		}
		if !id.Admin {
			writeError(w, http.StatusForbidden, "forbidden", "admin only")
			return
		}
		next(w, r)
	}
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

func (s *Server) storeError(w http.ResponseWriter, err error) {
	ref := core.RefusalFor(err)
	if ref.Status == http.StatusServiceUnavailable {
		s.log.Error("admin request failed", slog.String("error", err.Error()))
	}
	writeError(w, ref.Status, ref.Code, ref.Message)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	m, err := s.gw.Metrics(r.Context())
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) serveActive(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	m, err := s.gw.Metrics(r.Context())
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"active_connections": m.ActiveConnections})
}

// publishRequest is the body of POST /api/publish.
type publishRequest struct {
	Channel *string         `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (s *Server) servePublish(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "body could not be read")
		return
	}
	req, msg := parsePublish(body)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	n, err := s.gw.Publish(r.Context(), *req.Channel, req.Data)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"delivered": n})
}

// parsePublish checks a publish body; msg is non-empty when it is bad.
func parsePublish(body []byte) (publishRequest, string) {
	var req publishRequest
	if len(body) == 0 || firstByte(body) != '{' {
		return req, `body must be a JSON object {"channel":C,"data":ANY}`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, `body must be a JSON object {"channel":C,"data":ANY}`
	}
	if req.Channel == nil || !core.ValidChannel(*req.Channel) {
		return req, "channel must match ^[A-Za-z0-9_.:-]{1,128}$"
	}
	if len(req.Data) == 0 {
		return req, "data is required"
	}
	return req, ""
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
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
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "body too large")
			return
		}
		if !utf8Valid(body) {
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
