package lambdaadapter_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/adapters/lambda/coldstart"
)

// The WebSocket function's main: configuration and clients are built once
// per cold start, then every event goes to Handle.
func ExampleNewWebSocket() {
	env, err := coldstart.Load(context.Background(), os.Getenv, os.Stderr)
	if err != nil {
		log.Fatal(err) // a bad WSGATE_* setting, named
	}
	h, err := lambdaadapter.NewWebSocket(env.Config, env.Options)
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h.Handle)
}

// The admin function's main, behind an HTTP API with payload format 2.0.
func ExampleNewAdmin() {
	env, err := coldstart.Load(context.Background(), os.Getenv, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	h, err := lambdaadapter.NewAdmin(env.Config, env.Logger)
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h.Handle)
}

// What a refused $connect answers: API Gateway hands status and body to
// the client as the handshake's response.
func ExampleWebSocket_Handle() {
	e := newExampleHandler()
	resp, _ := e.Handle(context.Background(), exampleConnect("no-token="))
	fmt.Println(resp.StatusCode, resp.Body)
	// Output: 401 {"error":"unauthorized","message":"missing or invalid token"}
}
