package httpadapter_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// The server is an http.Handler: mount it in any Go server, here beside an
// application route.
func ExampleNew() {
	secret := []byte("example-secret-0123456789abcdef!")
	auth, _ := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return secret, nil },
		Methods: []string{"HS256"},
	})
	gw, err := httpadapter.New(core.Config{
		Auth: auth, Store: memory.New(), MaxConnectionsPerIP: 5, MaxMessagesPerMinute: 60,
		Logger: slog.New(slog.DiscardHandler),
	}, httpadapter.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/", gw) // /ws, the admin API, @connections, /healthz
	mux.HandleFunc("/app/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hi") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(time.Minute).Unix(),
	}).SignedString(secret)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?token="+tok, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":1}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	// Output: {"type":"pong","id":1}
}
