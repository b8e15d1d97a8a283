// Package coldstart builds what a wsgate Lambda serves from its WSGATE_*
// environment, once per cold start: the settings (internal/settings, the
// same rules as the local server), the token verifier, the DynamoDB store
// (always: WSGATE_TABLE, WSGATE_DYNAMODB_ENDPOINT) and the API Gateway
// management API sender, with AWS credentials and region from the SDK's
// default chain. cmd/lambda-ws and cmd/lambda-admin call [Load] before
// lambda.Start, so clients are reused by every event a warm instance
// handles.
package coldstart

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/delivery"
	"github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/internal/settings"
)

// Env is a Lambda's configuration, built once.
type Env struct {
	// Settings are the parsed WSGATE_* settings.
	Settings settings.Settings
	// Config is the gateway configuration: verifier, DynamoDB store,
	// API Gateway sender, limits, origins.
	Config core.Config
	// Options configures the WebSocket handler.
	Options lambdaadapter.Options
	// Logger writes one JSON object per line.
	Logger *slog.Logger
}

// Load reads the settings through getenv and builds the clients. A bad
// setting gives a [*settings.Error] naming the variable. When
// WSGATE_DYNAMODB_ENDPOINT is set (a local DynamoDB, as under `sam local`)
// the table is created there if missing, as the local server does; on AWS
// the stack creates it.
func Load(ctx context.Context, getenv func(string) string, logOut io.Writer) (*Env, error) {
	s, err := settings.Load(nil, getenv)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	slog.SetDefault(log) // libraries that log (the JWKS refresher) write JSON lines too
	if s.Store != "dynamodb" && getenv("WSGATE_STORE") != "" {
		log.Warn("WSGATE_STORE is ignored: the Lambdas always use the DynamoDB store", slog.String("store", s.Store))
	}
	gwCfg, err := s.Gateway(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	client := dynamodb.NewClient(awsCfg, s.DynamoDBEndpoint)
	if s.DynamoDBEndpoint != "" {
		ttl, err := dynamodb.CreateTable(ctx, client, s.Table)
		if err != nil {
			return nil, &settings.Error{Var: "WSGATE_TABLE", Msg: err.Error()}
		}
		if !ttl {
			log.Warn("the DynamoDB endpoint has no TTL API: expired items stay until deleted", slog.String("endpoint", s.DynamoDBEndpoint))
		}
	}
	store, err := dynamodb.New(ctx, dynamodb.Options{Client: client, Table: s.Table, Shards: s.CounterShards, Logger: log})
	if err != nil {
		return nil, err
	}
	sender, err := delivery.New(delivery.Options{Secret: []byte(s.JWTSecret), AdminClaim: s.AdminClaim, AWS: awsCfg})
	if err != nil {
		return nil, err
	}
	gwCfg.Store, gwCfg.Sender, gwCfg.Logger = store, sender, log
	return &Env{
		Settings: s,
		Config:   gwCfg,
		Options: lambdaadapter.Options{
			APIGWEndpoint:   s.APIGWEndpoint,
			MaxMessageBytes: s.MaxMessageBytes,
			Logger:          log,
		},
		Logger: log,
	}, nil
}

// Main is a Lambda's main: it loads the environment once, builds the
// handler with newHandler and hands it to the Lambda runtime. A bad setting
// or a handler that cannot be built ends the process with status 2 and one
// line naming the problem.
func Main(newHandler func(*Env) (any, error)) {
	env, err := Load(context.Background(), os.Getenv, os.Stderr)
	if err == nil {
		var h any
		if h, err = newHandler(env); err == nil {
			lambda.Start(h)
			return
		}
	}
	fmt.Fprintf(os.Stderr, "wsgate: %v\n", err)
	os.Exit(2)
}
