package memory_test

import (
	"testing"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
	"github.com/wsgate/wsgate/infra/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store { return memory.New() })
}
