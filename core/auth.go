package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Identity is an authenticated caller.
type Identity struct {
	Subject string
	Admin   bool
}

// AuthConfig configures token verification.
type AuthConfig struct {
	// Keyfunc returns the key that verifies a token; required.
	Keyfunc jwt.Keyfunc
	// Methods lists the accepted signing algorithms: only the configured
	// key's family ("HS256", "HS384", "HS512" for a shared secret). Tokens
	// signed otherwise, and alg "none", are refused. Required.
	Methods []string
	// Issuer and Audience are checked when set.
	Issuer, Audience string
	// AdminClaim names the claim that makes a token admin: "NAME" (boolean
	// true) or "NAME=VALUE" (a string equal to VALUE, or a list holding it).
	// Empty means "is_staff".
	AdminClaim string
}

// MaxTokenBytes bounds the token length the verifier will parse; a longer
// token is refused before any decoding (golang-jwt CVE-2025-30204).
const MaxTokenBytes = 16 << 10

// leeway is the clock skew allowed on exp, nbf and iat.
const leeway = 30 * time.Second

// Authenticator verifies JWTs and reads the admin claim.
type Authenticator struct {
	parser     *jwt.Parser
	keyfunc    jwt.Keyfunc
	claimName  string
	claimValue string // empty: boolean claim
	hasValue   bool
}

// NewAuthenticator checks cfg and builds an Authenticator.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.Keyfunc == nil || len(cfg.Methods) == 0 {
		return nil, errors.New("wsgate: auth needs a key and its methods")
	}
	name, value, hasValue := ParseAdminClaim(cfg.AdminClaim)
	if name == "" {
		return nil, fmt.Errorf("wsgate: admin claim %q has no name", cfg.AdminClaim)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithJSONNumber(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Authenticator{
		parser:     jwt.NewParser(opts...),
		keyfunc:    cfg.Keyfunc,
		claimName:  name,
		claimValue: value,
		hasValue:   hasValue,
	}, nil
}

// ParseAdminClaim splits an admin claim setting into its name and, for the
// NAME=VALUE form, its value. An empty setting means "is_staff".
func ParseAdminClaim(s string) (name, value string, hasValue bool) {
	if s == "" {
		return "is_staff", "", false
	}
	name, value, hasValue = strings.Cut(s, "=")
	return strings.TrimSpace(name), value, hasValue
}

// Authenticate verifies token and returns who it names. Every failure wraps
// [ErrUnauthorized].
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	if len(token) > MaxTokenBytes {
		return Identity{}, fmt.Errorf("%w: token longer than %d bytes", ErrUnauthorized, MaxTokenBytes)
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(token, claims, a.keyfunc); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	for _, k := range []string{"exp", "nbf", "iat"} {
		if v, ok := claims[k]; ok {
			if _, isNum := v.(json.Number); !isNum {
				return Identity{}, fmt.Errorf("%w: claim %s is not a number", ErrUnauthorized, k)
			}
		}
	}
	sub, ok := claims["sub"].(string)
	if !ok || sub == "" {
		return Identity{}, fmt.Errorf("%w: sub claim missing", ErrUnauthorized)
	}
	return Identity{Subject: sub, Admin: a.isAdmin(claims)}, nil
}

func (a *Authenticator) isAdmin(claims jwt.MapClaims) bool {
	v, ok := claims[a.claimName]
	if !ok {
		return false
	}
	if !a.hasValue {
		b, ok := v.(bool)
		return ok && b
	}
	switch v := v.(type) {
	case string:
		return v == a.claimValue
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == a.claimValue {
				return true
			}
		}
	}
	return false
}
