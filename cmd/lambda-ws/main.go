// Command lambda-ws is the Lambda behind an API Gateway WebSocket API's
// `$connect`, `$disconnect` and `$default` routes. It reads its WSGATE_*
// settings once per cold start and always uses the DynamoDB store. Build it
// as `bootstrap` for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./cmd/lambda-ws
package main

import (
	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/adapters/lambda/coldstart"
)

func main() {
	coldstart.Main(func(env *coldstart.Env) (any, error) {
		h, err := lambdaadapter.NewWebSocket(env.Config, env.Options)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
