package dynamodb_test

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/infra/storetest"
)

// TestConformance runs the store suite against dynalite, counting directly
// (as a Lambda does) and batching counts (as a local server does).
func TestConformance(t *testing.T) {
	t.Run("Direct", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) core.Store { return newStore(t, dynamodb.Options{}) })
	})
	t.Run("Batched", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) core.Store {
			return newStore(t, dynamodb.Options{FlushInterval: time.Hour}) // only Snapshot and Close flush
		})
	})
}
