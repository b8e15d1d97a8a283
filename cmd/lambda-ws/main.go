// Command lambda-ws is the Lambda behind an API Gateway WebSocket API's
// `$connect`, `$disconnect` and `$default` routes. It reads its WSGATE_*
// settings once per cold start and always uses the DynamoDB store. Build it
// as `bootstrap` for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./cmd/lambda-ws
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/adapters/lambda/coldstart"
)

func main() {
	env, err := coldstart.Load(context.Background(), os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: %v\n", err)
		os.Exit(2)
	}
	h, err := lambdaadapter.NewWebSocket(env.Config, env.Options)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: %v\n", err)
		os.Exit(2)
	}
	lambda.Start(h.Handle)
}
