package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/delivery"
	ddbstore "github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/infra/memory"
	"github.com/wsgate/wsgate/internal/settings"
)

// openStore opens the configured store. It returns the endpoint recorded
// with each connection (where other instances reach this one) and the sender
// for connections held elsewhere.
func openStore(ctx context.Context, s settings.Settings, addr string, log *slog.Logger) (core.Store, func(), string, core.Sender, error) {
	if s.Store == "memory" {
		return memory.New(), func() {}, "", nil, nil
	}
	awsCfg, err := awsConfig(ctx, s, log)
	if err != nil {
		return nil, nil, "", nil, err
	}
	client := ddbstore.NewClient(awsCfg, s.DynamoDBEndpoint)
	st, err := ddbstore.New(ctx, ddbstore.Options{
		Client:        client,
		Table:         s.Table,
		Shards:        s.CounterShards,
		FlushInterval: time.Second,
		Logger:        log,
	})
	if err != nil {
		return nil, nil, "", nil, fmt.Errorf("WSGATE_TABLE: %w", err)
	}
	go ensureTable(ctx, client, s.Table, log)

	endpoint := s.AdvertiseURL
	if endpoint == "" {
		endpoint = "http://" + addr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				log.Warn("WSGATE_ADVERTISE_URL is not set and the server listens on every address: other instances cannot reach "+endpoint+"; set WSGATE_ADVERTISE_URL to this instance's reachable URL",
					slog.String("advertised", endpoint))
			}
		}
	}
	if s.JWTSecret == "" {
		log.Warn("no WSGATE_JWT_SECRET: other local servers on this table cannot be reached for fan-out (they authenticate with the shared secret)")
	}
	remote, err := delivery.New(delivery.Options{
		Secret:             []byte(s.JWTSecret),
		AdminClaim:         s.AdminClaim,
		AWS:                awsCfg,
		APIGatewayEndpoint: s.APIGWEndpoint,
	})
	if err != nil {
		return nil, nil, "", nil, fmt.Errorf("WSGATE_ADMIN_CLAIM: %w", err)
	}
	closeStore := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Close(cctx); err != nil {
			log.Error("counts not written at exit", slog.String("error", err.Error()))
		}
	}
	return st, closeStore, endpoint, remote, nil
}

// awsConfig loads the SDK's default chain. Against a local DynamoDB
// (WSGATE_DYNAMODB_ENDPOINT) with no region or credentials configured, it
// uses us-east-1 and placeholder credentials, which local servers accept,
// and says so.
func awsConfig(ctx context.Context, s settings.Settings, log *slog.Logger) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("WSGATE_STORE: loading AWS configuration: %w", err)
	}
	if s.DynamoDBEndpoint == "" {
		return cfg, nil
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
		log.Info("local DynamoDB: no AWS region configured, using us-east-1")
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
		log.Info("local DynamoDB: no AWS credentials configured, using placeholder credentials")
	}
	return cfg, nil
}

// ensureTable creates the table if it is missing, retrying while DynamoDB
// cannot be reached; meanwhile connects are refused with 503.
func ensureTable(ctx context.Context, client ddbstore.TableAPI, table string, log *slog.Logger) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ttl, err := ddbstore.CreateTable(cctx, client, table)
		cancel()
		if err == nil {
			if !ttl {
				log.Warn("DynamoDB TTL could not be enabled on this store: expired items stay until deleted (reads ignore them)", slog.String("table", table))
			}
			log.Info("DynamoDB table ready", slog.String("table", table))
			return
		}
		log.Error("DynamoDB table not ready; connections are refused (503) until it is", slog.String("table", table), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
