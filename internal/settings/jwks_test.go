package settings

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
)

// TestJWKS serves a JWKS on loopback (as Cognito or Auth0 would over https)
// and checks that tokens signed with its key pass and others do not.
func TestJWKS(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	defer srv.Close()
	s, err := Load(nil, env(map[string]string{"WSGATE_JWKS_URL": srv.URL + "/.well-known/jwks.json"}))
	if err != nil {
		t.Fatal(err)
	}
	kf, methods, err := s.Key(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := core.NewAuthenticator(core.AuthConfig{Keyfunc: kf, Methods: methods})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "jwks-user", "exp": time.Now().Add(time.Hour).Unix()}
	sign := func(kid string, k *rsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if id, err := auth.Authenticate(t.Context(), sign("k1", key)); err != nil || id.Subject != "jwks-user" {
		t.Fatalf("token signed with the JWKS key: %+v %v", id, err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := auth.Authenticate(t.Context(), sign("k1", other)); err == nil {
		t.Fatal("a token signed with another key passed")
	}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("guess"))
	if _, err := auth.Authenticate(t.Context(), hs); err == nil {
		t.Fatal("an HS256 token passed a JWKS configuration")
	}
	if hits.Load() == 0 {
		t.Fatal("the JWKS was never fetched")
	}
}
