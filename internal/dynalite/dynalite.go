// Package dynalite gives tests a real DynamoDB-API endpoint: the one the
// test command started (WSGATE_TEST_DYNAMODB_ENDPOINT), or, when a developer
// runs `go test` alone, a dynalite of its own from the repository's
// node_modules (pinned in package.json), in memory on a free loopback port.
package dynalite

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// EndpointEnv names the DynamoDB endpoint the tests use.
const EndpointEnv = "WSGATE_TEST_DYNAMODB_ENDPOINT"

// Endpoint returns the endpoint from EndpointEnv, or starts dynalite. Under
// CI (CI set) the test command must provide the endpoint: a missing one is
// an error, never a skipped test. Call stop when done.
func Endpoint() (endpoint string, stop func(), err error) {
	if ep := os.Getenv(EndpointEnv); ep != "" {
		return ep, func() {}, nil
	}
	if os.Getenv("CI") != "" {
		return "", nil, fmt.Errorf("%s is not set: under CI the test command provides DynamoDB (scripts/dynalite.sh)", EndpointEnv)
	}
	return Start()
}

// Start runs dynalite on a free loopback port until stop.
func Start() (endpoint string, stop func(), err error) {
	cli, err := findUp("node_modules/dynalite/cli.js")
	if err != nil {
		return "", nil, fmt.Errorf("%w (run npm ci at the repository root)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("node", cli, "--host", "127.0.0.1", "--port", port, "--createTableMs", "0")
	cmd.Stderr = os.Stderr
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("dynalite did not answer within 20 s")
		}
	}
}

func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above %s", rel, dir)
		}
		dir = parent
	}
}
