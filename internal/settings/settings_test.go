package settings

import (
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	s, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:8080" || s.MaxConnectionsPerIP != 5 || s.MaxConnectsPerHour != 10 ||
		s.MaxMessagesPerMinute != 60 || s.MaxMessageBytes != 32768 || s.MaxConnectionAge != 2*time.Hour ||
		s.IdleTimeout != 10*time.Minute || s.PingInterval != 30*time.Second || s.Store != "memory" ||
		s.Table != "wsgate" || !s.ClientPublish || s.AdminClaim != "is_staff" || s.HasKey() {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestBadSettings(t *testing.T) {
	tests := []struct {
		env     map[string]string
		wantVar string
	}{
		{map[string]string{"WSGATE_STORE": "redis"}, "WSGATE_STORE"},
		{map[string]string{"WSGATE_TRUSTED_PROXIES": "10.0.0.0/33"}, "WSGATE_TRUSTED_PROXIES"},
		{map[string]string{"WSGATE_TRUSTED_PROXIES": "10.0.0.0/8,banana"}, "WSGATE_TRUSTED_PROXIES"},
		{map[string]string{"WSGATE_MAX_CONNECTIONS_PER_IP": "-1"}, "WSGATE_MAX_CONNECTIONS_PER_IP"},
		{map[string]string{"WSGATE_MAX_CONNECTS_PER_HOUR": "ten"}, "WSGATE_MAX_CONNECTS_PER_HOUR"},
		{map[string]string{"WSGATE_MAX_MESSAGES_PER_MINUTE": "1.5"}, "WSGATE_MAX_MESSAGES_PER_MINUTE"},
		{map[string]string{"WSGATE_MAX_MESSAGE_BYTES": "0"}, "WSGATE_MAX_MESSAGE_BYTES"},
		{map[string]string{"WSGATE_MAX_CONNECTION_AGE": "2"}, "WSGATE_MAX_CONNECTION_AGE"},
		{map[string]string{"WSGATE_IDLE_TIMEOUT": "-5m"}, "WSGATE_IDLE_TIMEOUT"},
		{map[string]string{"WSGATE_PING_INTERVAL": "soon"}, "WSGATE_PING_INTERVAL"},
		{map[string]string{"WSGATE_CLIENT_PUBLISH": "maybe"}, "WSGATE_CLIENT_PUBLISH"},
		{map[string]string{"WSGATE_DYNAMODB_ENDPOINT": "localhost:8000"}, "WSGATE_DYNAMODB_ENDPOINT"},
		{map[string]string{"WSGATE_ADVERTISE_URL": "ftp://x"}, "WSGATE_ADVERTISE_URL"},
		{map[string]string{"WSGATE_JWKS_URL": "http://keys.example.com/jwks.json"}, "WSGATE_JWKS_URL"},
		{map[string]string{"WSGATE_JWT_SECRET": "s", "WSGATE_JWKS_URL": "https://x/jwks"}, "WSGATE_JWT_SECRET"},
		{map[string]string{"WSGATE_ADMIN_CLAIM": "=yes"}, "WSGATE_ADMIN_CLAIM"},
		{map[string]string{"WSGATE_ALLOWED_ORIGINS": "https://app.example.com/path"}, "WSGATE_ALLOWED_ORIGINS"},
		{map[string]string{"WSGATE_COUNTER_SHARDS": "0"}, "WSGATE_COUNTER_SHARDS"},
	}
	for _, tc := range tests {
		_, err := Load(nil, env(tc.env))
		var se *Error
		if !errors.As(err, &se) || se.Var != tc.wantVar || !strings.HasPrefix(err.Error(), tc.wantVar+": ") {
			t.Errorf("env %v: error %v, want one naming %s", tc.env, err, tc.wantVar)
		}
	}
}

func TestFlagsWin(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := Register(fs)
	if err := fs.Parse([]string{"-max-connections-per-ip", "9", "-store", "dynamodb"}); err != nil {
		t.Fatal(err)
	}
	s, err := Load(flags(), env(map[string]string{"WSGATE_MAX_CONNECTIONS_PER_IP": "3", "WSGATE_TABLE": "t1"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxConnectionsPerIP != 9 || s.Store != "dynamodb" || s.Table != "t1" {
		t.Fatalf("flags over env: %+v", s)
	}
	// A bad value given as a flag still names the variable.
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	flags = Register(fs)
	_ = fs.Parse([]string{"-trusted-proxies", "nope"})
	if _, err := Load(flags(), env(nil)); err == nil || !strings.HasPrefix(err.Error(), "WSGATE_TRUSTED_PROXIES") {
		t.Fatalf("bad flag: %v", err)
	}
}

func TestLists(t *testing.T) {
	s, err := Load(nil, env(map[string]string{
		"WSGATE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,::1",
		"WSGATE_ALLOWED_ORIGINS": "app.example.com, *.example.org",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.TrustedProxies) != 3 || s.TrustedProxies[1].String() != "192.168.1.7/32" || len(s.AllowedOrigins) != 2 {
		t.Fatalf("lists: %v %v", s.TrustedProxies, s.AllowedOrigins)
	}
}

func TestPublicKeys(t *testing.T) {
	for _, tc := range []struct {
		file    string
		methods string
	}{
		{"testdata/rsa.pub.pem", "RS256"},
		{"testdata/ec256.pub.pem", "ES256"},
		{"testdata/ed25519.pub.pem", "EdDSA"},
	} {
		s, err := Load(nil, env(map[string]string{"WSGATE_JWT_PUBLIC_KEY": tc.file}))
		if err != nil {
			t.Fatal(err)
		}
		_, methods, err := s.Key(t.Context())
		if err != nil || methods[0] != tc.methods {
			t.Errorf("%s: methods %v err %v", tc.file, methods, err)
		}
	}
	// Inline PEM text, with real newlines or with \n escapes on one line.
	pemBytes, err := os.ReadFile("testdata/ec256.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{string(pemBytes), strings.ReplaceAll(strings.TrimSpace(string(pemBytes)), "\n", `\n`)} {
		s, err := Load(nil, env(map[string]string{"WSGATE_JWT_PUBLIC_KEY": text}))
		if err != nil {
			t.Fatal(err)
		}
		if _, methods, err := s.Key(t.Context()); err != nil || methods[0] != "ES256" {
			t.Errorf("inline PEM %q: %v %v", text[:40], methods, err)
		}
	}
	s, _ := Load(nil, env(map[string]string{"WSGATE_JWT_PUBLIC_KEY": "testdata/missing.pem"}))
	if _, _, err := s.Key(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "WSGATE_JWT_PUBLIC_KEY") {
		t.Fatalf("missing key file: %v", err)
	}
	if Secret("hunter2").String() != "[REDACTED]" {
		t.Fatal("secret prints itself")
	}
}
