package core_test

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// discard is a Sender for an example without subscribers.
type discard struct{}

func (discard) Send(context.Context, core.Target, []byte) error { return nil }

// A transport calls Connect at the handshake, Message for every inbound data
// message (delivering the reply it returns), and Disconnect at the end.
func ExampleGateway_Message() {
	key := []byte("example-secret-0123456789abcdef!")
	auth, _ := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return key, nil },
		Methods: []string{"HS256"},
	})
	gw, _ := core.New(core.Config{Auth: auth, Store: memory.New(), Sender: discard{}, MaxMessagesPerMinute: 60})

	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(time.Minute).Unix(),
	}).SignedString(key)
	ctx := context.Background()
	sess, err := gw.Connect(ctx, core.ConnectRequest{ID: "conn-1", Token: tok, IP: "192.0.2.1"})
	if err != nil {
		fmt.Println(core.RefusalFor(err).Code)
		return
	}
	fmt.Println(string(gw.Message(ctx, sess, []byte(`{"type":"ping","id":7}`))))
	fmt.Println(string(gw.Message(ctx, sess, []byte(`{"type":"whoami"}`))))
	fmt.Println(string(gw.Message(ctx, sess, []byte(`{"type":"subscribe","channel":"user:bob"}`))))
	_ = gw.Disconnect(ctx, sess.Conn.ID, "client closed")
	// Output:
	// {"type":"pong","id":7}
	// {"type":"whoami","connection_id":"conn-1","user":"alice"}
	// {"type":"error","code":"forbidden","message":"not allowed"}
}
