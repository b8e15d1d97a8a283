package lambdatest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/delivery"
)

var quiet = slog.New(slog.DiscardHandler)

// testSecret is WSGATE_JWT_SECRET for every gateway in these tests.
const testSecret = "lambda-e2e-secret-at-least-32-bytes!"

// token signs an HS256 token for sub, valid for an hour; admin adds the
// default admin claim.
func token(t *testing.T, sub string, admin bool) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if admin {
		claims["is_staff"] = true
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hsAuth(t *testing.T) *core.Authenticator {
	t.Helper()
	a, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		Methods: []string{"HS256", "HS384", "HS512"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// canon re-encodes a JSON text with sorted keys, for comparisons.
func canon(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// field reads one top-level field of a JSON object text.
func field(t *testing.T, s, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not a JSON object: %q: %v", s, err)
	}
	return m[name]
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventFile reads events/name, replaces each placeholder as given, decodes
// it strictly into v (a field the real event type lacks fails the test, so
// the files keep the real shape) and applies mutate.
func eventFile[T any](t *testing.T, name string, replace map[string]string, mutate func(*T)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for from, to := range replace {
		if !strings.Contains(s, from) {
			t.Fatalf("events/%s has no placeholder %s", name, from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	if mutate != nil {
		mutate(&v)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// localServer is an adapters/http server on a loopback listener.
type localServer struct {
	url string
	srv *httpadapter.Server
}

// startLocalServer runs a local server with cfg (its Sender is the
// server's own), advertising its URL and delivering to API Gateway's
// connections through infra/delivery.
func startLocalServer(t *testing.T, cfg core.Config) *localServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	remote, err := delivery.New(delivery.Options{Secret: []byte(testSecret), AWS: testAWS()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpadapter.New(cfg, httpadapter.Options{Endpoint: url, Remote: remote, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	t.Cleanup(func() {
		_ = srv.Shutdown(tctx(t))
		ts.Close()
	})
	return &localServer{url: url, srv: srv}
}

// client is a WebSocket client of a local server.
type client struct {
	c *websocket.Conn
}

func (s *localServer) dial(t *testing.T, tok string) *client {
	t.Helper()
	c, resp, err := websocket.Dial(tctx(t), "ws"+strings.TrimPrefix(s.url, "http")+"/ws?token="+tok, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &client{c}
}

// request sends a frame and returns the next frame received.
func (c *client) request(t *testing.T, frame string) string {
	t.Helper()
	if err := c.c.Write(tctx(t), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("write: %v", err)
	}
	return c.read(t)
}

func (c *client) read(t *testing.T) string {
	t.Helper()
	ctx := tctx(t)
	_, b, err := c.c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// dialStatus tries to connect; on refusal it returns no client, and the
// handshake's status, body and response.
func (s *localServer) dialStatus(t *testing.T, rawQuery string, header http.Header, subprotocols []string) (*client, int, string, *http.Response) {
	t.Helper()
	c, resp, err := websocket.Dial(tctx(t), "ws"+strings.TrimPrefix(s.url, "http")+"/ws?"+rawQuery,
		&websocket.DialOptions{HTTPHeader: header, Subprotocols: subprotocols})
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
		return &client{c}, resp.StatusCode, "", resp
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	var body string
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		body = string(b)
	}
	return nil, resp.StatusCode, body, resp
}

// testAWS is the static configuration the tests and the bootstraps share.
func testAWS() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
}
