package adminapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
	"github.com/wsgate/wsgate/internal/adminapi"
)

var secret = []byte("adminapi-test-secret-at-least-32-bytes")

func tok(t *testing.T, admin bool) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}
	if admin {
		claims["is_staff"] = true
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type nopSender struct{}

func (nopSender) Send(context.Context, core.Target, []byte) error { return nil }

// TestServeOrder: path, then token, then method, then body: what each
// failing check answers, and that every listed path is served.
func TestServeOrder(t *testing.T) {
	t.Parallel()
	auth, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return secret, nil },
		Methods: []string{"HS256"},
	})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := core.New(core.Config{Auth: auth, Store: memory.New(), Sender: nopSender{}})
	if err != nil {
		t.Fatal(err)
	}
	h := adminapi.New(gw, slog.New(slog.DiscardHandler))
	admin, user := "Bearer "+tok(t, true), "Bearer "+tok(t, false)
	big := `{"channel":"c","data":"` + strings.Repeat("x", adminapi.MaxBody) + `"}`
	cases := []struct {
		method, path, auth, body string
		status                   int
		code, allow              string
	}{
		{"GET", "/nope", "", "", 404, "not_found", ""},
		{"POST", "/api/publish", "", "{", 401, "unauthorized", ""},
		{"POST", "/api/publish", "Basic " + tok(t, true), "{", 401, "unauthorized", ""},
		{"GET", "/api/publish", user, "", 403, "forbidden", ""},
		{"GET", "/api/publish", admin, "", 405, "method_not_allowed", "POST"},
		{"DELETE", adminapi.MetricsPath, admin, "", 405, "method_not_allowed", "GET"},
		{"POST", "/api/publish", admin, big, 413, "bad_request", ""},
		{"POST", "/api/publish", admin, `{"channel":"c"}`, 400, "bad_request", ""},
		{"POST", "/api/publish", admin, `{"channel":"c","data":[1]}`, 200, "", ""},
	}
	for _, p := range adminapi.Paths {
		method := "GET"
		body := ""
		if p == adminapi.PublishPath {
			method, body = "POST", `{"channel":"c","data":1}`
		}
		cases = append(cases, struct {
			method, path, auth, body string
			status                   int
			code, allow              string
		}{method, p, admin, body, 200, "", ""})
	}
	for _, tc := range cases {
		r := h.Serve(context.Background(), adminapi.Request{Method: tc.method, Path: tc.path, Authorization: tc.auth, Body: []byte(tc.body)})
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil || r.Body[len(r.Body)-1] != '\n' {
			t.Errorf("%s %s: body %q is not one JSON line", tc.method, tc.path, r.Body)
			continue
		}
		if r.Status != tc.status || (tc.code != "" && body["error"] != tc.code) || r.Header["Allow"] != tc.allow {
			t.Errorf("%s %s (%.12s…): %d %v %s, want %d %s Allow %q", tc.method, tc.path, tc.auth, r.Status, r.Header, r.Body, tc.status, tc.code, tc.allow)
		}
	}
}
