package coldstart_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/wsgate/wsgate/adapters/lambda/coldstart"
	"github.com/wsgate/wsgate/internal/settings"
)

// TestLoadNamesBadSetting: a Lambda with a missing or bad setting stops at
// its cold start with an error naming the variable, before any AWS call.
func TestLoadNamesBadSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "WSGATE_JWT_SECRET"}, // no key: Lambdas have no dev mode
		{map[string]string{"WSGATE_JWT_SECRET": "s", "WSGATE_MAX_CONNECTIONS_PER_IP": "-1"}, "WSGATE_MAX_CONNECTIONS_PER_IP"},
		{map[string]string{"WSGATE_JWT_SECRET": "s", "WSGATE_APIGW_ENDPOINT": "ftp://x"}, "WSGATE_APIGW_ENDPOINT"},
		{map[string]string{"WSGATE_JWT_SECRET": "s", "WSGATE_JWKS_URL": "https://x/jwks"}, "WSGATE_JWT_SECRET"}, // two key sources
	}
	for _, tc := range cases {
		_, err := coldstart.Load(context.Background(), func(k string) string { return tc.env[k] }, io.Discard)
		var se *settings.Error
		if !errors.As(err, &se) || se.Var != tc.want {
			t.Errorf("env %v: Load error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}

// TestLoadWires: the settings reach the gateway configuration and the
// handler options.
func TestLoadWires(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	env := map[string]string{
		"WSGATE_JWT_SECRET":              "secret",
		"WSGATE_MAX_CONNECTIONS_PER_IP":  "7",
		"WSGATE_MAX_CONNECTS_PER_HOUR":   "0",
		"WSGATE_MAX_MESSAGES_PER_MINUTE": "9",
		"WSGATE_MAX_MESSAGE_BYTES":       "1000",
		"WSGATE_MAX_CONNECTION_AGE":      "90m",
		"WSGATE_ALLOWED_ORIGINS":         "app.example.com, *.example.org",
		"WSGATE_CLIENT_PUBLISH":          "false",
		"WSGATE_APIGW_ENDPOINT":          "https://ws.example.com/prod/",
	}
	e, err := coldstart.Load(context.Background(), func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, o := e.Config, e.Options
	if c.Auth == nil || c.Store == nil || c.Sender == nil || c.MaxConnectionsPerIP != 7 || c.MaxConnectsPerHour != 0 ||
		c.MaxMessagesPerMinute != 9 || c.MaxConnectionAge.Minutes() != 90 || c.ClientPublish ||
		len(c.Origins.Hosts) != 2 || c.Origins.Hosts[1] != "*.example.org" {
		t.Errorf("config %+v", c)
	}
	if o.MaxMessageBytes != 1000 || o.APIGWEndpoint != "https://ws.example.com/prod" || e.Settings.Table != "wsgate" {
		t.Errorf("options %+v, table %q", o, e.Settings.Table)
	}
}
