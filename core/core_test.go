package core_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
)

var secret = []byte("core-test-secret-0123456789abcdef")

func sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS384, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func auth(t *testing.T, cfg core.AuthConfig) *core.Authenticator {
	t.Helper()
	cfg.Keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
	cfg.Methods = []string{"HS256", "HS384", "HS512"}
	a, err := core.NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAdminClaim(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		setting string
		claims  jwt.MapClaims
		admin   bool
	}{
		{"", jwt.MapClaims{"is_staff": true}, true},
		{"", jwt.MapClaims{"is_staff": "true"}, false},
		{"", jwt.MapClaims{"is_staff": 1}, false},
		{"", jwt.MapClaims{}, false},
		{"admin", jwt.MapClaims{"admin": true, "is_staff": false}, true},
		{"role=admin", jwt.MapClaims{"role": "admin"}, true},
		{"role=admin", jwt.MapClaims{"role": "Admin"}, false},
		{"cognito:groups=admins", jwt.MapClaims{"cognito:groups": []any{"users", "admins"}}, true},
		{"cognito:groups=admins", jwt.MapClaims{"cognito:groups": []any{"users"}}, false},
		{"role=admin", jwt.MapClaims{"role": true}, false},
	}
	for _, tc := range tests {
		a := auth(t, core.AuthConfig{AdminClaim: tc.setting})
		tc.claims["sub"], tc.claims["exp"] = "u", exp
		id, err := a.Authenticate(context.Background(), sign(t, tc.claims))
		if err != nil || id.Admin != tc.admin || id.Subject != "u" {
			t.Errorf("setting %q claims %v: %+v %v, want admin=%v", tc.setting, tc.claims, id, err, tc.admin)
		}
	}
}

func TestIssuerAudienceLeeway(t *testing.T) {
	a := auth(t, core.AuthConfig{Issuer: "https://issuer", Audience: "wsgate"})
	now := time.Now()
	tests := []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"good", jwt.MapClaims{"iss": "https://issuer", "aud": "wsgate"}, true},
		{"audience list", jwt.MapClaims{"iss": "https://issuer", "aud": []any{"other", "wsgate"}}, true},
		{"wrong issuer", jwt.MapClaims{"iss": "https://evil", "aud": "wsgate"}, false},
		{"no audience", jwt.MapClaims{"iss": "https://issuer"}, false},
		{"expired 20s ago (leeway)", jwt.MapClaims{"iss": "https://issuer", "aud": "wsgate", "exp": now.Add(-20 * time.Second).Unix()}, true},
		{"expired 40s ago", jwt.MapClaims{"iss": "https://issuer", "aud": "wsgate", "exp": now.Add(-40 * time.Second).Unix()}, false},
		{"nbf in 20s (leeway)", jwt.MapClaims{"iss": "https://issuer", "aud": "wsgate", "nbf": now.Add(20 * time.Second).Unix()}, true},
		{"iat in 2m", jwt.MapClaims{"iss": "https://issuer", "aud": "wsgate", "iat": now.Add(2 * time.Minute).Unix()}, false},
		{"nbf as string", jwt.MapClaims{"iss": "https://issuer", "aud": "wsgate", "nbf": "0"}, false},
	}
	for _, tc := range tests {
		tc.claims["sub"] = "u"
		if _, ok := tc.claims["exp"]; !ok {
			tc.claims["exp"] = now.Add(time.Hour).Unix()
		}
		_, err := a.Authenticate(context.Background(), sign(t, tc.claims))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, core.ErrUnauthorized)) {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestOriginPolicy(t *testing.T) {
	p := core.OriginPolicy{Hosts: []string{"app.example.com", "*.example.org"}}
	tests := []struct {
		origin, host string
		ok           bool
	}{
		{"", "gw:8080", true},
		{"http://gw:8080", "gw:8080", true},
		{"http://GW:8080", "gw:8080", true},
		{"http://gw:9090", "gw:8080", false},
		{"https://app.example.com", "gw", true},
		{"https://app.example.com:444", "gw", true},
		{"https://x.example.org", "gw", true},
		{"https://example.org", "gw", false},
		{"https://evilexample.org", "gw", false},
		{"null", "gw", false},
		{"::garbage", "gw", false},
	}
	for _, tc := range tests {
		if got := p.Allowed(tc.origin, tc.host); got != tc.ok {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.ok)
		}
	}
	if !(core.OriginPolicy{Hosts: []string{"*"}}).Allowed("https://any.where", "gw") {
		t.Error(`"*" does not allow every origin`)
	}
}

func TestValidChannel(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "room.1": true, "user:alice": true, "A-b_c.d:e": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "a b": false, "a/b": false, "é": false, "a*": false,
	} {
		if core.ValidChannel(name) != ok {
			t.Errorf("ValidChannel(%q) != %v", name, ok)
		}
	}
}

func TestRateWindow(t *testing.T) {
	var w core.RateWindow
	t0 := time.Unix(1_000_000, 0)
	for i := range 3 {
		if ok, _ := w.Allow(t0.Add(time.Duration(i)*10*time.Second), 3); !ok {
			t.Fatalf("message %d refused", i)
		}
	}
	ok, wait := w.Allow(t0.Add(30*time.Second), 3)
	if ok || wait != 30*time.Second {
		t.Fatalf("4th in the minute: ok=%v wait=%v, want refused for 30s", ok, wait)
	}
	if ok, _ := w.Allow(t0.Add(60*time.Second), 3); !ok {
		t.Fatal("refused once the first message left the window")
	}
	// Refused messages do not take a slot.
	if ok, _ := w.Allow(t0.Add(61*time.Second), 3); ok {
		t.Fatal("4th in the window accepted")
	}
	if ok, _ := w.Allow(t0.Add(70*time.Second), 3); !ok {
		t.Fatal("refused after the second left the window")
	}
}

func TestRefusalFor(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
		retry  int
	}{
		{core.ErrUnauthorized, 401, "unauthorized", 0},
		{core.ErrForbiddenOrigin, 403, "forbidden_origin", 0},
		{core.ErrTooManyConnections, 429, "too_many_connections", 0},
		{&core.RetryError{Err: core.ErrTooManyConnects, After: 1500 * time.Millisecond}, 429, "too_many_connects", 2},
		{&core.RetryError{Err: core.ErrTooManyConnects, After: 3 * time.Hour}, 429, "too_many_connects", 3600},
		{&core.RetryError{Err: core.ErrTooManyConnects, After: 0}, 429, "too_many_connects", 1},
		{&core.RetryError{Err: core.ErrRateLimited, After: 100 * time.Millisecond}, 429, "rate_limited", 1},
		{errors.New("dynamodb: timeout"), 503, "unavailable", 0},
	}
	for _, tc := range tests {
		r := core.RefusalFor(tc.err)
		if r.Status != tc.status || r.Code != tc.code || r.RetryAfter != tc.retry || r.Message == "" {
			t.Errorf("RefusalFor(%v) = %+v", tc.err, r)
		}
	}
}

// TestImports keeps the core transport-agnostic: no AWS, HTTP or WebSocket
// package may appear among its dependencies.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "aws") || strings.Contains(dep, "websocket") || dep == "net/http" {
			t.Errorf("core depends on %s", dep)
		}
	}
}
