// Command lambda-admin is the Lambda behind an HTTP API (payload format
// 2.0) serving wsgate's admin API: the metrics, the active connection count
// and POST /api/publish, for tokens with the admin claim. It reads its
// WSGATE_* settings once per cold start and always uses the DynamoDB store.
// Build it as `bootstrap` for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./cmd/lambda-admin
package main

import (
	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/adapters/lambda/coldstart"
)

func main() {
	coldstart.Main(func(env *coldstart.Env) (any, error) {
		h, err := lambdaadapter.NewAdmin(env.Config, env.Logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
