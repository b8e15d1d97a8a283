package dynamodb_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/wsgate/wsgate/infra/dynamodb"
)

// A local server opens the store on a local DynamoDB, creating the table
// when it is missing, and batches its counts.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx) // credentials and region from the SDK's chain
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewClient(cfg, "http://127.0.0.1:8000")
	ttl, err := dynamodb.CreateTable(ctx, client, "wsgate")
	if err != nil {
		log.Fatal(err)
	}
	if !ttl {
		slog.Warn("this DynamoDB cannot enable TTL: old items are never deleted (reads ignore them)")
	}
	store, err := dynamodb.New(ctx, dynamodb.Options{Client: client, Table: "wsgate", FlushInterval: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(ctx) // writes the counts still in memory
	// core.New(core.Config{Store: store, ...})
}
