package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// TableAPI is the part of the DynamoDB client [CreateTable] uses;
// *dynamodb.Client implements it.
type TableAPI interface {
	CreateTable(ctx context.Context, in *ddb.CreateTableInput, opts ...func(*ddb.Options)) (*ddb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *ddb.DescribeTableInput, opts ...func(*ddb.Options)) (*ddb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *ddb.DescribeTimeToLiveInput, opts ...func(*ddb.Options)) (*ddb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *ddb.UpdateTimeToLiveInput, opts ...func(*ddb.Options)) (*ddb.UpdateTimeToLiveOutput, error)
}

var _ TableAPI = (*ddb.Client)(nil)

// TableSpec is the one definition of the table: its keys, the "active"
// index and on-demand billing. TTL, which CreateTable cannot set, is on
// attribute [TTLAttribute]. template.yaml must declare the same.
func TableSpec(table string) *ddb.CreateTableInput {
	return &ddb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrActiveShard), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrConnectedAt), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(ActiveIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrActiveShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrConnectedAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
		BillingMode: types.BillingModePayPerRequest,
	}
}

// CreateTable creates table as [TableSpec] defines it unless it exists,
// waits until it is active and enables TTL on [TTLAttribute]. It reports
// whether TTL is enabled: a server without the TTL API (dynalite) gives
// ttl false and a nil error, which deserves a warning, not a failure, since
// the store never relies on TTL. An existing table without the "active"
// index is an error.
func CreateTable(ctx context.Context, client TableAPI, table string) (ttl bool, err error) {
	desc, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: &table})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		if _, err := client.CreateTable(ctx, TableSpec(table)); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) { // in use: another instance is creating it
				return false, fmt.Errorf("dynamodb: create table %s: %w", table, err)
			}
		}
		if desc, err = waitActive(ctx, client, table); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("dynamodb: describe table %s: %w", table, err)
	case desc.Table.TableStatus != types.TableStatusActive:
		if desc, err = waitActive(ctx, client, table); err != nil {
			return false, err
		}
	}
	if !slices.ContainsFunc(desc.Table.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
		return aws.ToString(g.IndexName) == ActiveIndex
	}) {
		return false, fmt.Errorf("dynamodb: table %s has no %q index: it was not created by this version of wsgate", table, ActiveIndex)
	}
	return enableTTL(ctx, client, table)
}

// waitActive polls until table is active, within ctx.
func waitActive(ctx context.Context, client TableAPI, table string) (*ddb.DescribeTableOutput, error) {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		desc, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: &table})
		if err == nil && desc.Table.TableStatus == types.TableStatusActive {
			return desc, nil
		}
		var missing *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &missing) {
			return nil, fmt.Errorf("dynamodb: describe table %s: %w", table, err)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("dynamodb: table %s not active: %w", table, err)
		}
	}
}

// enableTTL turns TTL on unless it is on; a server without the TTL API
// gives false and no error.
func enableTTL(ctx context.Context, client TableAPI, table string) (bool, error) {
	desc, err := client.DescribeTimeToLive(ctx, &ddb.DescribeTimeToLiveInput{TableName: &table})
	if unsupported(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dynamodb: describe TTL of %s: %w", table, err)
	}
	if d := desc.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == TTLAttribute &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return true, nil
	}
	_, err = client.UpdateTimeToLive(ctx, &ddb.UpdateTimeToLiveInput{
		TableName:               &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	if unsupported(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dynamodb: enable TTL on %s: %w", table, err)
	}
	return true, nil
}

// unsupported reports whether err says the server lacks the operation.
func unsupported(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "UnknownOperationException"
}
