package settings

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Key returns the verification key function and its algorithm family for
// the configured key source. ctx bounds the JWKS background refresh.
func (s Settings) Key(ctx context.Context) (jwt.Keyfunc, []string, error) {
	switch {
	case s.JWTSecret != "":
		secret := []byte(s.JWTSecret)
		return func(*jwt.Token) (any, error) { return secret, nil }, []string{"HS256", "HS384", "HS512"}, nil
	case s.JWTPublicKey != "":
		return publicKey(s.JWTPublicKey)
	case s.JWKSURL != "":
		k, err := keyfunc.NewDefaultCtx(ctx, []string{s.JWKSURL})
		if err != nil {
			return nil, nil, &Error{Var: "WSGATE_JWKS_URL", Msg: err.Error()}
		}
		return k.Keyfunc, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}, nil
	}
	return nil, nil, &Error{Var: "WSGATE_JWT_SECRET", Msg: errNoKey.Error()}
}

// publicKey parses a PEM public key given inline or as a file path.
func publicKey(v string) (jwt.Keyfunc, []string, error) {
	if strings.Contains(v, "-----BEGIN") && !strings.Contains(v, "\n") {
		// PEM text from an env file often arrives on one line with its
		// newlines written as \n.
		v = strings.ReplaceAll(v, `\n`, "\n")
	}
	pemText := []byte(v)
	if !strings.Contains(v, "-----BEGIN") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, nil, &Error{Var: "WSGATE_JWT_PUBLIC_KEY", Msg: fmt.Sprintf("neither PEM text nor a readable file: %v", err)}
		}
		pemText = b
	}
	var key any
	var methods []string
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pemText); err == nil {
		key, methods = k, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	} else if k, err := jwt.ParseECPublicKeyFromPEM(pemText); err == nil {
		key, methods = k, ecMethods(k)
	} else if k, err := jwt.ParseEdPublicKeyFromPEM(pemText); err == nil {
		key, methods = k, []string{"EdDSA"}
	} else {
		return nil, nil, &Error{Var: "WSGATE_JWT_PUBLIC_KEY", Msg: "not an RSA, ECDSA or Ed25519 public key in PEM"}
	}
	return func(*jwt.Token) (any, error) { return key, nil }, methods, nil
}

func ecMethods(k *ecdsa.PublicKey) []string {
	switch k.Curve.Params().BitSize {
	case 256:
		return []string{"ES256"}
	case 384:
		return []string{"ES384"}
	default:
		return []string{"ES512"}
	}
}

// checkJWKSURL requires https except for loopback hosts.
func checkJWKSURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("not a URL: %q", v)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return errors.New("must use https (http only on loopback)")
}
